"""Real kernels for the Jupyter glue: run code as a notebook cell would, collect what it shows.

Test modules import the fixtures they use (`from kernels import kernel, ...`): a conftest.py
here would shadow `tests/conftest.py` for `from support import serving`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import select
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from support import start_exporter

# inside a kernel: wait on a condition with a deadline (cells prepend it to the code that waits)
WAIT_UNTIL = """
import time
def wait_until(condition, timeout=30, what="the condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")
START_TIMEOUT = 60
CELL_TIMEOUT = 120


@dataclasses.dataclass
class Cell:
    """What one execution showed: outputs as a front end receives them."""

    status: str
    outputs: list[dict]

    @property
    def text(self) -> str:
        """Everything printed, plus text/plain of displays and results, plus error text."""
        parts = []
        for out in self.outputs:
            content = out["content"]
            if out["msg_type"] == "stream":
                parts.append(content["text"])
            elif out["msg_type"] in ("display_data", "execute_result"):
                parts.append(content["data"].get("text/plain", "") + "\n")
            elif out["msg_type"] == "error":
                parts.append(ANSI.sub("", "\n".join(content["traceback"])) + "\n")
        return "".join(parts)

    @property
    def views(self) -> list[str]:
        """Model ids of the widget views this cell displayed."""
        return [
            out["content"]["data"]["application/vnd.jupyter.widget-view+json"]["model_id"]
            for out in self.outputs
            if out["msg_type"] in ("display_data", "execute_result")
            and "application/vnd.jupyter.widget-view+json" in out["content"]["data"]
        ]


class Kernel:
    """A real IPython kernel (ipykernel) and a client speaking to it over ZeroMQ."""

    def __init__(self, env: dict[str, str]):
        self.manager = KernelManager(kernel_name="python3")
        # the kernel works in the private home: files it writes (terminal logs) stay out of the repo
        self.manager.start_kernel(env=env, cwd=os.path.dirname(env["IPYTHONDIR"]))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=START_TIMEOUT)

    def run(self, code: str, timeout: float = CELL_TIMEOUT) -> Cell:
        """Execute ``code`` as a cell; returns its outputs (the cell may fail: check ``status``)."""
        outputs: list[dict] = []
        keep = ("stream", "display_data", "execute_result", "error")
        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=lambda msg: msg["msg_type"] in keep and outputs.append(msg)
        )
        return Cell(reply["content"]["status"], outputs)

    def ok(self, code: str, timeout: float = CELL_TIMEOUT) -> Cell:
        """Execute ``code`` and fail the test, with the cell's text, unless it succeeded."""
        cell = self.run(code, timeout)
        assert cell.status == "ok", f"cell failed:\n{code}\n---\n{cell.text}"
        return cell

    def start(self, code: str) -> str:
        """Start executing ``code`` without waiting; ``finish(msg_id)`` waits for it."""
        return self.client.execute(code)

    def finish(self, msg_id: str, timeout: float = CELL_TIMEOUT) -> str:
        """Wait for the reply of a cell begun with ``start``; returns its status."""
        while True:
            reply = self.client.get_shell_msg(timeout=timeout)
            if reply["parent_header"].get("msg_id") == msg_id:
                return reply["content"]["status"]

    def create_subshell(self) -> str:
        """A kernel subshell (ipykernel 7), as JupyterLab >= 4.4 makes for widget messages."""
        msg = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(msg)
        while True:
            reply = self.client.get_control_msg(timeout=START_TIMEOUT)
            if reply["parent_header"].get("msg_id") == msg["header"]["msg_id"]:
                return reply["content"]["subshell_id"]

    def send_to_widget(self, model_id: str, content: dict, subshell_id: str | None = None) -> None:
        """What a widget's front end sends with ``model.send(content)``: a custom comm message."""
        msg = self.client.session.msg(
            "comm_msg", {"comm_id": model_id, "data": {"method": "custom", "content": content}}
        )
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.client.shell_channel.send(msg)

    def shutdown(self) -> None:
        """Shut the kernel down (once; the fixture's teardown repeats it harmlessly)."""
        if not self.manager.has_kernel:
            return
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


@pytest.fixture(scope="session")
def jupyter_env(tmp_path_factory) -> dict[str, str]:
    """An environment whose Jupyter and IPython directories are private to this test run."""
    base = tmp_path_factory.mktemp("jupyter-home")
    env = dict(os.environ)
    for name in (
        "IPYTHONDIR",
        "JUPYTER_CONFIG_DIR",
        "JUPYTER_DATA_DIR",
        "JUPYTER_RUNTIME_DIR",
        "MPLCONFIGDIR",
    ):
        path = base / name.lower()
        path.mkdir()
        env[name] = str(path)
    for name in ("JUMPSTARTER_HOST", "JMP_GRPC_PASSPHRASE", "JMP_GRPC_INSECURE"):
        env.pop(name, None)
    return env


@pytest.fixture
def start_kernel(jupyter_env) -> Iterator[Callable[..., Kernel]]:
    """``start_kernel(**env)``: a fresh kernel with extra environment, shut down after the test."""
    started: list[Kernel] = []

    def start(**env: str) -> Kernel:
        started.append(Kernel({**jupyter_env, **env}))
        return started[-1]

    yield start
    for each in started:
        each.shutdown()


@pytest.fixture
def kernel(start_kernel) -> Kernel:
    """A fresh kernel for one test."""
    return start_kernel()


@contextlib.contextmanager
def demo_board(*options: str) -> Iterator[str]:
    """``jumpstarter-jupyter demo`` on a free loopback port, as a separate process; yields its endpoint."""
    log = tempfile.TemporaryFile()  # a file, not a pipe: an unread pipe would stall the exporter
    process = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--listen", "127.0.0.1:0", *options],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    try:
        ready, _, _ = select.select([process.stdout], [], [], START_TIMEOUT)
        line = process.stdout.readline().decode() if ready else ""
        if not line.startswith("serving "):
            log.seek(0)
            raise RuntimeError(f"the demo exporter did not start: {line!r} {log.read().decode()[-2000:]}")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture
def demo() -> Iterator[str]:
    """The endpoint of a fresh virtual board exporter (its own process) for one test."""
    with demo_board() as endpoint:
        yield endpoint


@pytest.fixture
def leased_board(tmp_path) -> Iterator[tuple[str, Path]]:
    """The virtual board with leases required, in its own process: (endpoint, its log file)."""
    log, socket = tmp_path / "exporter.log", tmp_path / "board.sock"
    process = start_exporter("demo", "--socket", socket, "--lease", "required", log=str(log))
    yield f"unix:{socket}", log
    process.terminate()
    process.wait(START_TIMEOUT)
