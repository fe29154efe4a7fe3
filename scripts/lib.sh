# Shared settings for scripts/*: sourced, never run.
# shellcheck shell=bash
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${VDSO_PROBE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vdso_probe}
KVER=7.3.4
KPKG=linux-source-7.3
KPKG_VERSION=7.3.4-1~bpo13+1
KPKG_SHA256=703e369ddd4cce971452f5a593ee55df3a5c10c83caf0fa0df039633ed181ee3
KSUITE=trixie-backports
# Debian's configuration of the same kernel (scripts/kconfig/debian.options is checked against it).
DEBCFG_PKG=linux-config-7.3
DEBCFG_VERSION=$KPKG_VERSION
DEBCFG_SHA256=1161d8946bd74094857fc1950da809a14e1b3aafe4f3defbec83150520e3e82c
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

# deb_download PKG VERSION SHA256 OUT: fetch a package of $KSUITE into OUT through a private apt
# configuration whose mirror is read from this machine's own apt sources, and verify the pinned
# SHA256. An interrupted download leaves only OUT.part, which the caller's trap removes.
deb_download() {
    local pkg=$1 version=$2 sha256=$3 out=$4 mirror apt line url sha
    # The mirror URI of the machine's Debian archive (not the security archive), deb822 or
    # one-line.
    mirror=$(
        { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
          grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
        } | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}: add one, or pass KDIR=<your built kernel>"
    apt=$CACHE/apt
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} $KSUITE main" >"$apt/sources.list"
    local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Architecture=amd64)
    # Not found (lists missing or stale on a new machine): update the lists and ask again.
    line=$(apt-get "${opts[@]}" download --print-uris "$pkg=$version" 2>/dev/null | tail -n1 || true)
    if [ -z "$line" ]; then
        step "apt-get update ($KSUITE, private lists in $apt)"
        apt-get "${opts[@]}" update -q >&2
        line=$(apt-get "${opts[@]}" download --print-uris "$pkg=$version" 2>/dev/null | tail -n1 || true)
    fi
    [ -n "$line" ] || die "$pkg=$version is not in $KSUITE any more; update its version and SHA256 in scripts/lib.sh"
    url=$(echo "$line" | awk '{print $1}' | tr -d "'")
    sha=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
    [ "$sha" = "$sha256" ] || die "SHA256 of $pkg $version in the archive ($sha) differs from the pinned one ($sha256)"
    curl -fL --progress-bar -o "$out.part" "$url"
    echo "$sha256  $out.part" | sha256sum -c --quiet - || die "SHA256 mismatch on download; delete $out.part and retry"
    mv "$out.part" "$out"
}
