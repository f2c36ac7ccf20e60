"""Types shared by screen drivers, the client and the widget: frames and key names.

Key names are QEMU's ``QKeyCode`` names (``ctrl``, ``alt``, ``delete``, ``ret``, ``f1``, ``a``),
with the aliases people type (``del``, ``enter``, ``escape``); a combination joins them with
``-`` or ``+``: ``"ctrl-alt-del"``, ``"shift+f10"``. Typed text is US keyboard layout.
"""

from __future__ import annotations

import base64
import io
import re
import string
from dataclasses import dataclass

CLIENT = "jumpstarter_jupyter.drivers.screen.client.ScreenClient"
# upstream client classes -> ours (client.tree reads it): ustreamer's, and the video driver's after 0.9.0
UPSTREAM_CLIENTS = {
    "jumpstarter_driver_ustreamer.client.UStreamerClient": CLIENT,
    "jumpstarter_driver_video.client.VideoClient": CLIENT,
}
FORMATS = {b"\xff\xd8": "jpeg", b"\x89P": "png", b"P6": "ppm"}  # what an encoded frame starts with

ALIASES = {
    "control": "ctrl",
    "del": "delete",
    "enter": "ret",
    "return": "ret",
    "escape": "esc",
    "space": "spc",
    "pageup": "pgup",
    "pagedown": "pgdn",
    "ins": "insert",
    "win": "meta_l",
    "super": "meta_l",
    "meta": "meta_l",
    "altgr": "alt_r",
    "bksp": "backspace",
    "arrowup": "up",
    "arrowdown": "down",
    "arrowleft": "left",
    "arrowright": "right",
    "capslock": "caps_lock",
    "-": "minus",
    "=": "equal",
}
NAMED = {
    "ctrl",
    "ctrl_r",
    "alt",
    "alt_r",
    "shift",
    "shift_r",
    "meta_l",
    "meta_r",
    "delete",
    "ret",
    "esc",
    "tab",
    "backspace",
    "spc",
    "up",
    "down",
    "left",
    "right",
    "home",
    "end",
    "pgup",
    "pgdn",
    "insert",
    "caps_lock",
    "menu",
    "sysrq",
    "print",
    "pause",
    *(f"f{n}" for n in range(1, 13)),
}
# characters on the US layout: unshifted key, and the characters that need shift on that key
PLAIN = {
    **{c: c for c in string.ascii_lowercase + string.digits},
    " ": "spc",
    "\n": "ret",
    "\r": "ret",
    "\t": "tab",
    "-": "minus",
    "=": "equal",
    "[": "bracket_left",
    "]": "bracket_right",
    "\\": "backslash",
    ";": "semicolon",
    "'": "apostrophe",
    "`": "grave_accent",
    ",": "comma",
    ".": "dot",
    "/": "slash",
    "\b": "backspace",
}
SHIFTED = {
    **{c.upper(): c for c in string.ascii_lowercase},
    "!": "1",
    "@": "2",
    "#": "3",
    "$": "4",
    "%": "5",
    "^": "6",
    "&": "7",
    "*": "8",
    "(": "9",
    ")": "0",
    "_": "minus",
    "+": "equal",
    "{": "bracket_left",
    "}": "bracket_right",
    "|": "backslash",
    ":": "semicolon",
    '"': "apostrophe",
    "~": "grave_accent",
    "<": "comma",
    ">": "dot",
    "?": "slash",
}


@dataclass(frozen=True)
class Frame:
    """One encoded picture of a screen: ``seq`` counts pictures since the source started."""

    seq: int
    data: bytes
    width: int
    height: int

    @property
    def format(self) -> str:
        """``jpeg``, ``png`` or ``ppm``, from the data's first bytes."""
        return FORMATS.get(self.data[:2], "unknown")

    def to_wire(self) -> dict:
        """Plain data for the wire (bytes travel as base64 text)."""
        return {
            "seq": self.seq,
            "width": self.width,
            "height": self.height,
            "data": base64.b64encode(self.data).decode("ascii"),
        }

    @classmethod
    def from_wire(cls, value: dict) -> Frame:
        return cls(
            int(value["seq"]), base64.b64decode(value["data"]), int(value["width"]), int(value["height"])
        )


def image_size(data: bytes) -> tuple[int, int]:
    """Width and height of an encoded picture (Pillow reads only its header)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def key_names(combo: str) -> list[str]:
    """``"ctrl-alt-del"`` -> ``["ctrl", "alt", "delete"]``; ValueError naming an unknown key."""
    parts = re.split(r"[-+](?=.)", combo.strip().lower()) if combo.strip() else []
    if not parts:
        raise ValueError("no key given: write e.g. 'ret', 'ctrl-c' or 'ctrl-alt-del'")
    names = []
    for part in parts:
        name = ALIASES.get(part, part)
        if name not in NAMED and name not in PLAIN.values():
            name = PLAIN.get(part, "")
        if not name:
            raise ValueError(
                f"unknown key {part!r} in {combo!r}: use letters, digits, ctrl, alt, shift, meta, "
                "ret, esc, tab, backspace, delete, spc, up/down/left/right, home, end, pgup, pgdn, f1-f12"
            )
        names.append(name)
    return names


def text_keys(text: str) -> list[list[str]]:
    """The key combinations that type ``text`` on a US layout; ValueError for a character it lacks."""
    keys = []
    for char in text:
        if char in PLAIN:
            keys.append([PLAIN[char]])
        elif char in SHIFTED:
            keys.append(["shift", SHIFTED[char]])
        else:
            raise ValueError(f"cannot type {char!r}: only US-keyboard ASCII characters, newline and tab")
    return keys
