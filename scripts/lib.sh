# Shared settings for scripts/*: sourced, never run.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VDSO_PROBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vdso_probe}
KVER=7.3.4
KPKG=linux-source-7.3
KPKG_VERSION=7.3.4-1~bpo13+1
KPKG_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
KSUITE=trixie-backports
# Cargo's build directory is cached across clones (a fresh clone then compiles only its own crates).
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CACHE/target}
BINDGEN_VERSION=0.71.1
BINDGEN=$CACHE/bindgen/bin/bindgen
export LIBCLANG_PATH=/usr/lib/llvm-19/lib
# Debian's rustc 1.96 has rust-src; rustup's (first in PATH) has not.
KMAKE_RUST=(RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN="$BINDGEN"
            CLIPPY_DRIVER=/usr/bin/clippy-driver)

step() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 1; }

# Extra kbuild arguments per flavour: the debug kernel is clang-built (KASAN with Rust needs it).
kbuild_llvm() { [ "$1" = debug ] && echo LLVM=-19 || true; }

# The cache directory of a built flavour: version, fragments and toolchain in the key.
kbuild_dir() {
    local key
    key=$( { echo "$KVER $1"; cat "$ROOT/scripts/kconfig/common.config" "$ROOT/scripts/kconfig/$1.config"
             /usr/bin/rustc --version 2>/dev/null; gcc --version | head -n1; } | sha256sum | cut -c1-12)
    echo "$CACHE/kernel/$KVER-$1-$key"
}
