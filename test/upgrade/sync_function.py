#!/usr/bin/env python3
"""Replaces the last definition of each named function in the update script with the
module's current one, keeping the script's CREATE or CREATE OR REPLACE.

    test/upgrade/sync_function.py close_periods _quantity

For functions created or replaced by the update script that changed in the modules since;
test/upgrade/upgrade.sh tells which (the catalog of a fresh install differs)."""
import re, subprocess, sys

SCRIPT = 'src/sql/metering--0.1.0--0.2.0.sql'

def module_definition(name):
    out = subprocess.run([sys.executable, 'test/upgrade/extract_function.py', name],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out.replace('CREATE OR REPLACE FUNCTION', 'CREATE FUNCTION', 1)

def definition_end(text, start):
    body = re.match(r'[^;]*?\nAS \$\$', text[start:], re.S)
    if body:
        return text.index('$$;', start + body.end()) + len('$$;')
    return text.index(';', start) + 1

text = open(SCRIPT).read()
for name in sys.argv[1:]:
    starts = [m.start() for m in re.finditer(r'^CREATE (OR REPLACE )?FUNCTION metering\.%s\(' % re.escape(name), text, re.M)]
    if not starts:
        sys.exit('%s does not define metering.%s' % (SCRIPT, name))
    start = starts[-1]
    replace = text[start:].startswith('CREATE OR REPLACE')
    new = module_definition(name)
    if replace:
        new = new.replace('CREATE FUNCTION', 'CREATE OR REPLACE FUNCTION', 1)
    text = text[:start] + new + text[definition_end(text, start):]
open(SCRIPT, 'w').write(text)
