#!/usr/bin/env bash
# Builds the browser package and serves the demo page on 127.0.0.1; prints
# the URL. PORT=8080 picks the port (default: a free one).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build-web.sh
exec node web/serve.mjs
