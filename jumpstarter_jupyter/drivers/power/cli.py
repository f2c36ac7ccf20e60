"""``jumpstarter-jupyter j ... power on|off|cycle|read``."""

from __future__ import annotations

import itertools

import click


def commands(power) -> list[click.Command]:
    @click.command(help=power.methods_description.get("on", "Switch power on."))
    def on():
        power.on()

    @click.command(help=power.methods_description.get("off", "Switch power off."))
    def off():
        power.off()

    @click.command(help=power.methods_description.get("cycle", "Switch off, wait, switch on."))
    @click.option("-w", "--wait", type=float, default=2.0, show_default=True, help="Seconds to stay off.")
    def cycle(wait):
        power.cycle(wait)

    @click.command(help=power.methods_description.get("read", "Print voltage and current readings."))
    @click.option("-n", "--count", type=int, default=None, help="Stop after COUNT readings.")
    def read(count):
        for reading in itertools.islice(power.read(), count):
            click.echo(
                f"voltage={reading.voltage} V  current={reading.current} A  "
                f"apparent_power={reading.apparent_power} VA"
            )

    return [on, off, cycle, read]
