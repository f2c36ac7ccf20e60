"""Fixtures for the interop suite: the upstream 0.9.0 peer venv, exporters of both sides, `jmp shell`.

The peer lives in its own venv (created by ``scripts/setup-upstream-peer.sh``, as a user
would) and meets our code only over gRPC on loopback TCP. Every process a test starts runs
in its own process group and is stopped by its PID.
"""

from __future__ import annotations

import socketserver
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from interop import IDLE_SECONDS, PASSPHRASE, Service, accepts, clean_env, free_port
from recording_proxy import RecordingProxy

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = Path(__file__).parent / "configs"
PEER_SCRIPTS = Path(__file__).parent / "peer"
SHELL_TIMEOUT = 120.0


def pytest_configure(config):
    config.addinivalue_line("markers", "last: run after every other test (it waits on background work)")


def pytest_collection_modifyitems(items):
    """Move ``@pytest.mark.last`` tests to the end: the keepalive check idles in the background meanwhile."""
    items.sort(key=lambda item: item.get_closest_marker("last") is not None)


# the peer: the session fixture ``peer`` of tests/conftest.py (the browser suite hosts its drivers too)

# processes --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services(tmp_path_factory) -> Iterator[Callable[..., Service]]:
    """``services(argv, name, env)`` starts a Service, stopped at the end of the session."""
    started: list[Service] = []
    logs = tmp_path_factory.mktemp("logs")

    def start(argv: list[str], name: str, env: dict[str, str]) -> Service:
        service = Service(argv, logs / f"{name}-{len(started)}.log", env)
        started.append(service)
        return service

    yield start
    for service in reversed(started):
        service.stop()


