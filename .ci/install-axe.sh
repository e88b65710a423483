#!/usr/bin/env bash
# Installs a pinned axe-core (the accessibility rules engine the dashboard's browser tests run in Chromium)
# from the npm registry into .ci/web. Idempotent.
set -euo pipefail

AXE_VERSION="4.14.1"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$here/web"
mkdir -p "$prefix"
have=""
if [ -f "$prefix/node_modules/axe-core/package.json" ]; then
  have="$(node -e 'process.stdout.write(String(require(process.argv[1]).version || ""))' \
    "$prefix/node_modules/axe-core/package.json" 2>/dev/null || true)"
fi
if [ "$have" != "$AXE_VERSION" ]; then
  echo "install-axe: installing axe-core@$AXE_VERSION into $prefix" >&2
  npm install --prefix "$prefix" --no-audit --no-fund --save-exact --loglevel=error "axe-core@$AXE_VERSION" >&2
fi
echo "axe-core: $(node -e 'process.stdout.write(require(process.argv[1]).version)' "$prefix/node_modules/axe-core/package.json")"
