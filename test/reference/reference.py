#!/usr/bin/env python3
"""docs/reference.md against the catalog of a fresh install: nothing public is left
undocumented, nothing documented is missing, and every signature is the real one.

Public: functions, aggregates, tables, views and types of schema metering whose names
do not start with "_", the extension's access methods, and the metering.* settings.
The reference gives each one in a ```sql block of signatures, one statement each:

    FUNCTION metering.name(arg type [DEFAULT ...], ...) RETURNS type
    AGGREGATE metering.name(arg type, ...) RETURNS type
    TABLE metering.name(column type, ...)        VIEW metering.name(column type, ...)
    TYPE metering.name                           ACCESS METHOD name
    SETTING metering.name vartype DEFAULT value[unit] (context)

Postgres itself normalizes the documented signatures: each is created in a scratch
schema (functions as LANGUAGE internal stubs, relations as tables) and read back with
the functions that print the real ones. Then the page's other ```sql blocks, the
examples, run in order and must not fail. Run by test/reference/reference.sh, with
PGDATABASE naming a database where the extension was just created."""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "docs" / "reference.md"
KEYWORDS = ("FUNCTION", "AGGREGATE", "TABLE", "VIEW", "TYPE", "ACCESS METHOD", "SETTING")
SCRATCH = {"FUNCTION": "ref_doc_function", "AGGREGATE": "ref_doc_aggregate",
           "TABLE": "ref_doc_table", "VIEW": "ref_doc_view"}
STATEMENT_START = re.compile(r"^(%s)\b" % "|".join(KEYWORDS))


def sql_blocks(text):
    """(is_signature_block, block) for every ```sql block, in order."""
    for block in re.findall(r"^```sql\n(.*?)^```", text, re.S | re.M):
        yield bool(STATEMENT_START.match(block.lstrip())), block


def documented_statements(text):
    """The statements of the signature blocks, one string each."""
    statements = []
    for is_signature, block in sql_blocks(text):
        if not is_signature:
            continue
        lines = [line for line in block.splitlines() if line.strip()]
        for line in lines:
            if STATEMENT_START.match(line):
                statements.append(line.strip())
            else:
                statements[-1] += " " + line.strip()
    return statements


def scratch_sql(statements):
    """SQL that creates the documented functions and relations in the scratch schemas,
    and the rows of the other kinds as they are written."""
    sql = ["CREATE SCHEMA %s;" % schema for schema in SCRATCH.values()]
    sql.append("CREATE TABLE ref_doc_table.ref_doc_other (what text PRIMARY KEY);")
    for statement in statements:
        keyword = STATEMENT_START.match(statement).group(1)
        body = statement[len(keyword):].strip()
        if keyword in ("FUNCTION", "AGGREGATE", "TABLE", "VIEW"):
            m = re.match(r"metering\.(\w+)\s*(\(.*)$", body, re.S)
            if not m:
                sys.exit(f"reference: FAILED: cannot read {statement!r}")
            name, rest = m.groups()
            target = f"{SCRATCH[keyword]}.{name}{rest}"
            if keyword in ("FUNCTION", "AGGREGATE"):
                # A stub of any signature; never called.
                sql.append(f"CREATE FUNCTION {target} LANGUAGE internal AS 'now';")
            else:
                sql.append(f"CREATE TABLE {target};")
        else:
            sql.append("INSERT INTO ref_doc_table.ref_doc_other VALUES (%s);"
                       % quote(" ".join(statement.split())))
    return "\n".join(sql)


def quote(text):
    return "'" + text.replace("'", "''") + "'"


