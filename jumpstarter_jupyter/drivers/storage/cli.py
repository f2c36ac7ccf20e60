"""``jumpstarter-jupyter j ... storage host|dut|off|state|flash FILE|dump FILE``."""

from __future__ import annotations

import contextlib
import os
import sys
import time
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
    started = time.monotonic()
    show_rate = lambda rate: rate  # noqa: E731 - the bar shows the MB/s text it is given
    with click.progressbar(length=total, label=label, file=sys.stderr, item_show_func=show_rate) as bar:
        shown = 0

        def update(done: int, size: int | None) -> None:
            nonlocal shown
            if size and bar.length != size:  # with a bmap: the mapped bytes, known once sending starts
                bar.length = size
            rate = done / max(time.monotonic() - started, 1e-3) / 1e6
            bar.update(done - shown, f"{rate:.0f} MB/s")
            shown = done

        yield update


def _flashed(file: str, figures: dict | None) -> str:
    """What a finished flash prints: the exporter's figures where it gives them."""
    if not figures:
        return f"flashed {file} ({os.path.getsize(file)} bytes sent); storage connected to the DUT"
    mib = 1 << 20
    written = f"{figures['written'] / mib:.1f}"
    whole = f"{figures['image_size'] / mib:.1f}"
    how = f" with its bmap: {written} of {whole} MiB" if figures["bmap"] else f": {written} MiB"
    return (
        f"flashed {file} to {figures['device']}{how} written in {figures['seconds']:.1f} s "
        f"({figures['mb_per_s']:.1f} MB/s){', verified' if figures['verified'] else ''}; "
        "storage connected to the DUT"
    )


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

    @click.command(
        help=_help(
            storage, "flash", "Write an image (plain, .gz, .xz, .zst or .bz2), then connect it to the DUT."
        )
    )
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    @click.option(
        "--compression",
        type=click.Choice(sorted(set(ENCODING_FOR_SUFFIX.values()))),
        help="How FILE is compressed (default: from its suffix).",
    )
    @click.option(
        "--bmap",
        type=click.Path(exists=True, dir_okay=False),
        help="bmaptool's block map of FILE: only its mapped ranges are sent (default: FILE.bmap if present).",
    )
    @click.option("--no-bmap", is_flag=True, help="Write the whole image even if a bmap is beside it.")
    @click.option("--verify", is_flag=True, help="Read the image back from the card and compare.")
    def flash(file, compression, bmap, no_bmap, verify):
        with _progress_bar(f"flashing {os.path.basename(file)}", os.path.getsize(file)) as progress:
            figures = storage.flash(
                file,
                progress=progress,
                compression=compression,
                bmap=False if no_bmap else bmap,
                verify=verify,
            )
        click.echo(_flashed(file, figures))

    @click.command(help=_help(storage, "dump", "Copy the storage into FILE, then connect it to the DUT."))
    @click.argument("file", type=click.Path(dir_okay=False, writable=True))
    def dump(file):
        with _progress_bar(f"dumping to {os.path.basename(file)}", None) as progress:
            storage.dump(file, progress=progress)
        click.echo(f"dumped {os.path.getsize(file)} bytes to {file}; storage connected to the DUT")

    return [host, dut, off, state, flash, dump]
