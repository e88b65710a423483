#!/usr/bin/env bash
# The desktop app's CI (desktop/ is a workspace of its own, outside the README's two commands): installs
# WebKitGTK's build and test packages from Debian and the pinned tauri-driver and cargo-deb into
# .ci/desktop, checks formatting and lints, builds the release binary and its tests once, packages the
# binary as a .deb, installs that package, and runs the WebDriver tests against the installed binary
# (under Xvfb with a session bus and dunst, which each test starts for itself). Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

TAURI_DRIVER_VERSION="2.1.0"
CARGO_DEB_VERSION="3.8.0"
root="$PWD/.ci/desktop"

echo "== desktop: Debian packages (WebKitGTK build dependencies; Xvfb, dbus, dunst, notify-send, xdotool, WebKitWebDriver)"
packages=(libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libssl-dev
  build-essential pkg-config file xvfb x11-utils webkit2gtk-driver dbus-x11 dunst libnotify-bin xdotool)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
if [ "${#missing[@]}" -gt 0 ]; then
  $SUDO apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

echo "== desktop: tauri-driver $TAURI_DRIVER_VERSION and cargo-deb $CARGO_DEB_VERSION (from crates.io, into .ci/desktop)"
installed() { grep -q "\"$1 $2 " "$root/.crates.toml" 2>/dev/null; }
installed tauri-driver "$TAURI_DRIVER_VERSION" ||
  cargo install --quiet --locked --root "$root" "tauri-driver@$TAURI_DRIVER_VERSION"
installed cargo-deb "$CARGO_DEB_VERSION" ||
  cargo install --quiet --locked --root "$root" "cargo-deb@$CARGO_DEB_VERSION"

cd desktop
echo "== desktop: format"
cargo fmt -- --check

echo "== desktop: lint"
cargo clippy --release --all-targets --quiet -- -D warnings

echo "== desktop: build (release binary and tests)"
cargo test --release --no-run

echo "== desktop: package (.deb) and install it"
"$root/bin/cargo-deb" --no-build --output target/debian/amp-sessions-desktop.deb
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ./target/debian/amp-sessions-desktop.deb
dpkg -L amp-sessions-desktop | grep -E 'bin/|\.desktop$'

echo "== desktop: tests (the installed binary, driven through WebDriver)"
AMPSM_DESKTOP_BIN=/usr/bin/amp-sessions-desktop cargo test --release
