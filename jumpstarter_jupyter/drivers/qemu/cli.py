"""``jumpstarter-jupyter qemu-images``: build (or find cached) guest artefacts for the QEMU board."""

from __future__ import annotations

import time
from pathlib import Path

import click

from jumpstarter_jupyter.drivers.qemu.images import ARCHES, build


@click.command("qemu-images")
@click.option(
    "--arch",
    "arches",
    type=click.Choice([*ARCHES, "all"]),
    multiple=True,
    default=["x86_64"],
    show_default=True,
    help="Architecture(s) to build; repeat, or `all`.",
)
@click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Artefact folder (default $JUMPSTARTER_QEMU_CACHE or ~/.cache/jumpstarter-jupyter/qemu).",
)
def qemu_images(arches: tuple[str, ...], cache: Path | None) -> None:
    """Build the QEMU board's kernel, initramfs and root images A and B from Debian packages."""
    wanted = list(ARCHES) if "all" in arches else list(dict.fromkeys(arches))
    for arch in wanted:
        started = time.monotonic()
        try:
            images, built = build(arch, cache)
        except (OSError, RuntimeError) as exc:
            raise click.ClickException(f"{arch}: {exc}") from None
        what = f"built in {time.monotonic() - started:.1f} s" if built else "cached"
        click.echo(f"{arch}: {images.folder} ({what})")


def commands(board) -> list[click.Command]:
    """The QEMU board's own ``j`` commands, beside the virtual board's ``flash`` and ``boot-to-shell``."""

    @click.command(
        "run",
        help=board.methods_description.get(
            "run", "Run a shell command on the guest (logging in if needed); exit with its exit code."
        ),
    )
    @click.argument("command")
    @click.option("-t", "--timeout", type=float, default=60.0, show_default=True, help="Seconds to allow.")
    def run(command, timeout):
        exit_code, output = board.run(command, timeout)
        if output:
            click.echo(output)
        raise SystemExit(exit_code)

    return [run]
