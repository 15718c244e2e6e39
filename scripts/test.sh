#!/usr/bin/env bash
# Runs every test: installs what is missing first (see setup.sh) and fetches
# the default model and Gemma 3 for the tests that read them. `--rust` (first) runs only
# the Rust tests: no wasm build, no browser. Other arguments go to
# `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
rust_only=false
if [ "${1:-}" = --rust ]; then
    rust_only=true
    shift
fi
if $rust_only; then scripts/setup.sh --gpu; else scripts/setup.sh; fi
scripts/fetch-model.sh >/dev/null
scripts/fetch-gemma.sh >/dev/null
source scripts/env.sh
cargo test "$@"
$rust_only && exit 0

# --- Browser: build the wasm and npm package, then drive them in Chromium ---
# (web/tests: playground vs reference for MHA/GQA/MQA, JS errors, the model page,
# the Model API: streams, chat, cached downloads, default limits; npm pack.)
scripts/build-web.sh
node --test --test-timeout=400000 web/tests/
