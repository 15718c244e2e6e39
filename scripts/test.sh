#!/usr/bin/env bash
# Runs every test: installs what is missing first (see setup.sh) and fetches
# the default model for the tests that read it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-model.sh >/dev/null
source scripts/env.sh
cargo test "$@"

# --- Browser: build the wasm and npm package, then drive them in Chromium ---
# (web/tests: playground vs reference for MHA/GQA/MQA, JS errors, npm pack.)
scripts/build-web.sh
node --test --test-timeout=400000 web/tests/
