#!/usr/bin/env bash
# Install verwijsindex and the PostgreSQL driver, pinned by constraints.txt, into the Python that
# `python` is on PATH (a venv's), editable from this source folder: the service reads its
# templates from it, so keep the folder where it is. The Dockerfile's install step; on a host:
#   python3 -m venv /opt/verwijsindex/venv
#   PATH=/opt/verwijsindex/venv/bin:$PATH bash /opt/verwijsindex/deploy/install.sh
# Tested by tests/e2e/test_deployment_files.py in a fresh venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python -m pip install --no-cache-dir --disable-pip-version-check --quiet \
    --constraint constraints.txt --editable ".[postgres]"
# The console command runs from any folder.
cd /
verwijsindex --version
