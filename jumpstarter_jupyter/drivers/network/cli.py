"""``jumpstarter-jupyter j ... network address [--host|--port]`` and ``network forward PORT``."""

from __future__ import annotations

import os
import select
import signal
import sys
from urllib.parse import urlsplit

import click


def _help(network, command: str, default: str) -> str:
    return network.methods_description.get(command, default)


def _wait_for_ctrl_c() -> None:
    """Block until Ctrl-C raises KeyboardInterrupt.

    The kernel may deliver SIGINT to one of gRPC's threads, which does not wake a main thread
    blocked on a lock; Python's signal wakeup fd is written whichever thread gets it.
    """
    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    previous = signal.set_wakeup_fd(wake_write)
    try:
        while True:
            select.select([wake_read], [], [])
            os.read(wake_read, 512)  # SIGINT's handler raises on the next bytecode; others loop
    finally:
        signal.set_wakeup_fd(previous)
        os.close(wake_read)
        os.close(wake_write)


def commands(network) -> list[click.Command]:
    @click.command(help=_help(network, "address", "Print the service's HOST:PORT."))
    @click.option("--host", "part", flag_value="host", help="Print only the host.")
    @click.option("--port", "part", flag_value="port", help="Print only the port.")
    def address(part):
        url = urlsplit(network.address())
        if part == "host":
            click.echo(url.hostname)
        elif part == "port":
            click.echo(url.port)
        else:
            click.echo(url.netloc)

    @click.command(help=_help(network, "forward", "Forward local port PORT (0: any free port) until Ctrl-C."))
    @click.argument("port", type=click.IntRange(0, 65535))
    def forward(port):
        try:
            with network.forward(port) as local:
                click.echo(f"forwarding {local} to {network.display_path}; Ctrl-C stops")
                sys.stdout.flush()
                _wait_for_ctrl_c()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)
        except OSError as exc:
            raise click.ClickException(str(exc)) from None

    return [address, forward]
