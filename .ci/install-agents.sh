#!/usr/bin/env bash
# Installs pinned versions of the real agent CLIs (Claude Code, Codex, Amp) from the
# npm registry into .ci/npm, so integration tests can drive them offline against
# the scripted model server in crates/ampsm-testutils. Idempotent: re-running
# with the right versions already present does nothing but print them.
set -euo pipefail

CLAUDE_CODE_VERSION="2.1.330"
CODEX_VERSION="0.169.0"
# The newest @ampcode/cli whose linux-x64 binary package is published (later wrappers have none yet).
AMP_VERSION="0.0.1790142911-g7618fb"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$here/npm"
mkdir -p "$prefix"

installed_version() {
  # Prints the version recorded in node_modules/<pkg>/package.json, or nothing.
  local pkg_json="$prefix/node_modules/$1/package.json"
  if [ -f "$pkg_json" ]; then
    node -e 'process.stdout.write(String(require(process.argv[1]).version || ""))' "$pkg_json" 2>/dev/null || true
  fi
}

want=()
if [ "$(installed_version @anthropic-ai/claude-code)" != "$CLAUDE_CODE_VERSION" ] \
  || ! "$prefix/node_modules/.bin/claude" --version >/dev/null 2>&1; then
  want+=("@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION")
fi
if [ "$(installed_version @openai/codex)" != "$CODEX_VERSION" ] \
  || ! "$prefix/node_modules/.bin/codex" --version >/dev/null 2>&1; then
  want+=("@openai/codex@$CODEX_VERSION")
fi

if [ "$(installed_version @ampcode/cli)" != "$AMP_VERSION" ] \
  || ! HOME="$prefix" "$prefix/node_modules/.bin/amp" --version >/dev/null 2>&1; then
  want+=("@ampcode/cli@$AMP_VERSION")
fi

if [ "${#want[@]}" -gt 0 ]; then
  echo "install-agents: installing ${want[*]} into $prefix" >&2
  # --include=optional: both CLIs ship their native binary in a per-platform
  # optional dependency; without it the wrapper has nothing to run.
  npm install --prefix "$prefix" --no-audit --no-fund --save-exact --include=optional \
    --loglevel=error "${want[@]}" >&2
fi

echo "claude: $("$prefix/node_modules/.bin/claude" --version 2>&1 | head -n1)"
echo "codex: $("$prefix/node_modules/.bin/codex" --version 2>&1 | head -n1)"
echo "amp: $(HOME="$prefix" "$prefix/node_modules/.bin/amp" --version 2>&1 | head -n1)"
