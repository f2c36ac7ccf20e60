"""Lease hooks in upstream's config format: a script before a lease is granted, one after it ends.

::

    hooks:
      beforeLease:
        script: j power on
        timeout: 60          # seconds (default 120)
        onFailure: endLease  # warn (default) | endLease | exit
      afterLease:
        script: /opt/lab/cleanup.sh
        exec: /bin/bash      # interpreter (default: /bin/sh; a .py file: the exporter's Python)

A hook runs with ``$JUMPSTARTER_HOST`` set to a private socket of the exporter, a ``j`` on
its ``PATH`` that is our ``jumpstarter-jupyter j`` (a wrapper in a private folder), and a
credential that may control the board while the hook runs. Every line it prints goes to
the exporter's log and, as a log record marked as hook output, to ``LogStream``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shlex
import shutil
import signal
import stat
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("jumpstarter_jupyter.exporter.hooks")

BEFORE, AFTER = "beforeLease", "afterLease"
FAILURE_POLICIES = ("warn", "endLease", "exit")
DEFAULT_TIMEOUT = 120.0
KILL_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a hook past its timeout


@dataclass(frozen=True)
class Hook:
    """One hook: what to run, for how long at most, and what a failure means."""

    name: str
    script: str
    exec: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    on_failure: str = "warn"

    def argv(self) -> list[str]:
        """An existing file runs as a file; anything else is an inline script (``-c``), as upstream."""
        text = self.script.strip()
        if "\n" not in text and os.path.isfile(text):
            interpreter = self.exec or (sys.executable if text.endswith(".py") else "/bin/sh")
            return [*shlex.split(interpreter), text]
        return [*shlex.split(self.exec or "/bin/sh"), "-c", self.script]


@dataclass(frozen=True)
class HookOutcome:
    ok: bool
    message: str  # "" when it succeeded


class HookRunner:
    """Runs hooks against this exporter, through its private socket."""

    def __init__(self, hooks: dict[str, Hook]):
        self.hooks = hooks
        self.credential = secrets.token_urlsafe(24)  # controls the board while a hook runs
        self.running = 0  # hooks running now
        # one private folder (0700): the exporter's socket for hooks, and the `j` they find on PATH
        self.directory = Path(tempfile.mkdtemp(prefix="jumpstarter-hooks-"))
        self.socket_path = str(self.directory / "exporter.sock")
        self._bin = self.directory / "bin"
        self._bin.mkdir()
        wrapper = self._bin / "j"
        wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m jumpstarter_jupyter j "$@"\n')
        wrapper.chmod(stat.S_IRWXU)

    def get(self, name: str) -> Hook | None:
        return self.hooks.get(name)

    async def run(self, hook: Hook, holder: str, output: Callable[[str], None]) -> HookOutcome:
        """Run ``hook`` for ``holder``'s lease; every line it prints goes to ``output``."""
        env = {
            **os.environ,
            "JUMPSTARTER_HOST": f"unix:{self.socket_path}",
            "JMP_GRPC_PASSPHRASE": self.credential,
            "JMP_DRIVERS_ALLOW": "UNSAFE",
            "CLIENT_NAME": holder,
            "PATH": f"{self._bin}:{os.environ.get('PATH', '')}",
            "TERM": "dumb",
            "DEBIAN_FRONTEND": "noninteractive",
            "GIT_TERMINAL_PROMPT": "0",
        }
        env.pop("PS1", None)
        log.info("%s hook starting for %s", hook.name, holder)
        self.running += 1
        try:
            return await self._run(hook, env, output)
        finally:
            self.running -= 1

    async def _run(self, hook: Hook, env: dict[str, str], output: Callable[[str], None]) -> HookOutcome:
        try:
            process = await asyncio.create_subprocess_exec(
                *hook.argv(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            return HookOutcome(False, f"{hook.name} hook could not start: {exc}")
        try:
            async with asyncio.timeout(hook.timeout):
                async for line in process.stdout:
                    output(line.decode(errors="replace").rstrip("\r\n"))
                code = await process.wait()
        except TimeoutError:
            await _stop(process)
            return HookOutcome(False, f"{hook.name} hook timed out after {hook.timeout:g} s")
        except asyncio.CancelledError:
            await _stop(process)
            raise
        if code != 0:
            return HookOutcome(False, f"{hook.name} hook exited with status {code}")
        log.info("%s hook finished", hook.name)
        return HookOutcome(True, "")

    def close(self) -> None:
        """Remove the private folder (the socket, the ``j`` wrapper)."""
        shutil.rmtree(self.directory, ignore_errors=True)


async def _stop(process: asyncio.subprocess.Process) -> None:
    """SIGTERM the hook's process group, then SIGKILL after a grace period."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            async with asyncio.timeout(KILL_GRACE):
                await process.wait()
            return
        except TimeoutError:
            continue
