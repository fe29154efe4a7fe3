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
# The arm64 guest's busybox (the host's is amd64; the arm64 package conflicts with it, so it is
# unpacked into the cache, not installed): the machine's own Debian release.
BUSYBOX_ARM64_SUITE=bookworm
BUSYBOX_ARM64_VERSION=1:1.35.0-4+deb12u1+b1
BUSYBOX_ARM64_SHA256=732c9135564fc71337e0e05fb4da4d11e6c28c1834bce3e405e575afef2a52f5
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

# The arch of a test-kernel flavour: arm64 is its own flavour; default and debug are x86_64.
karch() { [ "$1" = arm64 ] && echo arm64 || echo x86_64; }

# The config fragments of a flavour, in merge order: common, the arch's facts, the flavour's own
# (the arm64 flavour's own fragment is its arch's).
kfragments() {
    local k=$ROOT/scripts/kconfig arch
    arch=$(karch "$1")
    echo "$k/common.config"
    [ "$arch" = "$1" ] || echo "$k/$arch.config"
    echo "$k/$1.config"
}

# Extra kbuild arguments per flavour: the debug kernel is clang-built (KASAN with Rust needs it),
# arm64 is cross-built with clang (one compiler for every target; Rust needs LLVM there too).
kbuild_llvm() {
    case $1 in
        debug) echo LLVM=-19 ;;
        arm64) echo ARCH=arm64 LLVM=-19 ;;
    esac
}

# The kernel image a flavour boots, inside its build directory.
kimage() { [ "$(karch "$1")" = arm64 ] && echo arch/arm64/boot/Image || echo arch/x86/boot/bzImage; }

# The cache directory of a built flavour: version, fragments and toolchain in the key.
kbuild_dir() {
    local key frags
    mapfile -t frags < <(kfragments "$1")
    key=$( { echo "$KVER $1"; cat "${frags[@]}"
             /usr/bin/rustc --version 2>/dev/null; gcc --version | head -n1; } | sha256sum | cut -c1-12)
    echo "$CACHE/kernel/$KVER-$1-$key"
}

# deb_download PKG VERSION SHA256 OUT [SUITE [ARCH]]: fetch a package of SUITE (default $KSUITE)
# for ARCH (default amd64) into OUT through a private apt configuration whose mirror is read from
# this machine's own apt sources, and verify the pinned SHA256. An interrupted download leaves
# only OUT.part, which the caller's trap removes.
deb_download() {
    local pkg=$1 version=$2 sha256=$3 out=$4 suite=${5:-$KSUITE} arch=${6:-amd64} mirror apt line url sha
    mirror=$(
        { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'
          grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}'
        } | grep -v -- '-security' | grep -E '/debian/?$' | head -n1 || true)
    [ -n "$mirror" ] || die "no Debian mirror found in /etc/apt/sources.list{,.d}: add one, or pass KDIR=<your built kernel>"
    apt=$CACHE/apt/$suite-$arch
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} $suite main" >"$apt/sources.list"
    local opts=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
                -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Architecture="$arch"
                -o APT::Architectures="$arch")
    # Not found (lists missing or stale on a new machine): update the lists and ask again.
    line=$(apt-get "${opts[@]}" download --print-uris "$pkg=$version" 2>/dev/null | tail -n1 || true)
    if [ -z "$line" ]; then
        step "apt-get update ($suite $arch, private lists in $apt)"
        apt-get "${opts[@]}" update -q >&2
        line=$(apt-get "${opts[@]}" download --print-uris "$pkg=$version" 2>/dev/null | tail -n1 || true)
    fi
    [ -n "$line" ] || die "$pkg=$version ($arch) is not in $suite any more; update its version and SHA256 in scripts/lib.sh"
    url=$(echo "$line" | awk '{print $1}' | tr -d "'")
    sha=$(echo "$line" | awk '{print $4}' | sed 's/^SHA256://')
    [ "$sha" = "$sha256" ] || die "SHA256 of $pkg $version in the archive ($sha) differs from the pinned one ($sha256)"
    curl -fL --progress-bar -o "$out.part" "$url"
    echo "$sha256  $out.part" | sha256sum -c --quiet - || die "SHA256 mismatch on download; delete $out.part and retry"
    mv "$out.part" "$out"
}
