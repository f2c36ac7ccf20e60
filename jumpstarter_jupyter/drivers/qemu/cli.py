"""``jumpstarter-jupyter qemu-images``: build (or find cached) guest artefacts for the QEMU board."""

from __future__ import annotations

import time
from pathlib import Path

import click

from jumpstarter_jupyter.drivers.qemu.images import ARCHES, build


@click.command("qemu-images")
@click.option("--arch", "arches", type=click.Choice([*ARCHES, "all"]), multiple=True, default=["x86_64"],
              show_default=True, help="Architecture(s) to build; repeat, or `all`.")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Artefact folder (default $JUMPSTARTER_QEMU_CACHE or ~/.cache/jumpstarter-jupyter/qemu).")
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

