#!/usr/bin/env bash
# Builds the browser package: the wasm module (release), its JS bindings and
# the npm wrapper, as the npm package `wgqa` in target/npm/. The demo page
# loads that same package (web/serve.mjs serves it under /wgqa/), so the
# page exercises what users install.
# Needs the tools scripts/setup.sh installs (wasm target, wasm-bindgen-cli).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --lib --target wasm32-unknown-unknown --release
# Where cargo put the wasm (CARGO_TARGET_DIR may move it) and the crate version.
meta="$(cargo metadata --format-version 1 --no-deps)"
field() { node -e 'const m = JSON.parse(process.argv[1]); console.log(eval(process.argv[2]))' "$meta" "$1"; }
target_dir="$(field 'm.target_directory')"
version="$(field 'm.packages.find((p) => p.name === "wgqa").version')"

# The npm package lives under target/ so nothing generated is committed.
npm_dir=target/npm
rm -rf "$npm_dir"
mkdir -p "$npm_dir"
wasm-bindgen --target web --out-dir "$npm_dir" "$target_dir/wasm32-unknown-unknown/release/wgqa.wasm"
cp web/npm/index.js web/npm/index.d.ts web/npm/model.js web/npm/download.js web/npm/README.md "$npm_dir/"
# The package version follows the crate's.
node -e 'const fs = require("fs"); const p = JSON.parse(fs.readFileSync(process.argv[1])); p.version = process.argv[2]; fs.writeFileSync(process.argv[3], JSON.stringify(p, null, 2) + "\n")' \
    web/npm/package.json "$version" "$npm_dir/package.json"
echo "build-web: $npm_dir/ (wgqa $version)"
