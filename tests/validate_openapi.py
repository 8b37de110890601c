#!/usr/bin/env python3
"""Validate the coordinator's OpenAPI document with an independent validator
(the `openapi-spec-validator` package).

Usage: python3 tests/validate_openapi.py [FILE...]
       (default: manifests/coordinator.openapi.json; needs: pip install openapi-spec-validator)
Prints one verdict per file; exits 1 if any file is not valid OpenAPI 3.x.
"""

import pathlib
import sys

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

ROOT = pathlib.Path(__file__).resolve().parent.parent


def main(paths: list[str]) -> int:
    if not paths:
        paths = [str(ROOT / "manifests" / "coordinator.openapi.json")]
    failed = 0
    for path in paths:
        spec, _ = read_from_filename(path)
        try:
            validate(spec)
        except Exception as err:  # the validator raises several error types
            # The first line names the problem; the rest repeats the document.
            print(f"{path}: INVALID: {str(err).splitlines()[0][:200]}")
            failed += 1
            continue
        print(f"{path}: valid OpenAPI {spec.get('openapi')} ({len(spec.get('paths', {}))} paths)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
