"""Test helpers: real exporters on real sockets, real clients (``from support import ...``)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

from jumpstarter_jupyter.client import DriverClient, connect
from jumpstarter_jupyter.driver import Driver
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.testing import exporter as serving  # the tests' name for it


@contextlib.contextmanager
def client_for(driver: Driver, name: str = "driver", **options) -> Iterator[DriverClient]:
    """Serve ``driver`` as child ``name`` of a composite and yield its client."""
    root = Composite()
    root.children = {name: driver}
    with serving(root, **options) as exporter, connect(exporter.address, options.get("passphrase")) as dut:
        yield dut[name]


def run_cli(client: DriverClient, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run ``jumpstarter-jupyter j --endpoint <its exporter> <client's path> ARGS`` in its own process."""
    path = client.path.split(".") if client.path else []
    argv = cli_argv(client.connection.endpoint, *path, *args)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def cli_argv(endpoint: str, *args: str) -> list[str]:
    """The command line ``jumpstarter-jupyter j --endpoint ENDPOINT ARGS`` (this interpreter's)."""
    return [sys.executable, "-m", "jumpstarter_jupyter", "j", "--endpoint", endpoint, *args]


def wait_for(condition: Callable[[], object], timeout: float = 30.0, what: str = "the condition") -> object:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)  # polling interval of a condition with a deadline


def start_exporter(*args: str, env: dict | None = None, log: str | None = None) -> subprocess.Popen:
    """``jumpstarter-jupyter ARGS`` (``run CONFIG --socket PATH``, ``demo …``) in its own process,
    returned once it says it is serving; its stderr goes to the file ``log`` if given."""
    stderr = open(log, "w") if log else None
    process = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    line = process.stdout.readline()
    if not line.startswith("serving "):
        process.kill()
        raise RuntimeError(f"exporter did not start: {line!r}")
    return process


def process_figures(pid: int) -> dict:
    """Threads, open file descriptors and resident memory (bytes) of a live process."""
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    return {
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss": int(status["VmRSS"].split()[0]) * 1024,
    }


def write_package(directory, name: str, modules: dict[str, str]) -> None:
    """Write package ``name`` under ``directory``: ``{"driver.py": source, ...}`` (dedented)."""
    import textwrap
    from pathlib import Path

    package = Path(directory) / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    for module, source in modules.items():
        (package / module).write_text(textwrap.dedent(source))


def run_async(coroutine_function, *args, timeout: float = 600):
    """``asyncio.run(coroutine_function(*args))`` on a thread of its own: the browser suite's
    Playwright keeps an event loop running on the main thread of a whole-suite run. A scenario
    still running after ``timeout`` seconds fails the test (its thread is a daemon)."""
    import asyncio
    import threading

    outcome: dict = {}

    def run() -> None:
        try:
            outcome["result"] = asyncio.run(coroutine_function(*args))
        except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="async test scenario", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{coroutine_function.__qualname__} still running after {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def default_sigint() -> None:
    """``preexec_fn`` for a child this test stops with SIGINT: Python turns SIGINT into
    KeyboardInterrupt only when it starts with SIGINT's default disposition, and a test run
    started in the background of a non-interactive shell (nohup, some CI runners) ignores it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@contextlib.contextmanager
def sigint_raises_keyboard_interrupt() -> Iterator[None]:
    """Python's own SIGINT handler in this process for the block, whatever the run started with."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# a client flashing `image` that stops once `after` bytes are sent, until it is killed
_FLASHER = """
import sys, jumpstarter_jupyter as jj
dut = jj.connect(sys.argv[1])
def progress(sent, total):
    if sent >= int(sys.argv[3]):
        print("flashing", flush=True)
        sys.stdin.read()  # hold here until the test kills this process
dut.storage.flash(sys.argv[2], progress=progress)
"""


def kill_mid_flash(address: str, image, after: int) -> None:
    """A client process flashes ``image`` through ``address`` and is SIGKILLed once ``after`` bytes went out."""
    flasher = subprocess.Popen(
        [sys.executable, "-c", _FLASHER, address, str(image), str(after)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert flasher.stdout.readline() == "flashing\n"
    finally:
        flasher.kill()
        flasher.wait()
