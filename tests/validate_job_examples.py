#!/usr/bin/env python3
"""Validate every examples/jobs/*.{yaml,json} against manifests/job.schema.json
with an independent validator (the `jsonschema` package; YAML read by PyYAML).

Usage: python3 tests/validate_job_examples.py   (needs: pip install jsonschema pyyaml)
Exits 1 if any file fails, 2 if the schema is not a valid draft 2020-12 schema.
"""

import json
import pathlib
import sys

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main() -> int:
    schema = json.loads((ROOT / "manifests" / "job.schema.json").read_text())
    validator_cls = jsonschema.validators.validator_for(schema)
    if validator_cls is not jsonschema.Draft202012Validator:
        print(f"schema: expected draft 2020-12, got {validator_cls.__name__}")
        return 2
    validator_cls.check_schema(schema)
    validator = validator_cls(schema)
    files = sorted((ROOT / "examples" / "jobs").glob("*.yaml")) + sorted(
        (ROOT / "examples" / "jobs").glob("*.json")
    )
    if not files:
        print("no examples/jobs files found")
        return 1
    failed = 0
    for path in files:
        doc = yaml.safe_load(path.read_text())
        errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))
        name = path.relative_to(ROOT)
        if errors:
            failed += 1
            for err in errors:
                where = ".".join(str(p) for p in err.path) or "(document)"
                print(f"{name}: {where}: {err.message}")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
