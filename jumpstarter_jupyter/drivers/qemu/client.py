"""Python API of the QEMU board's root: the virtual board's ``flash``/``boot_to_shell`` plus ``run``."""

from __future__ import annotations

import click

from jumpstarter_jupyter.drivers.virtual.client import VirtualBoardClient


class QemuBoardClient(VirtualBoardClient):
    """``dut`` of a QEMU board.

    >>> dut.boot_to_shell(timeout=60)        # doctest: +SKIP
    >>> dut.run("uname -m")                  # doctest: +SKIP
    (0, 'x86_64')
    """

    def run(self, command: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run a shell command on the guest (booting and logging in if needed): ``(exit_code, output)``."""
        exit_code, output = self.call("run", command, timeout)
        return int(exit_code), output  # the wire carries numbers as doubles

    def cli(self) -> click.Group:
        from jumpstarter_jupyter.drivers.qemu.cli import commands

        group = super().cli()
        for command in commands(self):
            group.add_command(command)
        return group
