//! Parser for `/sys/kernel/debug/vdso/<pid>` reports.
