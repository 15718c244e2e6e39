#!/usr/bin/env bash
# The main job: SmolLM2-135M answers a prompt through wgqa's kernels on the
# GPU (streamed, with tokens/s and KV-cache bytes on stderr), then the demo
# page is built and served on 127.0.0.1 (the URL is printed; Ctrl-C stops it).
# Installs what is missing first (see setup.sh) and fetches the model.
# Extra arguments go to `wgqa generate`, e.g. --prompt "..." --max-tokens 64.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/fetch-model.sh >/dev/null
source scripts/env.sh
cargo run --release -- generate --chat --prompt "What is the capital of France?" --max-tokens 48 "$@"
echo
scripts/build-web.sh
exec node web/serve.mjs
