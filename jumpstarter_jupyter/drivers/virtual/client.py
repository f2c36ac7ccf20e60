"""Python API and CLI of the virtual board's root: ``flash(path)`` and ``boot_to_shell()``."""

from __future__ import annotations

import os

import click

from jumpstarter_jupyter.client.streams import Progress
from jumpstarter_jupyter.drivers.composite.client import CompositeClient
from jumpstarter_jupyter.drivers.storage.client import image_encoding


class VirtualBoardClient(CompositeClient):
    """``dut`` of the virtual board: its children plus exporter-side orchestration.

    Flash another image (compressed on the way) and boot into it:

    >>> import os, tempfile, zstandard
    >>> from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
    >>> from jumpstarter_jupyter.drivers.virtual.image import make_image
    >>> from jumpstarter_jupyter.testing import serve
    >>> image = os.path.join(tempfile.mkdtemp(), "os-2.0.img.zst")
    >>> with open(image, "wb") as file:
    ...     _ = file.write(zstandard.compress(make_image("Jumpstarter Linux", "2.0.0")))
    >>> with serve(VirtualBoard.create()) as dut:
    ...     dut.flash(image)
    ...     dut.boot_to_shell(timeout=60)
    ...     dut.serial.sendline("cat /etc/os-release")
    ...     dut.serial.expect('VERSION="([^"]*)"', timeout=10)
    ...     dut.serial.match.group(1)
    0
    '2.0.0'
    """

    def flash(self, path: str | os.PathLike, progress: Progress | None = None) -> None:
        """Write the image file ``path`` to the board's card and power-cycle into it.

        ``.gz``, ``.xz``, ``.zst`` and ``.bz2`` files travel compressed and are unpacked by
        the exporter. ``progress(bytes_sent, total)`` is called as the file is sent.
        """
        with open(path, "rb") as source:
            self.upload(
                "flash",
                source,
                encoding=image_encoding(path),
                total=os.fstat(source.fileno()).st_size,
                progress=progress,
            )

    def boot_to_shell(self, timeout: float = 60.0) -> None:
        """Power on if needed, wait for the login prompt and log in, within ``timeout`` seconds.

        A failure names the step that failed and what the console showed last. On success
        ``serial``'s expect buffer is emptied, so the next ``expect`` sees only new output.
        """
        self.call("boot_to_shell", timeout)
        self.serial.discard()

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.virtual.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group
