"""Symbol tables for the debugger client: from an ELF file, a ``System.map`` or ``/proc/kallsyms``.

``System.map`` and ``/proc/kallsyms`` share one line format, ``ADDRESS TYPE NAME [module]``.
Debian's kernel packages ship no real ``System.map``; a root shell on the target prints
``/proc/kallsyms`` with the addresses of this boot (KASLR included): grep what you need, the
whole file is megabytes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

LINE = re.compile(r"^([0-9a-fA-F]{4,16})\s+([a-zA-Z])\s+(\S+)")
EXPRESSION = re.compile(r"^\s*([A-Za-z_.$][\w.$]*)\s*(?:([+-])\s*(0x[0-9a-fA-F]+|\d+))?\s*$")


def load(source: str | os.PathLike) -> dict[str, int]:
    """Symbols of ``source``: an ELF file's path, a System.map/kallsyms file's path, or such text."""
    if isinstance(source, os.PathLike) or ("\n" not in str(source) and not LINE.match(str(source))):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(
                f"no symbol file {path} (give an ELF file, a System.map, or kallsyms text)"
            )
        with open(path, "rb") as file:
            if file.read(4) == b"\x7fELF":
                return _elf(path)
        return parse_map(path.read_text(errors="replace"), str(path))
    return parse_map(str(source), "the text")


def parse_map(text: str, where: str = "the text") -> dict[str, int]:
    """``ADDRESS TYPE NAME`` lines (System.map, /proc/kallsyms); other lines are skipped."""
    found = {}
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if match:
            found.setdefault(match.group(3), int(match.group(1), 16))
    if not found:
        raise ValueError(f"no 'ADDRESS TYPE NAME' lines in {where}")
    if not any(found.values()):
        raise ValueError(
            f"every address in {where} is 0: the kernel hides them (kptr_restrict); "
            "read /proc/kallsyms as root"
        )
    return found


def _elf(path: Path) -> dict[str, int]:
    try:
        from elftools.elf.elffile import ELFFile
    except ImportError:
        raise ImportError(
            "reading ELF symbols needs pyelftools: pip install 'jumpstarter-jupyter[debug]'"
        ) from None
    found: dict[str, int] = {}
    with open(path, "rb") as file:
        elf = ELFFile(file)
        for section_name in (".symtab", ".dynsym"):
            section = elf.get_section_by_name(section_name)
            for symbol in section.iter_symbols() if section is not None else ():
                if (
                    symbol.name
                    and symbol.entry.st_value
                    and symbol.entry.st_info.type in ("STT_FUNC", "STT_OBJECT", "STT_NOTYPE")
                ):
                    found.setdefault(symbol.name, symbol.entry.st_value)
    if not found:
        raise ValueError(
            f"{path} has no symbols (stripped?): use its unstripped ELF, a System.map or kallsyms"
        )
    return found


def resolve(table: dict[str, int], where: int | str) -> int:
    """An address from an int, hex/decimal text, ``symbol`` or ``symbol+offset``."""
    if isinstance(where, int):
        return where
    text = str(where).strip()
    try:
        return int(text, 0)
    except ValueError:
        pass
    match = EXPRESSION.match(text)
    if not match or match.group(1) not in table:
        known = f"{len(table)} symbols loaded" if table else "no symbols loaded: call symbols(source) first"
        raise KeyError(f"unknown symbol {text!r} ({known})")
    offset = int(match.group(3), 0) if match.group(3) else 0
    return table[match.group(1)] + (-offset if match.group(2) == "-" else offset)


def name_of(table: dict[str, int], address: int, reach: int = 1 << 16) -> str:
    """``symbol+0xOFF`` for ``address`` (the nearest symbol below it within ``reach``), else ''."""
    best = max(((value, name) for name, value in table.items() if 0 <= address - value < reach), default=None)
    if best is None:
        return ""
    offset = address - best[0]
    return best[1] + (f"+0x{offset:x}" if offset else "")
