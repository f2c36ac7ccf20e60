"""``jumpstarter-jupyter j ... serial console|pipe|log``."""

from __future__ import annotations

import os
import sys
import termios
import threading
import tty

import click

from jumpstarter_jupyter.drivers.serial.common import dropped_text, marker

ESCAPE = b"\x02"  # Ctrl-B, three times in a row, leaves the console (as upstream's start-console)
ESCAPE_COUNT = 3
PIPE_CHUNK = 1024  # bytes per frame from stdin, as upstream's `j serial pipe`


def commands(serial) -> list[click.Command]:
    @click.command(
        help=serial.methods_description.get(
            "console", "Interactive console on this terminal; exit with Ctrl-B three times."
        )
    )
    @click.option("--replay/--no-replay", default=False, help="Show the console's scrollback first.")
    def console(replay):
        run_console(serial, replay)

    @click.command(
        help=serial.methods_description.get(
            "pipe",
            "Copy stdin to the port and the port to stdout; ends after stdin EOF and the exporter's EOF.",
        )
    )
    def pipe():
        run_pipe(serial)

    @click.command(help=serial.methods_description.get("log", "Print the console's scrollback."))
    def log():
        sys.stdout.buffer.write(serial.scrollback())
        sys.stdout.buffer.flush()

    return [console, pipe, log]


def run_console(serial, replay: bool) -> None:
    """Raw terminal session: keys to the port, console to the screen, Ctrl-B x3 to leave."""
    stdin = sys.stdin.fileno()
    if not os.isatty(stdin):
        raise click.UsageError("serial console needs a terminal on stdin; use `serial pipe` for pipes")
    out = sys.stdout.buffer
    if replay:
        out.write(serial.scrollback())

    def show(chunk) -> None:
        gap = marker(dropped_text(chunk.dropped)) if chunk.dropped else b""
        out.write(gap + chunk.data + (marker(chunk.event) if chunk.event else b""))
        out.flush()

    unsubscribe = serial.subscribe(show)
    click.echo("[jumpstarter] console attached; Ctrl-B three times to exit\r", err=True)
    saved = termios.tcgetattr(stdin)
    try:
        tty.setraw(stdin)
        _type_keys(serial, stdin)
    finally:
        termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
        unsubscribe()
    click.echo("\n[jumpstarter] console detached", err=True)


def _type_keys(serial, stdin: int) -> None:
    pending = 0  # Ctrl-Bs typed but not sent yet: they may be the start of the escape
    while keys := os.read(stdin, PIPE_CHUNK):
        out = bytearray()
        for key in keys:
            if key == ESCAPE[0]:
                pending += 1
                if pending == ESCAPE_COUNT:
                    serial.write(bytes(out))
                    return
            else:
                out += ESCAPE * pending + bytes((key,))
                pending = 0
        if out:
            serial.write(bytes(out))


def run_pipe(serial) -> None:
    """stdin -> port, port -> stdout, over a raw ``connect`` stream (upstream semantics)."""
    stream = serial.stream("connect")
    out = sys.stdout.buffer

    def copy_stdin() -> None:
        try:
            while data := os.read(sys.stdin.fileno(), PIPE_CHUNK):
                stream.send(data)
        finally:
            stream.send_eof()

    writer = threading.Thread(target=copy_stdin, name="serial pipe stdin", daemon=True)
    writer.start()
    with stream:
        while data := stream.receive():
            out.write(data)
            out.flush()
