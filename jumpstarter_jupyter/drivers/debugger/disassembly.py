"""Disassembly with capstone, for the target description's architecture (the ``debug`` extra)."""

from __future__ import annotations

from typing import Any


def _engine(architecture: str) -> Any:
    try:
        import capstone
    except ImportError:
        raise ImportError("disassembly needs capstone: pip install 'jumpstarter-jupyter[debug]'") from None
    arm64 = getattr(capstone, "CS_ARCH_ARM64", None) or capstone.CS_ARCH_AARCH64
    modes = {
        "i386:x86-64": (capstone.CS_ARCH_X86, capstone.CS_MODE_64),
        "i386": (capstone.CS_ARCH_X86, capstone.CS_MODE_32),
        "aarch64": (arm64, capstone.CS_MODE_ARM),
        "arm": (capstone.CS_ARCH_ARM, capstone.CS_MODE_ARM),
        "riscv:rv64": (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC),
        "riscv:rv32": (capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV32 | capstone.CS_MODE_RISCVC),
    }
    if architecture not in modes:
        raise ValueError(f"no disassembler for architecture {architecture!r}; known: {', '.join(modes)}")
    return capstone.Cs(*modes[architecture])


def disassemble(architecture: str, code: bytes, address: int, count: int = 16) -> list[tuple[int, str, str]]:
    """Up to ``count`` instructions of ``code`` at ``address``: (address, hex bytes, ``mnemonic args``)."""
    lines = []
    for insn in _engine(architecture).disasm(code, address):
        lines.append((insn.address, insn.bytes.hex(), f"{insn.mnemonic} {insn.op_str}".strip()))
        if len(lines) == count:
            break
    return lines
