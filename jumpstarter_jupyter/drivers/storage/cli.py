"""``jumpstarter-jupyter j ... storage host|dut|off|state|flash FILE|dump FILE``."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click

from jumpstarter_jupyter.client.streams import Progress
from jumpstarter_jupyter.drivers.storage.client import ENCODING_FOR_SUFFIX


def _help(storage, command: str, default: str) -> str:
    return storage.methods_description.get(command, default)


@contextlib.contextmanager
def _progress_bar(label: str, total: int | None) -> Iterator[Progress | None]:
    """A progress callback drawing a bar on a terminal; None when stderr is not a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=total, label=label, file=sys.stderr) as bar:
        shown = 0

        def update(done: int, _total: int | None) -> None:
            nonlocal shown
            bar.update(done - shown)
            shown = done

        yield update


def commands(storage) -> list[click.Command]:
    @click.command(help=_help(storage, "host", "Connect the storage to the host."))
    def host():
        storage.host()

    @click.command(help=_help(storage, "dut", "Connect the storage to the DUT."))
    def dut():
        storage.dut()

    @click.command(help=_help(storage, "off", "Disconnect the storage from both."))
    def off():
        storage.off()

    @click.command(help=_help(storage, "state", "Print where the storage is connected."))
    def state():
        click.echo(storage.state() or "unknown (the exporter does not say)")

    @click.command(help=_help(storage, "flash", "Write an image (plain, .gz, .xz, .zst or .bz2), then connect it to the DUT."))
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option("--compression", type=click.Choice(sorted(set(ENCODING_FOR_SUFFIX.values()))),
                  help="How FILE is compressed (default: from its suffix).")
    def flash(file, compression):
        with _progress_bar(f"flashing {os.path.basename(file)}", os.path.getsize(file)) as progress:
            storage.flash(file, progress=progress, compression=compression)
        click.echo(f"flashed {file} ({os.path.getsize(file)} bytes sent); storage connected to the DUT")

    @click.command(help=_help(storage, "dump", "Copy the storage into FILE, then connect it to the DUT."))
    @click.argument("file", type=click.Path(dir_okay=False, writable=True))
    def dump(file):
        with _progress_bar(f"dumping to {os.path.basename(file)}", None) as progress:
            storage.dump(file, progress=progress)
        click.echo(f"dumped {os.path.getsize(file)} bytes to {file}; storage connected to the DUT")

    return [host, dut, off, state, flash, dump]
