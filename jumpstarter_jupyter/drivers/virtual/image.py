"""The virtual board's boot image format: what its bootloader accepts from the storage mux.

An image is one header line, then the payload (a stand-in root filesystem)::

    JSIMG1 {"name": "Jumpstarter Linux", "version": "1.0", "size": 65536, "sha256": "..."}\\n
    <size bytes of payload>

The bootloader boots it only if the magic, the JSON, the payload size and its SHA-256 all
check out; anything else (an empty card, garbage, a truncated write) is "no bootable image".

>>> info = parse_image(make_image("Jumpstarter Linux", "2.0"))
>>> info.name, info.version
('Jumpstarter Linux', '2.0')
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from typing import IO

MAGIC = b"JSIMG1 "
MAX_HEADER = 4096
DEFAULT_PAYLOAD = 64 << 10
CHUNK = 1 << 20


class BadImage(ValueError):
    """The storage holds no bootable image; the message says why (for the boot log)."""


@dataclass(frozen=True)
class ImageInfo:
    """What the bootloader learns from a valid image header."""

    name: str
    version: str
    size: int


def make_image(name: str, version: str, payload_size: int = DEFAULT_PAYLOAD) -> bytes:
    """A bootable image announcing OS ``name`` ``version`` with ``payload_size`` bytes of payload."""
    if not name or not version or "\n" in name + version:
        raise ValueError(f"image name and version must be non-empty single lines, got {name!r} {version!r}")
    if payload_size < 0:
        raise ValueError(f"payload_size must be >= 0 bytes, got {payload_size}")
    seed = f"{name} {version} rootfs\n".encode()
    payload = (seed * (payload_size // len(seed) + 1))[:payload_size]
    header = {
        "name": name,
        "version": version,
        "size": payload_size,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def parse_image(data: bytes) -> ImageInfo:
    """Check an image held in memory; raises :class:`BadImage`."""
    return read_image(io.BytesIO(data))


def read_image(source: IO[bytes]) -> ImageInfo:
    """Check the image read from ``source`` (header, size, checksum); raises :class:`BadImage`."""
    line = source.readline(MAX_HEADER)
    if not line:
        raise BadImage("the card is empty")
    if not line.startswith(MAGIC) or not line.endswith(b"\n"):
        raise BadImage("no image header (unknown format)")
    try:
        header = json.loads(line[len(MAGIC) :])
        info = ImageInfo(str(header["name"]), str(header["version"]), int(header["size"]))
        expected = str(header["sha256"])
    except (ValueError, KeyError, TypeError):
        raise BadImage("corrupt image header") from None
    digest, size = hashlib.sha256(), 0
    while size < info.size and (chunk := source.read(min(CHUNK, info.size - size))):
        digest.update(chunk)
        size += len(chunk)
    if size < info.size:
        raise BadImage(f"image truncated ({size} of {info.size} payload bytes)")
    if digest.hexdigest() != expected:
        raise BadImage("image checksum mismatch")
    return info  # bytes after the payload are free space on the card, as on a real one
