#!/usr/bin/env python3
"""Validate every examples/*.yaml against manifests/node.schema.json with an
independent validator (the `jsonschema` package, YAML read by PyYAML).

Usage: python3 tests/validate_examples.py   (needs: pip install jsonschema pyyaml)
Prints one verdict per file; exits 1 if any file fails, 2 if the schema itself
is not a valid draft 2020-12 schema.
"""

import json
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    schema = json.loads((ROOT / "manifests" / "node.schema.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    if validator_cls is not jsonschema.Draft202012Validator:
        print(f"schema: expected draft 2020-12, got {validator_cls.__name__}")
        return 2
    try:
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as err:
        print(f"schema: INVALID: {err.message}")
        return 2
    validator = validator_cls(schema)
    failed = 0
    files = sorted((ROOT / "examples").glob("*.yaml"))
    if not files:
        print("no examples/*.yaml found")
        return 1
    for path in files:
        name = path.relative_to(ROOT)
        document = yaml.safe_load(path.read_text())
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
        if errors:
            failed += 1
            print(f"{name}: FAIL")
            for err in errors:
                where = "/".join(str(p) for p in err.absolute_path) or "(document)"
                print(f"  {where}: {err.message}")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
