"""``jumpstarter-jupyter j ... screen snapshot|state|record|expect-text|type|key``."""

from __future__ import annotations

import json

import click


def commands(screen) -> list[click.Command]:
    @click.command(help="Save the present picture to FILE (its suffix picks the format: .png, .jpg).")
    @click.argument("file", type=click.Path(dir_okay=False))
    def snapshot(file):
        screen.snapshot().save(file)
        click.echo(file)

    @click.command(help="Print the source's state as JSON.")
    def state():
        click.echo(json.dumps(screen.state(), indent=2))

    @click.command(help="Record SECONDS of the screen into an animated PNG FILE.")
    @click.argument("seconds", type=float)
    @click.argument("file", type=click.Path(dir_okay=False))
    @click.option("--fps", type=float, default=5.0, show_default=True, help="Frames per second at most.")
    def record(seconds, file, fps):
        click.echo(screen.record(seconds, file, fps))

    @click.command(
        "expect-text", help="Wait until OCR reads PATTERN (a regex) on the screen; print the match."
    )
    @click.argument("pattern")
    @click.option("-t", "--timeout", type=float, default=30.0, show_default=True, help="Seconds to allow.")
    def expect_text(pattern, timeout):
        click.echo(screen.expect_text(pattern, timeout).group(0))

    @click.command("type", help="Type TEXT on the board's keyboard (\\n is Enter).")
    @click.argument("text")
    def type_text(text):
        screen.type(text.encode().decode("unicode_escape"))

    @click.command(help="Press a key combination, e.g. ret, ctrl-c, ctrl-alt-del.")
    @click.argument("combo")
    def key(combo):
        screen.key(combo)

    return [snapshot, state, record, expect_text, type_text, key]
