#!/usr/bin/env bash
# Regenerate constraints.txt: every package verwijsindex[postgres,test] needs, pinned. The set is
# resolved by pip-compile (pip-tools); each pin is the version installed in this environment,
# the one the test suite just passed with, where one is installed.
# Usage: pip install pip-tools && bash deploy/update-constraints.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
resolved="$(mktemp)"
trap 'rm -f "$resolved"' EXIT
pip-compile --quiet --extra postgres --extra test --strip-extras --no-emit-index-url \
    --no-emit-find-links --no-header --no-annotate --output-file "$resolved" pyproject.toml
python - "$resolved" > constraints.txt <<'PY'
import sys
from importlib import metadata

print("# Pins for verwijsindex[postgres,test]; CI and deploy/install.sh install with these.")
print("# Regenerate with: bash deploy/update-constraints.sh")
for line in open(sys.argv[1]):
    line = line.strip()
    if not line or line.startswith("#") or "==" not in line:
        continue
    name, _, version = line.partition("==")
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
    print(f"{name}=={version}")
PY
echo "constraints.txt: $(grep -c '==' constraints.txt) pins"
