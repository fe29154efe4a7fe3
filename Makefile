# SPDX-License-Identifier: GPL-2.0
#
# vdso_probe developer entry point. `make check` and `make demo` set everything up themselves
# (toolchain, kernel source, test kernels); `make KDIR=<built Rust kernel>` builds the module
# against your own tree. Multi-line logic lives in scripts/.

FLAVOUR ?= default
ifeq ($(FLAVOUR),debug)
LLVM ?= -19
endif
# The arm64 flavour: the kernel and module cross-built with clang, the userspace for aarch64.
ifeq ($(FLAVOUR),arm64)
LLVM ?= -19
ARCH := arm64
TARGET := aarch64-unknown-linux-gnu
else
TARGET := x86_64-unknown-linux-gnu
endif
CACHE := $(shell bash -c '. scripts/lib.sh && echo $$CACHE')
# Cargo's build directory lives in the cache too (scripts/lib.sh), so that a fresh clone reuses
# the compiled dependencies; set CARGO_TARGET_DIR to put it elsewhere.
export CARGO_TARGET_DIR := $(shell bash -c '. scripts/lib.sh && echo $$CARGO_TARGET_DIR')
BINDGEN := $(CACHE)/bindgen/bin/bindgen
KMAKE_RUST := RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc BINDGEN=$(BINDGEN) \
	CLIPPY_DRIVER=/usr/bin/clippy-driver $(if $(LLVM),LLVM=$(LLVM)) $(if $(ARCH),ARCH=$(ARCH))
MO := $(CURDIR)/build/kmod/$(FLAVOUR)
KO := $(MO)/rust/vdso_probe.ko
export LIBCLANG_PATH := /usr/lib/llvm-19/lib

.PHONY: all modules setup kernel samples selftests test guest clean rust-analyzer clippy fmt fmt-check \
	check demo shell mutants

all: modules

setup:
	@scripts/setup

# KDIR given: the user's own built tree. Otherwise the cached test kernel of $(FLAVOUR).
ifdef KDIR
kernel:
	@test -f $(KDIR)/Module.symvers || { echo "KDIR=$(KDIR) has no Module.symvers: build it with 'make modules' first"; exit 1; }
else
kernel: setup
	@scripts/build-kernel $(FLAVOUR) >/dev/null
KDIR = $(shell scripts/build-kernel $(FLAVOUR) 2>/dev/null)
endif

# LINT=1: with clippy and W=1, and a warning fails the build (make check builds the guests' module
# so: the same object code, one compilation instead of two).
modules: kernel
	@mkdir -p $(MO)
ifeq ($(LINT),1)
	$(call kbuild_lint,$(MO))
else
	$(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MO) $(KMAKE_RUST) modules
endif

