"""Python API of screens: ``snapshot``, ``frames``, ``record``, ``expect_text``, ``expect_image``,
``type`` and ``key``.

Checks read the screen as a person would: ``expect_text`` by OCR (tesseract), ``expect_image``
by perceptual hash (imagehash). Both look at each new frame until one passes or the time is up.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.drivers.screen.common import Frame, image_size
from jumpstarter_jupyter.errors import DriverError, DriverInvalidArgument, DriverTimeout

if TYPE_CHECKING:
    from PIL.Image import Image

Region = tuple[int, int, int, int]  # left, top, right, bottom in pixels (PIL's crop box)
EXTRA_HINT = "pip install 'jumpstarter-jupyter[screen]'"
WAIT_SLICE = 1.0  # seconds per frame request: a kernel interrupt is noticed this fast
OCR_CACHE = 16  # pictures whose text is remembered
SMALL_AREA = 720 * 100  # pixels: a region this small is read at twice its size (a full screen costs too much)
_read: dict[bytes, str] = {}  # OCR results by picture, oldest first


class ImageMismatch(DriverError, AssertionError):
    """``expect_image`` found no frame close enough to the reference; the actual one was saved."""


class ScreenClient(DriverClient):
    """``dut.screen``: the board's display, its keyboard, and checks that read the screen.

    >>> dut.screen.expect_text("login:", timeout=60)     # doctest: +SKIP
    >>> dut.screen.type("root\\n")                       # doctest: +SKIP
    >>> dut.screen.snapshot()                           # doctest: +SKIP
    <PIL.PngImagePlugin.PngImageFile image mode=RGB size=720x400>
    """

    widget = "jumpstarter_jupyter.drivers.screen.widget.ScreenWidget"

    def __init__(self, connection, path, entry):
        super().__init__(connection, path, entry)
        self._polled: Frame | None = None  # the last snapshot, when the exporter has no frame()

    # pictures
    def snapshot(self) -> Image:
        """The present picture as a PIL image (a cell shows it inline)."""
        return decode(base64.b64decode(self.call("snapshot")))

    def state(self) -> dict:
        """The source's state: ``online``, ``width``, ``height``, ``fps``, ``error`` (ustreamer adds more)."""
        state = self.call("state")
        for name in ("width", "height"):
            if isinstance(state.get(name), float):
                state[name] = int(state[name])  # the wire carries numbers as doubles
        return state

    def frame(self, after: int = 0, timeout: float = 1.0) -> Frame | None:
        """The newest encoded frame numbered above ``after`` within ``timeout`` s; None if the picture stayed.

        Exporters without ``frame`` (upstream's) are polled with ``snapshot``: a frame is new when its
        bytes are.
        """
        if self.methods is not None and "frame" in self.methods:
            value = self.call("frame", after, timeout)
            return Frame.from_wire(value) if value else None
        data = base64.b64decode(self.call("snapshot"))
        last = self._polled
        if last is None or last.data != data:
            last = self._polled = Frame((last.seq if last else 0) + 1, data, *image_size(data))
        return last if last.seq > after else None

    def frames(self, fps: float = 5.0, timeout: float | None = None) -> Iterator[Image]:
        """Each new picture, at most ``fps`` a second (pictures in between are skipped), until the
        iterator is closed or ``timeout`` seconds pass."""
        self._positive("frames", fps=fps)
        end = None if timeout is None else time.monotonic() + timeout
        seq = 0
        while end is None or time.monotonic() < end:
            started = time.monotonic()
            frame = self.frame(seq, WAIT_SLICE if end is None else max(min(WAIT_SLICE, end - started), 0.05))
            if frame is not None:
                seq = frame.seq
                yield decode(frame.data)
                time.sleep(max(0.0, 1.0 / fps - (time.monotonic() - started)))  # the rate cap itself

    def record(self, seconds: float, path: str | Path, fps: float = 5.0) -> Path:
        """Record ``seconds`` of the screen into an animated PNG at ``path``; returns the path."""
        self._positive("record", seconds=seconds)
        path = Path(path)
        pictures, times = [], []
        started = time.monotonic()
        for picture in self.frames(fps, timeout=seconds):
            pictures.append(picture.convert("RGB"))
            times.append(time.monotonic() - started)
        if not pictures:
            pictures, times = [self.snapshot().convert("RGB")], [0.0]
        durations = [max(int((b - a) * 1000), 1) for a, b in zip(times, [*times[1:], seconds], strict=True)]
        path.parent.mkdir(parents=True, exist_ok=True)
        pictures[0].save(
            path, format="PNG", save_all=True, append_images=pictures[1:], duration=durations, loop=0
        )
        return path

    # checks
    def read_text(self, region: Region | None = None) -> str:
        """The text on the present picture (or in ``region``), read by OCR."""
        return ocr(self.snapshot(), region, self.display_path)

    def expect_text(
        self, pattern: str | re.Pattern, timeout: float = 30.0, region: Region | None = None
    ) -> re.Match:
        """Wait until OCR finds ``pattern`` (a regex) on the screen, or in ``region``; returns the match.

        Raises :class:`~jumpstarter_jupyter.errors.DriverTimeout` with the text read from the last frame.
        """
        self._positive("expect_text", timeout=timeout)
        regex = re.compile(pattern)
        text = ""
        for picture in self._new_pictures(timeout):
            text = ocr(picture, region, self.display_path)
            found = regex.search(text)
            if found:
                return found
        raise DriverTimeout(
            self.display_path,
            "expect_text",
            f"{regex.pattern!r} not seen within {timeout} s; the last frame read: {text.strip()!r}",
        )

    def expect_image(
        self,
        reference: str | Path | Image,
        tolerance: int = 0,
        region: Region | None = None,
        timeout: float = 10.0,
        hash_size: int = 16,
    ) -> int:
        """Wait until the screen (or ``region`` of it, and of the reference) looks like ``reference``:
        the Hamming distance of their average hashes (``hash_size``² bits) at most ``tolerance``.

        Returns the distance. On failure the last frame is saved as ``FAILED_<reference name>``
        beside the reference (as upstream's imagehash helper does) and :class:`ImageMismatch` says where.
        """
        self._positive("expect_image", timeout=timeout)
        imagehash = _require("imagehash", self.display_path)
        expected = _load(reference)
        wanted = imagehash.average_hash(_crop(expected, region), hash_size=hash_size)
        distance, last = None, None
        for picture in self._new_pictures(timeout):
            last = picture
            distance = wanted - imagehash.average_hash(_crop(picture, region), hash_size=hash_size)
            if distance <= tolerance:
                return int(distance)
        saved = _failed_path(reference)
        last.save(saved)
        raise ImageMismatch(
            self.display_path,
            "expect_image",
            f"distance {distance} > tolerance {tolerance} after {timeout} s; the last frame is "
            f"saved as {saved}",
        )

    def _new_pictures(self, timeout: float) -> Iterator[Image]:
        """The present picture, then each new one, until ``timeout`` seconds have passed."""
        end = time.monotonic() + timeout
        frame = self.frame(0, WAIT_SLICE)
        seq = frame.seq if frame else 0
        if frame is not None:
            yield decode(frame.data)
        else:
            yield self.snapshot()
        while (left := end - time.monotonic()) > 0:
            frame = self.frame(seq, min(WAIT_SLICE, left))
            if frame is not None:
                seq = frame.seq
                yield decode(frame.data)

    # keyboard
    def type(self, text: str) -> None:
        """Type ``text`` on the board's keyboard (US layout; ``\\n`` is Enter)."""
        self.call("type", text)

    def key(self, combo: str) -> None:
        """Press a key combination: ``"ret"``, ``"ctrl-c"``, ``"ctrl-alt-del"``, ``"f2"``."""
        self.call("key", combo)

    def _positive(self, method: str, **values: float) -> None:
        for name, value in values.items():
            if not value > 0:
                raise DriverInvalidArgument(self.display_path, method, f"{name} must be > 0, got {value}")

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.screen.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group


