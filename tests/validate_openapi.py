"""Validates an OpenAPI document with an independent validator.

Usage: python tests/validate_openapi.py manifests/coordinator.openapi.json

Needs openapi-spec-validator (.ci/run installs it into .venv). Exits 0 when
the document is valid OpenAPI 3.x, 1 with the validator's message when not.
"""

import sys

from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename


def main(paths):
    if not paths:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        spec, _ = read_from_filename(path)
        try:
            validate(spec)
        except Exception as err:  # the validator raises several error types
            print(f"{path}: INVALID: {err}", file=sys.stderr)
            failed += 1
            continue
        version = spec.get("openapi")
        print(f"{path}: valid OpenAPI {version} ({len(spec.get('paths', {}))} paths)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