# Builds the module into $(1) with CLIPPY=1 W=1; fails on its exit status or on any warning:
# rustc's and clippy's (`warning: ...`), the C compiler's (`file:line:col: warning: ...`),
# modpost's (`WARNING: ...`). A failed lint removes the objects, since kbuild would not compile
# them again, nor repeat the warnings, and the next run would pass.
define kbuild_lint
	@{ $(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(1) $(KMAKE_RUST) CLIPPY=1 W=1 modules 2>&1; \
		echo $$? >$(1)/lint.rc; } | tee $(1)/lint.log
	@test "$$(cat $(1)/lint.rc)" = 0 && \
		! grep -E '^(warning|error)|: (warning|error):|^WARNING:' $(1)/lint.log || \
		{ rm -f $(1)/rust/*.o $(1)/rust/*.ko; exit 1; }
endef

# Static userspace programs for the guest (and the host). `make test` runs the workspace's tests
# with the same profile, target and flags: they test the code the guest runs, and share its
# compiled dependencies (a cold build compiles them once).
# (aarch64: the flags and the cross linker are in .cargo/config.toml.)
# Freshness by content, not mtime (cargo's -Zchecksum-freshness, enabled on the stable cargo by
# RUSTC_BOOTSTRAP=1 as the kernel's own Rust build does): a fresh clone's files are all new by
# mtime, and would recompile every crate of the workspace in the shared CARGO_TARGET_DIR; by
# content, a clone recompiles only the crates it changed. The workspace denies
# `unstable_features`, so RUSTC_BOOTSTRAP lets no #![feature] into its own code (Cargo.toml);
# some dependencies (anyhow, proc-macro2) see it and use nightly features, as on a nightly.
# A build script's rerun-if-changed still compares mtimes, which a fresh clone renews: the two
# build scripts read copies of their inputs (the ABI header for bindgen, the C benchmark loop)
# in the target directory, each replaced only when its content changes (stage-inputs). The
# unstable flag by its environment variable: cargo clippy runs a cargo of its own, which a -Z
# on the command line would not reach, and a build without it fingerprints differently.
STAGED := $(CARGO_TARGET_DIR)/staged
STAGED_INPUTS := rust/uapi/vdso_probe.h samples/vdso-tools/c/classic_loop.c
CARGO := VDSO_PROBE_STAGED=$(STAGED) RUSTC_BOOTSTRAP=1 CARGO_UNSTABLE_CHECKSUM_FRESHNESS=true cargo
ifeq ($(TARGET),x86_64-unknown-linux-gnu)
CARGO_STATIC := RUSTFLAGS="-C target-feature=+crt-static" $(CARGO)
else
CARGO_STATIC := $(CARGO)
endif
samples: stage-inputs
	$(CARGO_STATIC) build --release --locked --workspace --target $(TARGET)

test: stage-inputs
	$(CARGO_STATIC) test --release --locked --workspace --target $(TARGET) $(TEST_ARGS)

# Everything scripts/vm puts into the initramfs (on arm64: no ia32 program and no selftests yet;
# README, arm64).
ifeq ($(FLAVOUR),arm64)
guest: modules samples
else
guest: modules samples build/guest/static32 selftests
endif

# The kernel's own vDSO, vsyscall, mremap and timens selftests (scripts/build-selftests, cached),
# as /selftests in the guest, with the loaders and libc of the dynamic ones.
selftests: setup
	@d=$$(scripts/build-selftests) && rm -rf build/guest/selftests build/guest/root && \
		mkdir -p build/guest && cp -a "$$d/bin" build/guest/selftests && cp -a "$$d/root" build/guest/root

build/guest/static32: samples/guest-tests/c/static32.c
	@mkdir -p $(@D)
	gcc -m32 -static -O2 -Wall -o $@ $<

rust-analyzer: kernel
	$(MAKE) -C $(KDIR) M=$(CURDIR) MO=$(MO) $(KMAKE_RUST) rust-analyzer
	@cp $(MO)/rust-project.json . 2>/dev/null || true

# The module for this flavour's kernel and for arm64's, then the workspace for both arches.
clippy: clippy-module
ifneq ($(FLAVOUR),arm64)
	@$(MAKE) -s FLAVOUR=arm64 clippy-module
endif
	@$(MAKE) -s clippy-workspace

# Into a directory of its own, so that the .ko the VMs boot with is never half rewritten.
.PHONY: clippy-module
clippy-module: kernel
	@mkdir -p $(MO)-clippy
	$(call kbuild_lint,$(MO)-clippy)

# The workspace alone, for both arches (make check lints the module in its build, LINT=1).
.PHONY: clippy-workspace stage-inputs
stage-inputs:
	@mkdir -p $(STAGED)
	@for f in $(STAGED_INPUTS); do cmp -s $$f $(STAGED)/$${f##*/} || cp $$f $(STAGED)/ || exit 1; done

clippy-workspace: stage-inputs
	$(CARGO_STATIC) clippy --release --locked --workspace --all-targets --target $(TARGET) -- -D warnings
	$(CARGO) clippy --release --locked --workspace --all-targets --target aarch64-unknown-linux-gnu -- -D warnings

fmt:
	rustfmt --edition 2021 --config-path .rustfmt.toml rust/vdso_probe_main.rs
	cargo fmt --all

fmt-check:
	rustfmt --check --edition 2021 --config-path .rustfmt.toml rust/vdso_probe_main.rs
	cargo fmt --all --check

# All tests: host cargo tests, the runner's self-test, and the guest suite on the boot matrix.
check: setup
	@scripts/check

demo: guest
	@scripts/demo

shell: guest
	@scripts/vm

clean:
	rm -rf build rust-project.json
	cargo clean

# The benchmarks (printed, not asserted): host, default-kernel, -icount, arm64 and debug-kernel boots.
.PHONY: bench
bench: guest
	@$(MAKE) -s FLAVOUR=debug guest
	@$(MAKE) -s FLAVOUR=arm64 guest
	@scripts/bench

# The reliability suite alone (stress + bad input) on the debug kernel, full version
# (STRESS_SCALE=5; scripts/stress --help for the options).
.PHONY: stress
stress: setup
	@scripts/stress

# Each deliberate mutation of the userspace library must make one of its tests fail.
mutants:
	@scripts/mutants