# Both sides as (side, key, signature) rows: "doc" from the scratch schemas, "catalog"
# from the extension.
COMPARE_SQL = r"""
WITH functions AS (
    SELECT p.pronamespace, p.prokind, p.proname,
           p.proname || '(' || oidvectortypes(p.proargtypes) || ')' AS key,
           p.proname || '(' || pg_get_function_arguments(p.oid) || ') RETURNS '
               || pg_get_function_result(p.oid) AS signature
    FROM pg_proc p
), relations AS (
    SELECT c.relnamespace, c.relkind, c.relname AS key,
           c.relname || '(' || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum)
                                         FROM pg_attribute a
                                         WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
               || ')' AS signature
    FROM pg_class c
)
SELECT 'doc', 'FUNCTION ' || key, 'FUNCTION metering.' || signature FROM functions
WHERE pronamespace = 'ref_doc_function'::regnamespace
UNION ALL
SELECT 'doc', 'AGGREGATE ' || key, 'AGGREGATE metering.' || signature FROM functions
WHERE pronamespace = 'ref_doc_aggregate'::regnamespace
UNION ALL
SELECT 'catalog', kind || ' ' || key, kind || ' metering.' || signature
FROM functions, LATERAL (SELECT CASE prokind WHEN 'f' THEN 'FUNCTION' WHEN 'a' THEN 'AGGREGATE'
                                             WHEN 'p' THEN 'PROCEDURE' ELSE 'WINDOW FUNCTION' END AS kind) k
WHERE pronamespace = 'metering'::regnamespace AND proname !~ '^_'
UNION ALL
SELECT 'doc', 'TABLE ' || key, 'TABLE metering.' || signature FROM relations
WHERE relnamespace = 'ref_doc_table'::regnamespace AND relkind = 'r' AND key <> 'ref_doc_other'
UNION ALL
SELECT 'doc', 'VIEW ' || key, 'VIEW metering.' || signature FROM relations
WHERE relnamespace = 'ref_doc_view'::regnamespace AND relkind = 'r'
UNION ALL
SELECT 'catalog', kind || ' ' || key, kind || ' metering.' || signature
FROM relations, LATERAL (SELECT CASE relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'v' THEN 'VIEW'
                                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'FOREIGN TABLE' END AS kind) k
WHERE relnamespace = 'metering'::regnamespace AND key !~ '^_' AND relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'doc', 'SETTING ' || split_part(what, ' ', 2), what FROM ref_doc_table.ref_doc_other
WHERE what LIKE 'SETTING %'
UNION ALL
SELECT 'doc', what, what FROM ref_doc_table.ref_doc_other
WHERE what NOT LIKE 'SETTING %'
UNION ALL
-- types of their own: not a relation's row type, not an array
SELECT 'catalog', 'TYPE metering.' || t.typname, 'TYPE metering.' || t.typname
FROM pg_type t
WHERE t.typnamespace = 'metering'::regnamespace AND t.typname !~ '^_'
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
UNION ALL
SELECT 'catalog', 'ACCESS METHOD ' || am.amname, 'ACCESS METHOD ' || am.amname
FROM pg_am am JOIN pg_depend d ON d.classid = 'pg_am'::regclass AND d.objid = am.oid AND d.deptype = 'e'
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'metering')
UNION ALL
SELECT 'catalog', 'SETTING ' || name,
       format('SETTING %s %s DEFAULT %s (%s)', name, vartype,
              CASE vartype WHEN 'string' THEN quote_literal(boot_val) ELSE boot_val || coalesce(unit, '') END,
              context)
FROM pg_settings WHERE name LIKE 'metering.%'
UNION ALL
-- a member outside schema metering (other than an access method) needs this test extended
SELECT 'catalog', 'MEMBER OUTSIDE SCHEMA metering: ' || pg_describe_object(d.classid, d.objid, 0), ''
FROM pg_depend d
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'metering') AND d.deptype = 'e'
  AND d.classid <> 'pg_am'::regclass
  AND coalesce((SELECT pronamespace FROM pg_proc WHERE d.classid = 'pg_proc'::regclass AND oid = d.objid),
               (SELECT relnamespace FROM pg_class WHERE d.classid = 'pg_class'::regclass AND oid = d.objid),
               (SELECT typnamespace FROM pg_type WHERE d.classid = 'pg_type'::regclass AND oid = d.objid),
               (SELECT opcnamespace FROM pg_opclass WHERE d.classid = 'pg_opclass'::regclass AND oid = d.objid),
               (SELECT opfnamespace FROM pg_opfamily WHERE d.classid = 'pg_opfamily'::regclass AND oid = d.objid),
               0) <> 'metering'::regnamespace;
"""


def run_examples(text):
    """The examples, in order, as one psql script: each must run without an error."""
    script = "\\set ON_ERROR_STOP 1\n" + "".join(b for is_sig, b in sql_blocks(text) if not is_sig)
    run = subprocess.run(["psql", "-X", "-q", "-f", "-"], input=script, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"reference: FAILED: an example of docs/reference.md failed:\n{run.stderr}")
    return sum(1 for is_sig, _ in sql_blocks(text) if not is_sig)


def main():
    text = REFERENCE.read_text()
    statements = documented_statements(text)
    script = "\\set ON_ERROR_STOP 1\nBEGIN;\n%s\n%s\nROLLBACK;\n" % (scratch_sql(statements), COMPARE_SQL)
    run = subprocess.run(["psql", "-X", "-q", "-At", "-F", "\t", "-f", "-"], input=script,
                         capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"reference: FAILED: a documented signature is not valid SQL:\n{run.stderr}")
    doc, catalog = {}, {}
    for line in run.stdout.splitlines():
        side, key, signature = line.split("\t")
        side_map = doc if side == "doc" else catalog
        if key in side_map:
            sys.exit(f"reference: FAILED: {key} appears twice in the {side}")
        side_map[key] = signature
    problems = []
    for key in sorted(catalog.keys() - doc.keys()):
        problems.append(f"undocumented: {catalog[key] or key}")
    for key in sorted(doc.keys() - catalog.keys()):
        problems.append(f"documented but not in the catalog: {doc[key]}")
    for key in sorted(doc.keys() & catalog.keys()):
        if doc[key] != catalog[key]:
            problems.append(f"differs:\n    documented: {doc[key]}\n    catalog:    {catalog[key]}")
    if problems:
        print("reference: FAILED: docs/reference.md and the catalog differ:\n  " + "\n  ".join(problems))
        sys.exit(1)
    examples = run_examples(text)
    print(f"reference: docs/reference.md documents the {len(catalog)} public objects and settings, "
          f"each with its signature; its {examples} examples run")


if __name__ == "__main__":
    main()
