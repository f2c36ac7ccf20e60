"""A real JupyterLab server and headless Chromium (Debian's, driven by Playwright).

Every Jupyter directory is private to the session (JUPYTER_*, IPYTHONDIR, MPLCONFIGDIR), the
news toast is suppressed by an overrides.json in a private app settings directory, and the
notebook page is used only once its kernel connection is ready (pressing Shift+Enter before
that silently does nothing).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import wait_for

CHROMIUM = "/usr/bin/chromium"
EXTENSION = "jumpstarter-jupyter"  # our JupyterLab extension's name
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START = 60.0  # seconds
KERNEL_READY = 60_000  # milliseconds (Playwright's unit)
CELL_DONE = 120_000
IOPUB_MSG_RATE_LIMIT = 100  # messages/s over the server's 3 s window
POLL = 100  # ms between checks in the page (timer polling: animation frames stall while xterm is busy)
# a cell's execution count: null from Shift+Enter until the cell has finished
COUNT = "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.executionCount"
NO_NEWS = {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, notebook directory and log file."""

    url: str
    token: str
    root: Path
    log: Path

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read() or b"{}")

    def ready(self) -> bool:
        try:
            return bool(self.api("GET", "/api/status"))
        except (urllib.error.URLError, ConnectionError):
            return False

    def put_notebook(self, name: str, cells: list[str]) -> None:
        """Store a notebook of code cells (not yet executed) through the contents API."""
        notebook = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
            "cells": [
                {
                    "cell_type": "code",
                    "source": source,
                    "metadata": {},
                    "outputs": [],
                    "execution_count": None,
                    "id": f"cell{i}",
                }
                for i, source in enumerate(cells)
            ],
        }
        self.api("PUT", f"/api/contents/{name}", {"type": "notebook", "format": "json", "content": notebook})


def isolated_env(base: Path) -> dict[str, str]:
    """Environment with every Jupyter/IPython/matplotlib directory under ``base``."""
    env = dict(os.environ)
    for var, sub in {
        "JUPYTER_CONFIG_DIR": "config",
        "JUPYTER_DATA_DIR": "data",
        "JUPYTER_RUNTIME_DIR": "runtime",
        "IPYTHONDIR": "ipython",
        "MPLCONFIGDIR": "mpl",
    }.items():
        (base / sub).mkdir(parents=True, exist_ok=True)  # IPython warns and uses /tmp when it is missing
        env[var] = str(base / sub)
    env.pop("JUMPSTARTER_HOST", None)
    return env


@contextlib.contextmanager
def serve_lab(base: Path, venv, extension: bool = True) -> Iterator[LabServer]:
    """JupyterLab (and Notebook 7) of the installed ``venv`` on a free loopback port, as root
    (``--allow-root``), isolated from the user's setup; ``extension=False`` disables ours, as
    ``jupyter labextension disable`` would (its widgets then fetch their front ends from the kernel)."""
    root, settings = base / "notebooks", base / "app-settings"
    root.mkdir()
    settings.mkdir()
    (settings / "overrides.json").write_text(json.dumps(NO_NEWS))
    env = {**isolated_env(base), "PATH": venv.env["PATH"]}  # the installed venv's tools, no node
    if not extension:
        labconfig = Path(env["JUPYTER_CONFIG_DIR"]) / "labconfig"
        labconfig.mkdir()
        (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": {EXTENSION: True}}))
    port, token = free_port(), secrets.token_hex(16)
    log = base / "server.log"
    command = [
        venv.python,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={settings}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
        "--JupyterNotebookApp.expose_app_in_browser=True",
        # a tenth of the default: widgets that batch stay far below it, a flood of
        # unbatched messages trips it (and the server then says so in the notebook)
        f"--ServerApp.iopub_msg_rate_limit={IOPUB_MSG_RATE_LIMIT}",
    ]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, env=env, cwd=root, stdout=output, stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log)
    try:
        wait_for(lambda: server.ready() or process.poll() is not None, SERVER_START, "JupyterLab to answer")
        if process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def lab(installed, tmp_path_factory) -> Iterator[LabServer]:
    """JupyterLab of the installed wheel, with our extension."""
    with serve_lab(tmp_path_factory.mktemp("lab"), installed) as server:
        yield server


@pytest.fixture(scope="session")
def lab_without_extension(installed, tmp_path_factory) -> Iterator[LabServer]:
    """JupyterLab of the installed wheel, our extension disabled."""
    with serve_lab(tmp_path_factory.mktemp("lab-plain"), installed, extension=False) as server:
        yield server