def decode(data: bytes) -> Image:
    """An encoded picture as a loaded PIL image."""
    from PIL import Image

    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


def ocr(picture: Image, region: Region | None, where: str) -> str:
    """Text of a picture (or of ``region``) read by tesseract; a picture read lately is not read again
    (a blinking cursor makes a still console two pictures, and OCR takes seconds on a busy machine)."""
    from PIL import ImageOps

    grey = ImageOps.grayscale(_crop(picture, region))
    key = hashlib.sha1(grey.tobytes()).digest() + bytes(str(grey.size), "ascii")
    if key not in _read:
        _read[key] = _ocr(grey, where)
        while len(_read) > OCR_CACHE:
            _read.pop(next(iter(_read)))
    return _read[key]


def _ocr(grey: Image, where: str) -> str:
    from PIL import Image, ImageOps, ImageStat

    pytesseract = _require("pytesseract", where)
    if grey.width * grey.height <= SMALL_AREA:  # a few lines: enlarged, tesseract misreads fewer letters
        grey = grey.resize((grey.width * 2, grey.height * 2), Image.LANCZOS)
    # light text on a dark screen is a text console: read it as one block of lines (--psm 6);
    # tesseract's own page layout (the default) splits a console's lines into columns
    console = ImageStat.Stat(grey).mean[0] < 128
    try:
        if console:
            return pytesseract.image_to_string(ImageOps.invert(grey), config="--psm 6")
        return pytesseract.image_to_string(grey)
    except pytesseract.TesseractNotFoundError:
        raise FileNotFoundError(
            f"{where}: OCR needs tesseract: run `apt-get install tesseract-ocr` (`make test` does it)"
        ) from None


def _crop(picture: Image, region: Region | None) -> Image:
    return picture if region is None else picture.crop(tuple(region))


def _load(reference: Any) -> Image:
    if isinstance(reference, (str, Path)):
        return decode(Path(reference).read_bytes())
    return reference


def _failed_path(reference: Any) -> Path:
    if isinstance(reference, (str, Path)):
        return Path(reference).with_name(f"FAILED_{Path(reference).name}")
    return Path.cwd() / "FAILED_screen.png"


def _require(module: str, where: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{where}: {module} is not installed: {EXTRA_HINT}") from None
