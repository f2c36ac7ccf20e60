"""Python API of storage muxes: switch the card, flash images, dump it."""

from __future__ import annotations

import os
from pathlib import Path

import click

from jumpstarter_jupyter.client import DriverClient
from jumpstarter_jupyter.client.streams import Progress

# images are sent as they are on disk and decompressed by the exporter (fewer bytes on the wire)
ENCODING_FOR_SUFFIX = {".gz": "gzip", ".xz": "xz", ".zst": "zstd", ".bz2": "bz2"}


def image_encoding(path: str | os.PathLike) -> str | None:
    """The content encoding of an image file, from its suffix (None: a plain image).

    >>> image_encoding("rootfs.img.zst"), image_encoding("rootfs.img")
    ('zstd', None)
    """
    return ENCODING_FOR_SUFFIX.get(Path(path).suffix.lower())


class StorageMuxClient(DriverClient):
    """``dut.storage``: ``host()``, ``dut()``, ``off()``, ``flash(path)``, ``dump(path)``.

    An image travels compressed (here with xz) and lands decompressed on the card:

    >>> import lzma, os, tempfile
    >>> from jumpstarter_jupyter.drivers.storage.driver import MockStorageMux
    >>> from jumpstarter_jupyter.testing import serve
    >>> folder = tempfile.mkdtemp()
    >>> image = os.path.join(folder, "image.img.xz")
    >>> with open(image, "wb") as file:
    ...     _ = file.write(lzma.compress(b"boot sector" * 1000))
    >>> with serve(MockStorageMux()) as storage:
    ...     storage.flash(image)
    ...     storage.state()
    ...     storage.dump(os.path.join(folder, "backup.img"))
    'dut'
    >>> open(os.path.join(folder, "backup.img"), "rb").read() == b"boot sector" * 1000
    True
    """

    widget = "jumpstarter_jupyter.drivers.storage.widget.StorageMuxWidget"

    def host(self) -> None:
        """Connect the storage to the host (the exporter)."""
        self.call("host")

    def dut(self) -> None:
        """Connect the storage to the DUT."""
        self.call("dut")

    def off(self) -> None:
        """Disconnect the storage from both."""
        self.call("off")

    def state(self) -> str | None:
        """``"host"``, ``"dut"`` or ``"off"``; None when the exporter cannot tell (upstream drivers).

        >>> from jumpstarter_jupyter.drivers.storage.driver import MockStorageMux
        >>> from jumpstarter_jupyter.testing import serve
        >>> with serve(MockStorageMux()) as storage:
        ...     storage.dut()
        ...     storage.state()
        'dut'
        """
        if self.methods is None or "state" not in self.methods:
            return None
        return str(self.call("state"))

    def write_local_file(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Write the local file ``path`` onto the storage byte for byte (no switching)."""
        self._upload(path, None, progress)

    def read_local_file(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Copy the storage's contents into the local file ``path`` (no switching)."""
        with open(path, "wb") as sink:
            self.download("read", sink, progress=progress)

    def flash(self, path: str | os.PathLike, progress: Progress | None = None,
              compression: str | None = None) -> None:
        """Switch to the host, write the image ``path``, switch to the DUT.

        ``.gz``, ``.xz``, ``.zst`` and ``.bz2`` images travel compressed and land
        decompressed; ``compression`` (``gzip``, ``xz``, ``zstd``, ``bz2``) overrides the
        suffix, as upstream's ``--compression``. ``progress(bytes_sent, total)`` is called as
        the file is sent. If writing fails the storage stays on the host.
        """
        self.host()
        self._upload(path, compression or image_encoding(path), progress)
        self.dut()

    def dump(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Switch to the host, copy the storage into the local file ``path``, switch to the DUT."""
        self.host()
        self.read_local_file(path, progress)
        self.dut()

    def _upload(self, path: str | os.PathLike, encoding: str | None, progress: Progress | None) -> None:
        with open(path, "rb") as source:
            self.upload("write", source, encoding=encoding, total=os.fstat(source.fileno()).st_size,
                        progress=progress)

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.storage.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group
