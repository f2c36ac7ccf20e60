"""Debuggers: GDB's remote serial protocol to QEMU's gdbstub and to real probes (OpenOCD, pyOCD, probe-rs)."""
