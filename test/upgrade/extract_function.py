#!/usr/bin/env python3
"""Prints a function's definition from the modules, as CREATE OR REPLACE, for an update script.

    test/upgrade/extract_function.py close_periods end_subscription >> src/sql/metering--0.1.0--0.2.0.sql

Every CREATE FUNCTION metering.<name>( of src/sql/modules/*.sql up to the end of its body
($$; or the statement's closing semicolon for C functions)."""
import glob, re, sys

def definitions(name):
    for path in sorted(glob.glob('src/sql/modules/*.sql')):
        text = open(path).read()
        for m in re.finditer(r'^CREATE FUNCTION metering\.%s\(' % re.escape(name), text, re.M):
            rest = text[m.start():]
            body = re.match(r'[^;]*?\nAS \$\$', rest, re.S)
            if body:  # the body ends at the first $$ after the one that opens it
                end = rest.index('$$;', body.end()) + len('$$;')
            else:
                end = rest.index(';') + 1
            yield rest[:end].replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1)

for name in sys.argv[1:]:
    found = list(definitions(name))
    if not found:
        sys.exit('no function metering.%s in src/sql/modules' % name)
    for d in found:
        print(d)
        print()