@pytest.fixture(scope="session")
def echo_server() -> Iterator[str]:
    """A threaded TCP echo server on loopback: ``HOST:PORT``."""

    class Echo(socketserver.BaseRequestHandler):
        def handle(self):
            while data := self.request.recv(65536):
                self.request.sendall(data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="echo-server", daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def render_config(name: str, directory: Path, echo: str) -> Path:
    """``configs/NAME`` with ``@ECHO_PORT@`` (the echo server's port) and ``@SCRATCH@`` filled in."""
    scratch = directory / f"{Path(name).stem}-scratch"
    scratch.mkdir(exist_ok=True)
    text = (CONFIGS / name).read_text().replace("@ECHO_PORT@", echo.rpartition(":")[2])
    path = directory / name
    path.write_text(text.replace("@SCRATCH@", str(scratch)))
    return path


# exporters --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def launch_upstream_exporter(peer, services, echo_server, tmp_path_factory) -> Callable[..., Service]:
    """``launch_upstream_exporter("x.yaml", "HOST:PORT", passphrase=None)``: a listening ``jmp run``."""
    directory = tmp_path_factory.mktemp("upstream-configs")

    def launch(config: str, address: str, passphrase: str | None = None) -> Service:
        argv = [
            str(peer / "bin/jmp"),
            "run",
            "--exporter-config",
            str(render_config(config, directory, echo_server)),
            "--tls-grpc-listener",
            address,
            "--tls-grpc-insecure",
        ]
        if passphrase:
            argv += ["--passphrase", passphrase]
        service = services(argv, "upstream-exporter", clean_env(peer))
        service.wait_for(accepts(address), "upstream jmp run")
        return service

    return launch


@pytest.fixture(scope="session")
def start_upstream_exporter(launch_upstream_exporter) -> Callable[..., str]:
    """``start_upstream_exporter("x.yaml", passphrase=None)``: ``jmp run`` on a free port; its address."""

    def start(config: str, passphrase: str | None = None) -> str:
        address = f"127.0.0.1:{free_port()}"
        launch_upstream_exporter(config, address, passphrase)
        return address

    return start


@pytest.fixture(scope="session")
def start_our_exporter(services, echo_server, tmp_path_factory) -> Callable[..., str]:
    """``start_our_exporter("x.yaml" | "demo", passphrase=None, *options)``: our exporter on a free
    port (``options``: more command-line options, e.g. ``--lease required``); its address."""
    directory = tmp_path_factory.mktemp("our-configs")

    def start(config: str, passphrase: str | None = None, *options: str) -> str:
        command = (
            ["demo"] if config == "demo" else ["run", str(render_config(config, directory, echo_server))]
        )
        argv = [sys.executable, "-m", "jumpstarter_jupyter", *command, "--listen", "127.0.0.1:0", *options]
        if passphrase:
            argv += ["--passphrase", passphrase]
        service = services(argv, f"our-{config}", clean_env())
        service.wait_for(
            lambda: "\nserving " in f"\n{service.log()}", "jumpstarter-jupyter " + " ".join(command)
        )
        return f"\n{service.log()}".split("\nserving ", 1)[1].split()[0]

    return start


@pytest.fixture(scope="session")
def upstream_exporter(start_upstream_exporter) -> str:
    """An upstream exporter serving configs/upstream.yaml (shared by the read-mostly tests)."""
    return start_upstream_exporter("upstream.yaml")


@pytest.fixture(scope="session")
def our_exporter(start_our_exporter) -> str:
    """Our exporter serving configs/upstream.yaml: upstream type names, our drivers."""
    return start_our_exporter("upstream.yaml")


# upstream's client ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jmp_shell(peer) -> Callable[..., subprocess.CompletedProcess]:
    """``jmp_shell(address, "j", "power", "on", passphrase=None)``: upstream ``jmp shell --tls-grpc``."""

    def run(
        address: str,
        *command: str,
        passphrase: str | None = None,
        stdin: bytes | None = None,
        timeout: float = SHELL_TIMEOUT,
        log_level: str = "WARNING",
        exporter_logs: bool = False,
    ) -> subprocess.CompletedProcess:
        # WARNING by default: keeps the shell's own INFO lines (timestamped, on stdout) out of the output
        argv = [
            str(peer / "bin/jmp"),
            "--log-level",
            log_level,
            "shell",
            "--tls-grpc",
            address,
            "--tls-grpc-insecure",
        ]
        if exporter_logs:
            argv.append("--exporter-logs")
        if passphrase is not None:
            argv += ["--passphrase", passphrase]
        return subprocess.run(
            [*argv, "--", *command],
            input=stdin if stdin is not None else b"",
            capture_output=True,
            env=clean_env(peer),
            timeout=timeout,
            cwd=PEER_SCRIPTS,
        )

    return run


@pytest.fixture(scope="session")
def peer_python(peer, jmp_shell) -> Callable[..., subprocess.CompletedProcess]:
    """``peer_python(address, "script.py", *args)``: a tests/upstream/peer/ script using upstream's client."""

    def run(address: str, script: str, *args: str, **options) -> subprocess.CompletedProcess:
        return jmp_shell(address, str(peer / "bin/python"), str(PEER_SCRIPTS / script), *args, **options)

    return run


@pytest.fixture
def proxy() -> Iterator[Callable[[str], RecordingProxy]]:
    """``proxy(target)``: a RecordingProxy in front of ``target``, stopped after the test."""
    started: list[RecordingProxy] = []

    def start(target: str) -> RecordingProxy:
        started.append(RecordingProxy(target))
        return started[-1]

    yield start
    for recording in started:
        recording.stop()


@pytest.fixture(scope="session")
def guarded(start_upstream_exporter, start_our_exporter) -> dict[str, str]:
    """Both sides serving configs/upstream.yaml behind PASSPHRASE: ``{"upstream": addr, "ours": addr}``."""
    return {
        "upstream": start_upstream_exporter("upstream.yaml", passphrase=PASSPHRASE),
        "ours": start_our_exporter("upstream.yaml", passphrase=PASSPHRASE),
    }


@pytest.fixture(scope="session", autouse=True)
def idle_stream(request, peer, our_exporter, services) -> Service | None:
    """Upstream's client holding a serial stream open and idle for IDLE_SECONDS, started early.

    It runs in the background while the rest of the suite runs; the ``@pytest.mark.last``
    test in test_keepalive.py checks its outcome. Not started when that test is not selected.
    """
    if not any(item.get_closest_marker("last") for item in request.session.items):
        return None
    argv = [
        str(peer / "bin/jmp"),
        "--log-level",
        "WARNING",
        "shell",
        "--tls-grpc",
        our_exporter,
        "--tls-grpc-insecure",
        "--",
        str(peer / "bin/python"),
        str(PEER_SCRIPTS / "idle_stream.py"),
        str(IDLE_SECONDS),
    ]
    return services(argv, "idle-stream", clean_env(peer))
