#!/usr/bin/env bash
# Installs what wgqa needs on a fresh Debian machine and skips what is there.
# In parts, each skipped when its tools are already installed:
#   --gpu      a Vulkan driver (Mesa's lavapipe, a software GPU) when none is
#              installed: all the Rust tests need;
#   --wasm     the wasm32 target and wasm-bindgen-cli: scripts/build-web.sh;
#   --browser  Chromium and the browser tests' node packages: web/tests/.
# With no flag it does all three.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
apt_install() {
    echo "setup: installing $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

setup_gpu() {
    if ! compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null && ! compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null; then
        apt_install mesa-vulkan-drivers libvulkan1
    fi
}

setup_wasm() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        echo "setup: adding the wasm32-unknown-unknown target"
        rustup target add wasm32-unknown-unknown
    fi
    # The CLI must match the `wasm-bindgen` crate locked in Cargo.lock exactly.
    local wb_version
    wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$wb_version" ]; then
        echo "setup: building wasm-bindgen-cli $wb_version (about three minutes)"
        # Without --locked: the CLI's own lock file may pin versions the
        # registry mirror here does not carry. A debug build without debug
        # info compiles in a third of a release build's time, and writes the
        # same files (1.4 s instead of 0.5 s for wgqa's wasm).
        CARGO_PROFILE_DEV_DEBUG=0 cargo install wasm-bindgen-cli --version "$wb_version" --debug --force
    fi
}

setup_browser() {
    [ -x /usr/bin/chromium ] || apt_install chromium
    if [ ! -d "$root/web/node_modules" ]; then
        echo "setup: installing the browser tests' node packages"
        (cd "$root/web" && npm ci --no-audit --no-fund)
    fi
}

parts=("$@")
((${#parts[@]})) || parts=(--gpu --wasm --browser)
for part in "${parts[@]}"; do
    case "$part" in
        --gpu) setup_gpu ;;
        --wasm) setup_wasm ;;
        --browser) setup_browser ;;
        *) echo "setup.sh: unknown part $part (--gpu, --wasm or --browser; none for all)" >&2; exit 2 ;;
    esac
done
