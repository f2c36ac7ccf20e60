"""``jumpstarter-jupyter j ... <output> on|off|cycle|read`` and ``<input> read|wait-for-*``."""

from __future__ import annotations

import click

from jumpstarter_jupyter.drivers.gpio.common import EDGES

DEFAULT_TIMEOUT = 3600.0  # upstream's default for the wait commands


def _help(client, command: str, default: str) -> str:
    return client.methods_description.get(command, default)


def _timeout_option(func):
    return click.option(
        "-t",
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        show_default=True,
        help="Give up after this many seconds.",
    )(func)


def _read_command(client) -> click.Command:
    @click.command(help=_help(client, "read", "Print the pin's value: 1 (active) or 0."))
    def read():
        click.echo(client.read_pin())

    return read


def output_commands(output) -> list[click.Command]:
    @click.command(help=_help(output, "on", "Drive the pin active."))
    def on():
        output.on()

    @click.command(help=_help(output, "off", "Drive the pin inactive."))
    def off():
        output.off()

    @click.command(help=_help(output, "cycle", "Drive the pin inactive, wait, drive it active."))
    @click.option(
        "-w", "--wait", type=float, default=1.0, show_default=True, help="Seconds to stay inactive."
    )
    def cycle(wait):
        output.cycle(wait)

    return [on, off, cycle, _read_command(output)]


def input_commands(pin) -> list[click.Command]:
    @click.command("wait-for-edge", help=_help(pin, "wait-for-edge", "Wait for a rising or falling edge."))
    @click.argument("edge", type=click.Choice(EDGES))
    @_timeout_option
    def wait_for_edge(edge, timeout):
        pin.wait_for_edge(edge, timeout)
        click.echo(f"{edge} edge")

    @click.command("wait-for-active", help=_help(pin, "wait-for-active", "Wait until the pin is active."))
    @_timeout_option
    def wait_for_active(timeout):
        pin.wait_for_active(timeout)
        click.echo("active")

    @click.command(
        "wait-for-inactive", help=_help(pin, "wait-for-inactive", "Wait until the pin is inactive.")
    )
    @_timeout_option
    def wait_for_inactive(timeout):
        pin.wait_for_inactive(timeout)
        click.echo("inactive")

    return [_read_command(pin), wait_for_edge, wait_for_active, wait_for_inactive]
