# Sourced by the scripts: a writable runtime dir keeps the Vulkan loader quiet.
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/wgqa-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
