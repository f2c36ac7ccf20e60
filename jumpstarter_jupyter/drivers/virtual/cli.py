"""``jumpstarter-jupyter j ... flash FILE`` and ``boot-to-shell`` on the virtual board's root."""

from __future__ import annotations

import os

import click

from jumpstarter_jupyter.drivers.storage.cli import _progress_bar


def commands(board) -> list[click.Command]:
    @click.command(
        help=board.methods_description.get(
            "flash", "Flash an image (plain, .gz, .xz, .zst, .bz2) and power-cycle the board into it."
        )
    )
    @click.argument("file", type=click.Path(exists=True, dir_okay=False))
    def flash(file):
        with _progress_bar(f"flashing {os.path.basename(file)}", os.path.getsize(file)) as progress:
            board.flash(file, progress=progress)
        click.echo(f"flashed {file}; the board is booting it")

    @click.command(
        "boot-to-shell",
        help=board.methods_description.get(
            "boot-to-shell", "Power on if needed, wait for the login prompt, log in as root."
        ),
    )
    @click.option("-t", "--timeout", type=float, default=60.0, show_default=True, help="Seconds to allow.")
    def boot_to_shell(timeout):
        board.boot_to_shell(timeout)
        click.echo("at the shell prompt")

    return [flash, boot_to_shell]
