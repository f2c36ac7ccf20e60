"""A real JupyterHub on loopback for the shared-lab tests, shared by the whole suite.

One hub (DummyAuthenticator, SimpleLocalProcessSpawner, users u1 and u2) whose single-user
servers are ``jupyterhub-singleuser`` from the venv holding the installed wheel (with
``[lab]``, plus jupyterhub itself), and one exporter: ``examples/shared-lab.yaml``, the
virtual board with leases required, an ``afterLease`` hook powering it off and the hub's URL
to verify holders. The hub's config loads the README's lines (examples/jupyterhub_config.py)
and adds the loopback ports, the venv and the private directories of a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser.conftest import free_port
from support import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PROXY = HERE / "node_modules" / ".bin" / "configurable-http-proxy"
USERS = ("u1", "u2")
PASSWORD = "shared-lab"
START = 90.0  # seconds for the hub, a server or the exporter to come up
HUB_CONFIG = """\
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.ConfigurableHTTPProxy.pid_file = {base!r} + "/proxy.pid"
c.JupyterHub.db_url = "sqlite:///{base}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = {base!r} + "/cookie_secret"
c.JupyterHub.pid_file = {base!r} + "/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {users!r}
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = {base!r} + "/home/{{username}}"
c.JupyterHub.services = [{{"name": "lab-admin", "api_token": {service_token!r}}}]
c.JupyterHub.load_roles = [{{"name": "lab-admin", "services": ["lab-admin"],
                            "scopes": ["admin:users", "admin:servers", "tokens", "access:servers"]}}]
# the README's lines (examples/jupyterhub_config.py), then this test's venv and directories
load_subconfig({example!r})
c.Spawner.cmd = [{singleuser!r}]
c.Spawner.args = ["--allow-root", "--LabApp.app_settings_dir=" + {settings!r}, "--LabApp.extension_manager=readonly",
                  "--LabApp.expose_app_in_browser=True"]
c.Spawner.environment.update({{
    "JUPYTER_CONFIG_PATH": {config_path!r},
    "JUPYTER_CONFIG_DIR": lambda spawner: {base!r} + f"/home/{{spawner.user.name}}/.jupyter",
    "IPYTHONDIR": lambda spawner: {base!r} + f"/home/{{spawner.user.name}}/.ipython"}})
"""


@dataclass
class Hub:
    """A running hub: its public URL, its API URL, and a service token that administers it."""

    url: str
    api_url: str
    service_token: str
    base: Path
    log: Path

    def api(self, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
        """Call the hub's REST API (as the admin service unless ``token`` is given)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"token {token or self.service_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def token(self, user: str, scopes: list[str]) -> str:
        """A token of ``user`` with ``scopes``, made through the REST API."""
        return self.api("POST", f"/users/{user}/tokens", {"scopes": scopes, "expires_in": 600})["token"]

    def ready(self) -> bool:
        try:
            return bool(self.api("GET", "/"))
        except (urllib.error.URLError, ConnectionError):
            return False

    def server_ready(self, user: str) -> bool:
        server = self.api("GET", f"/users/{user}").get("servers", {}).get("")
        return bool(server and server.get("ready"))

    def start_server(self, user: str) -> None:
        """Start ``user``'s default server (if it is not running) and wait until it is ready."""
        if not self.server_ready(user):
            with contextlib.suppress(urllib.error.HTTPError):  # 400: already starting
                self.api("POST", f"/users/{user}/server")
            wait_for(lambda: self.server_ready(user), START, f"{user}'s server to be ready")


@dataclass
class Board:
    """The shared lab's exporter: its endpoint, log file and process."""

    endpoint: str
    log: Path
    process: subprocess.Popen

    def logged(self) -> str:
        return self.log.read_text()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test whose body failed (``item.failed``), so fixtures can keep screenshots."""
    outcome = yield
    if call.when == "call":
        item.failed = outcome.get_result().failed


def _venv_with_hub(installed) -> object:
    """The installed wheel's venv, plus the jupyterhub its single-user servers run from."""
    import jupyterhub

    if not (installed.path / "bin" / "jupyterhub-singleuser").exists():
        installed.run(
            "python",
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"jupyterhub=={jupyterhub.__version__}",
            timeout=900,
        )
    return installed


@pytest.fixture(scope="session")
def hub(installed, tmp_path_factory) -> Iterator[Hub]:
    """JupyterHub on loopback with users u1 and u2 (their servers are started by the tests)."""
    if not PROXY.exists():
        pytest.fail(f"{PROXY} is missing: `make test` installs it (npm ci in tests/hub)")
    venv = _venv_with_hub(installed)
    base = tmp_path_factory.mktemp("hub")
    config_path, settings = base / "etc-jupyter", base / "app-settings"
    config_path.mkdir()
    settings.mkdir()
    (settings / "overrides.json").write_text(
        json.dumps(
            {"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False}}
        )
    )
    port, hub_port, proxy_port = free_port(), free_port(), free_port()
    service_token = secrets.token_hex(32)
    (base / "jupyterhub_config.py").write_text(
        HUB_CONFIG.format(
            port=port,
            hub_port=hub_port,
            proxy_port=proxy_port,
            proxy=str(PROXY),
            base=str(base),
            password=PASSWORD,
            users=set(USERS),
            singleuser=str(venv.path / "bin" / "jupyterhub-singleuser"),
            settings=str(settings),
            config_path=str(config_path),
            service_token=service_token,
            example=str(ROOT / "examples" / "jupyterhub_config.py"),
        )
    )
    log = base / "hub.log"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("JUMPSTARTER_HOST", None)
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(base / "jupyterhub_config.py")],
            cwd=base,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    running = Hub(
        f"http://127.0.0.1:{port}", f"http://127.0.0.1:{hub_port}/hub/api", service_token, base, log
    )
    try:
        wait_for(lambda: running.ready() or process.poll() is not None, START, "JupyterHub to answer")
        if process.poll() is not None:
            raise RuntimeError(f"JupyterHub exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        yield running
    finally:
        process.terminate()  # the hub stops the single-user servers and the proxy
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def lab_board(hub, tmp_path_factory) -> Iterator[Board]:
    """The shared lab's exporter (examples/shared-lab.yaml) on loopback, verifying with ``hub``,
    named ``bench-1`` in the hub's system-wide pool file."""
    base = tmp_path_factory.mktemp("lab-board")
    config = base / "shared-lab.yaml"
    shutil.copy(ROOT / "examples" / "shared-lab.yaml", config)
    port = free_port()
    log = base / "exporter.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "jumpstarter_jupyter",
                "run",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
                "--hub-api-url",
                hub.api_url,
                "--stop-on-stdin-eof",
            ],
            stdin=subprocess.PIPE,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    board = Board(f"127.0.0.1:{port}", log, process)
    try:
        wait_for(
            lambda: "serving" in board.logged() or process.poll() is not None, START, "the exporter to serve"
        )
        if process.poll() is not None:
            raise RuntimeError(f"the exporter exited with {process.returncode}:\n{board.logged()[-3000:]}")
        (hub.base / "etc-jupyter" / "jumpstarter-pool.yaml").write_text(
            f"exporters:\n  bench-1:\n    endpoint: {board.endpoint}\n    description: the shared virtual board\n"
        )
        yield board
    finally:
        process.terminate()
        process.wait(timeout=30)