@pytest.fixture(scope="session")
def chromium(playwright_session, tmp_path_factory):
    """A persistent headless Chromium context (Debian's binary; never `playwright install`)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    context = playwright_session.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("chromium")),
        executable_path=CHROMIUM,
        args=FLAGS,
        headless=True,
        viewport={"width": 1280, "height": 1000},
    )
    yield context
    context.close()


@dataclass
class NotebookPage:
    """One open notebook: run its cells one at a time, read their outputs."""

    page: object
    console: list[str] = field(default_factory=list)

    def run_cell(self, index: int) -> list[dict]:
        """Run cell ``index`` through the UI (Shift+Enter), wait for it to finish, return its outputs."""
        outputs = self.wait_cell(self.start_cell(index))
        errors = [o for o in outputs if o.get("output_type") == "error"]
        assert not errors, f"cell {index} failed: {errors[0]['ename']}: {errors[0]['evalue']}\n" + "\n".join(
            errors[0].get("traceback", [])
        )
        return outputs

    def start_cell(self, index: int) -> int:
        """Press Shift+Enter on cell ``index`` (made active in command mode); returns ``index``."""
        self.page.evaluate(
            """(i) => {
            const nb = window.jupyterapp.shell.currentWidget.content;
            nb.activeCellIndex = i; nb.mode = "command"; nb.node.focus();
        }""",
            index,
        )
        before = self.page.evaluate(COUNT, index)
        self.page.keyboard.press("Shift+Enter")
        if before is not None:  # a re-run: wait until JupyterLab has taken it (count cleared or renewed)
            self.page.wait_for_function(
                f"(i) => ({COUNT})(i) !== {before}", arg=index, timeout=CELL_DONE, polling=POLL
            )
        return index

    def running(self, index: int) -> bool:
        """True while cell ``index`` (started) has not finished."""
        return self.page.evaluate(COUNT, index) is None

    def wait_cell(self, index: int) -> list[dict]:
        """Wait for cell ``index`` to finish; its outputs, errors included."""
        self.page.wait_for_function(
            f"(i) => ({COUNT})(i) !== null", arg=index, timeout=CELL_DONE, polling=POLL
        )
        return self.page.evaluate(
            "(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs.toJSON()", index
        )

    def interrupt(self) -> None:
        """The toolbar's stop button: interrupt the kernel."""
        self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.interrupt()"
        )

    def wait_ready(self) -> None:
        """Wait until the page's notebook is loaded and its kernel connection answers."""
        self.page.wait_for_function(
            "() => window.jupyterapp?.shell?.currentWidget?.sessionContext",
            timeout=KERNEL_READY,
            polling=POLL,
        )
        self.page.evaluate("""async () => {
            const w = window.jupyterapp.shell.currentWidget;
            await w.context.ready; await w.sessionContext.ready; await w.sessionContext.session.kernel.info;
        }""")

    def reload(self) -> None:
        """Save the notebook (its outputs hold the widget views), reload the page, wait for the kernel."""
        self.page.evaluate("() => window.jupyterapp.shell.currentWidget.context.save()")
        self.page.reload()
        self.wait_ready()

    def all_outputs(self) -> list[list[dict]]:
        """Every cell's outputs (where the server's "IOPub ... rate exceeded" notes would land)."""
        return self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.outputs?.toJSON() ?? [])"
        )

    def cell(self, index: int):
        """Locator of cell ``index``'s output area."""
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea")


@contextlib.contextmanager
def notebook_opener(
    server: LabServer, chromium, ui: str = "lab"
) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    """``opener(name, cells)``: store the notebook, open it in a new tab of ``ui`` ("lab", or
    "notebook" for Notebook 7) once its kernel is ready; the tabs and kernels go at the end."""
    pages = []

    def opener(name: str, cells: list[str]) -> NotebookPage:
        server.put_notebook(name, cells)
        page = chromium.new_page()
        pages.append(page)
        notebook = NotebookPage(page)
        page.on("console", lambda message: notebook.console.append(f"{message.type}: {message.text}"))
        if (
            ui == "lab"
        ):  # a workspace of its own, so JupyterLab does not also restore earlier tests' notebooks
            page.goto(f"{server.url}/lab/workspaces/{Path(name).stem}/tree/{name}?token={server.token}")
        else:
            page.goto(f"{server.url}/notebooks/{name}?token={server.token}")
        notebook.wait_ready()
        return notebook

    yield opener
    for page in pages:
        # shut the kernel down with the page, so its board connection and threads go too
        page.evaluate("() => window.jupyterapp.shell.currentWidget?.sessionContext?.shutdown()")
        page.close()


@pytest.fixture
def open_notebook(lab: LabServer, chromium) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    """``open_notebook(name, cells)`` in JupyterLab with our extension."""
    with notebook_opener(lab, chromium) as opener:
        yield opener


@pytest.fixture
def open_in_notebook7(lab: LabServer, chromium) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    """``open_in_notebook7(name, cells)``: the same server's Notebook 7 front end."""
    with notebook_opener(lab, chromium, ui="notebook") as opener:
        yield opener


@pytest.fixture
def open_without_extension(
    lab_without_extension: LabServer, chromium
) -> Iterator[Callable[[str, list[str]], NotebookPage]]:
    """``open_without_extension(name, cells)`` in JupyterLab with our extension disabled."""
    with notebook_opener(lab_without_extension, chromium) as opener:
        yield opener


@pytest.fixture
def board(tmp_path) -> Iterator[tuple[str, object]]:
    """``jumpstarter-jupyter demo`` on a unix socket: (endpoint, a test-side client of it).

    The test's own client checks what the browser did through the Python API, not the DOM.
    """
    from jumpstarter_jupyter.client import connect
    from jumpstarter_jupyter.errors import ConnectionFailed

    endpoint = f"unix:{tmp_path / 'board.sock'}"
    log = open(tmp_path / "demo.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", "demo", "--socket", str(tmp_path / "board.sock")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def attempt():
        if process.poll() is not None:
            raise RuntimeError(
                f"demo exited with {process.returncode}: {(tmp_path / 'demo.log').read_text()[-2000:]}"
            )
        try:
            return connect(endpoint)
        except ConnectionFailed:
            return None

    dut = wait_for(attempt, SERVER_START, "the demo board to answer")
    try:
        yield endpoint, dut
    finally:
        dut.close()
        process.terminate()
        process.wait(timeout=15)
        log.close()
