#!/usr/bin/env bash
# Installs what wgqa needs on a fresh Debian machine and skips what is there:
# a Vulkan driver (Mesa's lavapipe, a software GPU) when none is installed.
set -euo pipefail

packages=()
if ! compgen -G "/usr/share/vulkan/icd.d/*.json" >/dev/null && ! compgen -G "/etc/vulkan/icd.d/*.json" >/dev/null; then
    packages+=(mesa-vulkan-drivers libvulkan1)
fi

if ((${#packages[@]})); then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing ${packages[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi

# --- Browser (web/): wasm target, wasm-bindgen-cli, Chromium, playwright-core ---
# Only for the wasm package, the demo page and the browser tests; each step
# is skipped when its tool is already there.
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "setup: adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
fi
# The CLI must match the `wasm-bindgen` crate locked in Cargo.lock exactly.
root="$(cd "$(dirname "$0")/.." && pwd)"
wb_version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$root/Cargo.lock")"
if [ "$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }')" != "$wb_version" ]; then
    echo "setup: building wasm-bindgen-cli $wb_version (about ten minutes)"
    # Without --locked: the CLI's own lock file may pin versions the
    # registry mirror here does not carry.
    cargo install wasm-bindgen-cli --version "$wb_version" --force
fi
if [ ! -x /usr/bin/chromium ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "setup: installing chromium"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
if [ ! -d "$root/web/node_modules" ]; then
    echo "setup: installing the browser tests' node packages"
    (cd "$root/web" && npm ci --no-audit --no-fund)
fi
