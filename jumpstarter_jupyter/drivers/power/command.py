"""``CommandPower``: switch a board with commands someone already wrote (as labgrid's external power).

Each command runs through ``/bin/sh -c`` (pipes, redirections and variables work) in its own
process group, which is killed when ``timeout`` seconds pass or the caller goes away.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from dataclasses import dataclass

from jumpstarter_jupyter.driver import export
from jumpstarter_jupyter.drivers.power.driver import PowerInterface

ON_WORDS = frozenset({"on", "1", "true", "yes"})
OFF_WORDS = frozenset({"off", "0", "false", "no"})
STDERR_SHOWN = 500  # characters of a failed command's stderr put in the error


@dataclass
class CommandPower(PowerInterface):
    """Power switched by ``on_command`` and ``off_command``; ``state_command`` prints ``on`` or ``off``.

    (Not ``on:``/``off:`` as keys: YAML reads those as booleans.) The state command's first word
    may also be 1/0, true/false or yes/no. ``timeout`` is seconds per command.
    """

    on_command: str
    off_command: str
    state_command: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        for key in ("on_command", "off_command", "state_command"):
            value = getattr(self, key)
            if value is not None and not value.strip():
                raise ValueError(f"{key} is empty")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, got {self.timeout}")

    @export
    async def on(self) -> None:
        """Run ``on_command``."""
        await self._run("on_command", self.on_command)
        self.logger.info("power on")

    @export
    async def off(self) -> None:
        """Run ``off_command``."""
        await self._run("off_command", self.off_command)
        self.logger.info("power off")

    @export
    async def state(self) -> bool:
        """Run ``state_command``: True when it prints ``on``."""
        if self.state_command is None:
            raise NotImplementedError("this switch cannot tell its state: it has no state_command")
        output = await self._run("state_command", self.state_command)
        word = (output.split() or [""])[0].lower()
        if word in ON_WORDS:
            return True
        if word in OFF_WORDS:
            return False
        raise ValueError(
            f"state_command {self.state_command!r} printed {output.strip()[:200]!r}: "
            "expected on or off (or 1/0, true/false, yes/no)"
        )

    async def _run(self, key: str, command: str) -> str:
        """Run ``command``; its stdout, or an error naming it, its exit code and its stderr."""
        process = await asyncio.create_subprocess_shell(
            command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self.timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{key} {command!r} did not finish within {self.timeout:g} s (killed)"
            ) from None
        finally:
            if process.returncode is None:  # timed out, or the caller went away
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if process.returncode != 0:
            error = stderr.decode(errors="replace").strip()[-STDERR_SHOWN:] or "nothing on stderr"
            raise RuntimeError(f"{key} {command!r} exited with {process.returncode}: {error}")
        return stdout.decode(errors="replace")
