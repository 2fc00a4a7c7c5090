#!/usr/bin/env python3
"""META.json (PGXN meta-spec 1.0.0) is valid, complete, and agrees with the tree:
its versions with metering.control, its files exist, its license with LICENSE, and
the PostgreSQL the build uses satisfies its prerequisite."""
import json
import operator
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
REQUIRED = ["name", "abstract", "maintainer", "license", "provides", "version", "meta-spec"]
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
           "==": operator.eq, "!=": operator.ne}
failures = []


def check(ok, message):
    if not ok:
        failures.append(message)


def version_tuple(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def satisfies(version, spec):
    """spec is a PGXN version range: "15.0.0", or comparisons joined by commas."""
    for clause in spec.split(","):
        m = re.fullmatch(r"\s*(>=|<=|>|<|==|!=)?\s*(\d+(?:\.\d+){0,2})\s*", clause)
        if not m:
            raise ValueError(f"cannot read the version range {spec!r}")
        op = COMPARE[m.group(1) or ">="]
        if not op(version_tuple(version), version_tuple(m.group(2))):
            return False
    return True


try:
    meta = json.loads((ROOT / "META.json").read_text())
except (OSError, ValueError) as e:
    sys.exit(f"META.json: FAILED: not valid JSON: {e}")

control = (ROOT / "metering.control").read_text()
default_version = re.search(r"^default_version = '(.*)'", control, re.M).group(1)

for key in REQUIRED:
    check(key in meta, f"required key {key!r} missing")
check(meta.get("meta-spec", {}).get("version") == "1.0.0", "meta-spec version is not 1.0.0")
check(meta.get("name") == "metering", f"name {meta.get('name')!r} is not metering")
check(meta.get("version") == default_version,
      f"version {meta.get('version')} differs from default_version {default_version} of metering.control")
check(bool(SEMVER.match(str(meta.get("version")))), "version is not a semantic version X.Y.Z")

extension = meta.get("provides", {}).get("metering")
check(extension is not None, "provides has no metering")
for name, provided in meta.get("provides", {}).items():
    check(provided.get("version") == default_version,
          f"provides.{name}.version {provided.get('version')} differs from metering.control's {default_version}")
    for key in ("file", "docfile"):
        if key in provided:
            check((ROOT / provided[key]).is_file(), f"provides.{name}.{key} {provided[key]} does not exist")
    check("file" in provided, f"provides.{name} has no file")

check(meta.get("license") == "postgresql", f"license {meta.get('license')!r} is not postgresql")
license_file = ROOT / "LICENSE"
check(license_file.is_file() and license_file.read_text().startswith("PostgreSQL License"),
      "LICENSE is missing or is not the PostgreSQL License")

requirement = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
check(requirement is not None, "prereqs.runtime.requires has no PostgreSQL")
if requirement:
    server = subprocess.run(["pg_config", "--version"], capture_output=True, text=True, check=True).stdout
    server_version = re.search(r"PostgreSQL (\d+(?:\.\d+)*)", server).group(1)
    check(satisfies(server_version, requirement),
          f"the PostgreSQL built against ({server_version}) does not satisfy {requirement!r}")
check("resources" in meta, "resources missing")

if failures:
    print("META.json: FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print(f"META.json: valid, version {default_version} as in metering.control, license and files present")
