#!/usr/bin/env bash
# Installs a pinned pytest into .ci/python (pip --target, no virtualenv needed), for the tests that
# evaluate SWE-bench-style instances with the official harness's pytest command. Idempotent.
set -euo pipefail

PYTEST_VERSION="8.3.4"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target="$here/python"

if PYTHONPATH="$target" "$target/bin/pytest" --version 2>&1 | grep -qx "pytest $PYTEST_VERSION"; then
  echo "pytest $PYTEST_VERSION already in $target"
  exit 0
fi
rm -rf "$target"
python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
  --target "$target" "pytest==$PYTEST_VERSION"
PYTHONPATH="$target" "$target/bin/pytest" --version
