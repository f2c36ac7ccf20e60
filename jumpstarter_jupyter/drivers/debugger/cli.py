"""``jumpstarter-jupyter j ... debugger state|halt|resume|step|registers|read|break|remove|gdb``."""

from __future__ import annotations

import sys

import click


def _state_line(state: dict) -> str:
    pc = f" pc=0x{state['pc']:x}" if state.get("pc") is not None and state["state"] == "halted" else ""
    return f"{state['state']}{pc}" + (f" ({state['reason']})" if state.get("reason") else "")


def commands(debugger) -> list[click.Command]:
    @click.command(help="Print the target's state (running, halted and why).")
    def state():
        click.echo(_state_line(debugger.state()))

    @click.command(help="Stop the target.")
    def halt():
        click.echo(_state_line(debugger.halt()))

    @click.command(help="Let the target run.")
    def resume():
        click.echo(_state_line(debugger.resume()))

    @click.command(help="Execute N instructions (default 1).")
    @click.argument("n", type=click.IntRange(1), default=1)
    def step(n):
        click.echo(_state_line(debugger.step(n)))

    @click.command(help="Print every register (the target halted).")
    def registers():
        for name, value in debugger.registers().items():
            click.echo(f"{name:<10} {'unavailable' if value is None else hex(value)}")

    @click.command(help="Write SIZE bytes at ADDRESS to stdout (raw; pipe to xxd).")
    @click.argument("address")
    @click.argument("size", type=click.IntRange(1))
    def read(address, size):
        sys.stdout.buffer.write(debugger.read_memory(address, size))

    @click.command("break", help="Set a breakpoint at ADDRESS (hex).")
    @click.argument("address")
    def break_(address):
        point = debugger.breakpoint(address)
        click.echo(f"{point['kind']} at {point['address']}")

    @click.command(help="Remove the breakpoints and watchpoints at ADDRESS (hex).")
    @click.argument("address")
    def remove(address):
        click.echo("\n".join(debugger.remove(address)))

    @click.command(help="Forward local port PORT (0: any) to the stub for gdb until Ctrl-C.")
    @click.argument("port", type=click.IntRange(0, 65535), default=0)
    def gdb(port):
        from jumpstarter_jupyter.drivers.network.cli import _wait_for_ctrl_c

        try:
            with debugger.forward(port):
                sys.stdout.flush()
                _wait_for_ctrl_c()
        except KeyboardInterrupt:
            click.echo("stopped", err=True)

    return [state, halt, resume, step, registers, read, break_, remove, gdb]
