"""Block maps (bmaptool's ``.bmap`` XML): which blocks of a sparse image hold data.

A bmap lists the image's size, its block size and the *mapped* block ranges, each with a
checksum of its bytes. Flashing with a bmap sends and writes only those ranges; the exporter
checks each range's checksum as it lands, so a range corrupted on the way fails the flash
and is named. Versions 1.x (SHA-1) and 2.x (any ``hashlib`` name, sha256 in practice) are
read, and the file's own checksum (``BmapFileChecksum``) is verified as bmaptool does.

On the wire a bmap travels as plain data (:meth:`Bmap.to_wire`)::

    {"image_size": 1073741824, "block_size": 4096, "checksum_type": "sha256",
     "ranges": [[0, 255, "5f1e..."], [8192, 8447, "a0b3..."]]}   # first and last block, inclusive
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from jumpstarter_jupyter.drivers.storage.common import ENCODING_FOR_SUFFIX

MAX_RANGES = 1 << 20  # a sane ceiling for one argument on the wire


@dataclass(frozen=True)
class MappedRange:
    """Blocks ``first``..``last`` (inclusive) of the image, and the checksum of their bytes."""

    first: int
    last: int
    checksum: str


@dataclass(frozen=True)
class Bmap:
    """An image's block map: its size in bytes, block size, checksum type and mapped ranges."""

    image_size: int
    block_size: int
    checksum_type: str
    ranges: tuple[MappedRange, ...]

    @property
    def mapped_bytes(self) -> int:
        """How many bytes of the image the ranges cover (what a bmap flash sends)."""
        return sum(self.span(r)[1] for r in self.ranges)

    def span(self, mapped: MappedRange) -> tuple[int, int]:
        """``(offset, length)`` in bytes of a range; the image's last block may be short."""
        offset = mapped.first * self.block_size
        return offset, min((mapped.last + 1) * self.block_size, self.image_size) - offset

    def describe(self, mapped: MappedRange) -> str:
        """How errors name a range: blocks and bytes."""
        offset, length = self.span(mapped)
        return f"range {mapped.first}-{mapped.last} (bytes {offset}-{offset + length - 1})"

    def to_wire(self) -> dict:
        """Plain data for the exporter's ``write_ranges`` (see the module docstring)."""
        return {
            "image_size": self.image_size,
            "block_size": self.block_size,
            "checksum_type": self.checksum_type,
            "ranges": [[r.first, r.last, r.checksum] for r in self.ranges],
        }

    @classmethod
    def from_wire(cls, data: dict) -> Bmap:
        """Check and rebuild what :meth:`to_wire` made; raise ``ValueError`` saying what is wrong."""
        try:
            ranges = tuple(
                MappedRange(int(first), int(last), str(checksum)) for first, last, checksum in data["ranges"]
            )
            bmap = cls(int(data["image_size"]), int(data["block_size"]), str(data["checksum_type"]), ranges)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"bmap: expected image_size, block_size, checksum_type and ranges "
                f"[[first, last, checksum], ...], got {exc!r}"
            ) from None
        bmap.check()
        return bmap

    def check(self) -> None:
        """Raise ``ValueError`` unless the map is consistent: ranges sorted, disjoint, inside the image."""
        if self.checksum_type not in hashlib.algorithms_available:
            raise ValueError(f"bmap: unknown checksum type {self.checksum_type!r}")
        if self.block_size <= 0 or self.block_size % 512 or self.image_size < 0:
            raise ValueError(
                f"bmap: block size {self.block_size} must be a positive multiple of 512, "
                f"image size {self.image_size} >= 0"
            )
        if len(self.ranges) > MAX_RANGES:
            raise ValueError(f"bmap: {len(self.ranges)} ranges, more than {MAX_RANGES}")
        blocks = -(-self.image_size // self.block_size)
        digits = hashlib.new(self.checksum_type).digest_size * 2
        previous = -1
        for r in self.ranges:
            if not previous < r.first <= r.last < blocks:
                raise ValueError(
                    f"bmap: range {r.first}-{r.last} is out of order or outside the image's {blocks} blocks"
                )
            if len(r.checksum) != digits or any(c not in "0123456789abcdef" for c in r.checksum):
                raise ValueError(f"bmap: range {r.first}-{r.last} has no valid {self.checksum_type} checksum")
            previous = r.last


def parse(text: bytes, source: str = "<bmap>") -> Bmap:
    """Read bmaptool's XML (bytes, as on disk: its checksum covers the raw file)."""
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as exc:
        raise ValueError(f"{source}: not a bmap file ({exc})") from None
    if root.tag != "bmap":
        raise ValueError(f"{source}: not a bmap file (root element <{root.tag}>)")
    major = int(root.get("version", "1.0").split(".")[0])
    checksum_type = (_text(root, "ChecksumType", source) if major >= 2 else "sha1").lower()
    attribute = "chksum" if major >= 2 else "sha1"
    ranges = []
    for element in root.iterfind("BlockMap/Range"):
        first, _, last = (element.text or "").strip().partition("-")
        try:
            ranges.append(MappedRange(int(first), int(last or first), element.get(attribute, "").lower()))
        except ValueError:
            raise ValueError(f"{source}: bad <Range> {element.text!r}") from None
    try:
        bmap = Bmap(
            int(_text(root, "ImageSize", source)),
            int(_text(root, "BlockSize", source)),
            checksum_type,
            tuple(ranges),
        )
        bmap.check()
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None
    _check_file_checksum(
        root, text, checksum_type, source, "BmapFileChecksum" if major >= 2 else "BmapFileSHA1"
    )
    return bmap


def _text(root: ElementTree.Element, tag: str, source: str) -> str:
    element = root.find(tag)
    if element is None or not (element.text or "").strip():
        raise ValueError(f"{source}: no <{tag}> in the bmap")
    return element.text.strip()


def _check_file_checksum(
    root: ElementTree.Element, text: bytes, checksum_type: str, source: str, tag: str
) -> None:
    """bmaptool's rule: hash the file with the stored checksum replaced by as many zeros."""
    element = root.find(tag)
    if element is None:  # bmap 1.0-1.2 had none
        return
    stored = (element.text or "").strip()
    computed = hashlib.new(checksum_type, text.replace(stored.encode(), b"0" * len(stored))).hexdigest()
    if computed != stored.lower():
        raise ValueError(
            f"{source}: the bmap file is corrupt (its {checksum_type} is {computed}, it says {stored})"
        )


def load(path: str | os.PathLike) -> Bmap:
    """Read and check the bmap file at ``path``."""
    return parse(Path(path).read_bytes(), str(path))


def beside(image: str | os.PathLike) -> Path | None:
    """The bmap next to ``image``, as bmaptool finds it: ``IMAGE.bmap``, then without a
    compression suffix (``rootfs.img.xz`` -> ``rootfs.img.bmap``), then without the last suffix."""
    image = Path(image)
    candidates = [image.with_name(image.name + ".bmap")]
    if image.suffix.lower() in ENCODING_FOR_SUFFIX:
        image = image.with_suffix("")
        candidates.append(image.with_name(image.name + ".bmap"))
    if image.suffix:
        candidates.append(image.with_suffix(".bmap"))
    return next((c for c in candidates if c.is_file()), None)
