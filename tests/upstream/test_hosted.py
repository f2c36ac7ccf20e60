"""Upstream 0.9.0's community driver packages hosted in our exporter (jumpstarter_jupyter/hosted).

One exporter in this process serves a mixed tree (our composite and serial beside hosted shell,
network, opendal, HTTP, TFTP and a hardware driver with no hardware) to our client and to
upstream's ``j``; the hosted drivers run in ONE upstream exporter process, in the shared peer
venv. The same tree is served a second time with leases required (no second process). Only the
SIGKILL test starts an exporter process of its own.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import signal
import socketserver
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from interop import clean_env, free_port, out, output_lines

import jumpstarter_jupyter as jj
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.errors import AuthenticationFailed, ConfigError, DriverError, LeaseRequired
from jumpstarter_jupyter.exporter import build_tree, parse_config
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from jumpstarter_jupyter.exporter.server import serve
from jumpstarter_jupyter.protocol.metadata import FAILED_LABEL, HOSTED_LABEL
from support import cli_argv, wait_for

CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
hosted:
  python: {python}
export:
  board:
    children:
      sh:
        type: jumpstarter_driver_shell.driver.Shell
        readonly: [get_methods]
        config:
          methods:
            hello: "echo hello $1; echo to-stderr >&2"
            count: "for i in 1 2 3; do echo line $i; sleep 0.2; done"
            fail: "echo failing; exit 3"
            slow: {{command: "sleep 30", timeout: 1}}
            hang: "echo started; sleep 300"
      serial:
        type: jumpstarter_driver_pyserial.driver.PySerial
        config:
          url: "loop://"
  unix:
    type: jumpstarter_driver_network.driver.UnixNetwork
    config:
      path: {unix}
  web:
    type: jumpstarter_driver_network.driver.TcpNetwork
    hosted: true
    config:
      host: 127.0.0.1
      port: {http_port}
  files:
    type: jumpstarter_driver_opendal.driver.Opendal
    config:
      scheme: fs
      kwargs:
        root: {files}
  http:
    type: jumpstarter_driver_http.driver.HttpServer
    config:
      root_dir: {www}
      host: 127.0.0.1
      port: {http_port}
  tftp:
    type: jumpstarter_driver_tftp.driver.Tftp
    config:
      root_dir: {tftp}
      host: 127.0.0.1
      port: {tftp_port}
  hub:
    type: jumpstarter_driver_yepkit.driver.Ykush
"""


class _Echo(socketserver.BaseRequestHandler):
    def handle(self):
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def unix_echo(tmp_path_factory):
    path = tmp_path_factory.mktemp("unix-echo") / "echo.sock"
    server = socketserver.ThreadingUnixStreamServer(str(path), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield path
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def config_text(peer, unix_echo, tmp_path_factory) -> str:
    scratch = tmp_path_factory.mktemp("hosted")
    for name in ("files", "www", "tftp"):
        (scratch / name).mkdir()
    return CONFIG.format(
        python=peer / "bin/python",
        unix=unix_echo,
        http_port=free_port(),
        files=scratch / "files",
        www=scratch / "www",
        tftp=scratch / "tftp",
        tftp_port=free_port(),
    )


@pytest.fixture(scope="module")
def root(config_text, tmp_path_factory):
    """The built tree: one hosted process for every hosted entry."""
    path = tmp_path_factory.mktemp("hosted-config") / "board.yaml"
    path.write_text(config_text)
    from jumpstarter_jupyter.exporter import load_config

    return build_tree(load_config(path))


@pytest.fixture(scope="module")
def exporter(root):
    with serve(root, listen="127.0.0.1:0") as running:
        yield running


@pytest.fixture(scope="module")
def dut(exporter):
    with jj.connect(exporter.address) as client:
        yield client


def _host(root):
    return root.children["board"].children["sh"].host


# the tree -----------------------------------------------------------------------------------


def test_one_tree_of_ours_and_hosted_drivers_with_methods_from_the_driver_classes(dut):
    assert [child.name for child in dut.board] == ["sh", "serial"]
    assert type(dut.board.serial).__name__ == "SerialClient" and HOSTED_LABEL not in dut.board.serial.labels
    sh = dut.board.sh
    assert type(sh).__name__ == "GenericClient"
    assert sh.labels[HOSTED_LABEL] == "jumpstarter_driver_shell.driver.Shell"
    assert sh.labels["jumpstarter.dev/client"] == "jumpstarter_driver_shell.client.ShellClient"
    described = sh.methods["call_method"]
    assert described["kind"] == "streaming" and [p["name"] for p in described["params"]] == [
        "method",
        "env",
        "args",
    ]
    assert "live streaming output" in described["doc"]
    assert type(dut.unix).__name__ == "NetworkClient"  # upstream's NetworkClient maps to ours
    assert [child.name for child in dut.http] == ["storage"]  # children the upstream driver made itself


def test_hosted_shell_streams_output_reports_exit_codes_and_timeouts(dut, exporter):
    assert dut.board.sh.get_methods() == ["hello", "count", "fail", "slow", "hang"]
    assert _run(dut.board.sh, "hello", "world") == ("hello world\n", "to-stderr\n", 0)
    chunks = dut.board.sh.call_method("count", {})
    assert next(chunks)[0] == "line 1\n"  # streamed: the first line arrives before the command ends
    assert "".join(chunk[0] for chunk in chunks) == "line 2\nline 3\n"
    assert _run(dut.board.sh, "fail") == ("failing\n", "", 3)
    _, stderr, code = _run(dut.board.sh, "slow")
    assert code == 199 and "timed out after 1 seconds" in stderr
    logged = [record.getMessage() for _, record in exporter.logs.records if record.name == "driver.Shell"]
    assert any("calling hello with args: ('world',)" in line for line in logged)  # into our LogStream


def _run(shell, method: str, *args: str) -> tuple[str, str, int | None]:
    """A shell method's whole output and exit code, from the chunks it streamed."""
    chunks = list(shell.call_method(method, {}, *args))
    return "".join(c[0] for c in chunks), "".join(c[1] for c in chunks), chunks[-1][2]


def test_a_hosted_drivers_exception_reaches_our_client_as_our_error_with_its_message(dut):
    with pytest.raises(DriverError, match=r"dut\.board\.sh\.call_method: Method 'nope' not found"):
        list(dut.board.sh.call_method("nope", {}))


def test_our_command_line_calls_any_method_of_a_hosted_driver(exporter):
    result = subprocess.run(
        cli_argv(exporter.address, "board", "sh", "call-method", "hello", "{}", "cli"),
        capture_output=True,
        env=clean_env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, out(result)
    assert "hello cli" in result.stdout.decode()


def test_hosted_unix_and_tcp_networks_carry_bytes_through_stream_and_forward(dut):
    with dut.unix.stream() as stream:
        stream.send(b"ping")
        assert stream.receive() == b"ping"
    payload = os.urandom(1 << 20)
    with dut.unix.forward() as address:
        import socket

        host, port = address.rsplit(":", 1)
        with socket.create_connection((host, int(port))) as sock:
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            received = bytearray()
            while len(received) < len(payload):
                received += sock.recv(65536)
            sender.join()
    assert bytes(received) == payload


def test_opendal_writes_and_reads_back_a_file_on_a_local_folder(dut, config_text):
    data = os.urandom(300_000)
    fd = dut.files.open("boot/image.bin", "wb")
    dut.files.upload("file_write", io.BytesIO(data), fd, handle_index=1)
    dut.files.file_close(fd)
    root = Path(config_text.split("root: ")[1].split("\n")[0])
    assert (root / "boot/image.bin").read_bytes() == data  # on the exporter's disk
    fd = dut.files.open("boot/image.bin", "rb")
    sink = io.BytesIO()
    dut.files.download("file_read", sink, fd, handle_index=1)
    assert sink.getvalue() == data
    assert dut.files.exists("boot/image.bin") is True


def test_http_server_serves_a_file_put_through_its_storage_fetched_through_a_forward(dut):
    fd = dut.http.storage.open("index.txt", "wb")
    dut.http.storage.upload("file_write", io.BytesIO(b"hosted http\n"), fd, handle_index=1)
    dut.http.storage.file_close(fd)
    dut.http.start()
    try:
        # through a hosted TcpNetwork to the HTTP server's port
        with (
            dut.web.forward() as address,
            urllib.request.urlopen(f"http://{address}/index.txt", timeout=30) as page,
        ):
            assert page.read() == b"hosted http\n"
    finally:
        dut.http.stop()


def test_tftp_serves_a_file_to_a_real_tftp_client(dut, tmp_path):
    fd = dut.tftp.storage.open("kernel.img", "wb")
    data = os.urandom(100_000)
    dut.tftp.storage.upload("file_write", io.BytesIO(data), fd, handle_index=1)
    dut.tftp.storage.file_close(fd)
    dut.tftp.start()
    try:
        port = dut.tftp.get_port()
        fetched = tmp_path / "kernel.img"
        result = subprocess.run(
            ["tftp", "-m", "binary", "127.0.0.1", str(port), "-c", "get", "kernel.img", str(fetched)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0 and fetched.exists(), out(result)  # tftp-hpa exits 0 on errors too
        assert fetched.read_bytes() == data
    finally:
        dut.tftp.stop()


def test_a_driver_without_its_hardware_is_reported_failed_and_the_rest_serves(dut):
    hub = dut.hub
    assert "ykush" in hub.labels[FAILED_LABEL] or "NoBackendError" in hub.labels[FAILED_LABEL]
    assert hub.labels[HOSTED_LABEL] == "jumpstarter_driver_yepkit.driver.Ykush"
    assert type(hub).__name__ == "PowerClient"  # its client as any power driver's
    with pytest.raises(DriverError, match=r"dut\.hub\.on: .*(ykush|NoBackendError)"):
        hub.on()
    assert dut.board.sh.get_methods()  # the rest serves
    from jumpstarter_jupyter.jupyter.magics import status_line
    from jumpstarter_jupyter.jupyter.panel import tree_lines

    assert "(1 failed: dut.hub)" in status_line("dut", dut)
    assert any(re.search(r"hub  \(PowerClient\)  FAILED: \w+", line) for line in tree_lines(dut))


class _Borrowed(Composite):
    """The module's tree served a second time: its exporter's stop must not tear the tree down."""

    def teardown(self) -> None:
        pass


def test_leases_and_the_passphrase_apply_to_hosted_methods_read_only_ones_are_allowed(root):
    borrowed = _Borrowed()
    borrowed.children = root.children
    with serve(
        borrowed, listen="127.0.0.1:0", lease=LeasePolicy(required=True), passphrase="s3cret"
    ) as leased:
        with pytest.raises(AuthenticationFailed):
            jj.connect(leased.address, passphrase="wrong", lease=False)
        with jj.connect(leased.address, passphrase="s3cret", lease=False) as watcher:
            assert watcher.board.sh.get_methods()[0] == "hello"  # listed read-only in the config
            with pytest.raises(LeaseRequired):
                list(watcher.board.sh.call_method("hello", {}))
        with jj.connect(leased.address, passphrase="s3cret", lease=True) as holder:
            assert _run(holder.board.sh, "hello", "holder")[0] == "hello holder\n"


def test_a_killed_hosted_process_fails_calls_in_flight_naming_the_driver_and_is_restarted(dut, root):
    host = _host(root)
    restarts = host.restarts
    hanging = dut.board.sh.call_method("hang", {})
    assert next(hanging)[0] == "started\n"  # the call is in flight
    orphans = _descendants(host.process.pid)  # the shell's command runs in a session of its own
    os.killpg(host.process.pid, signal.SIGKILL)
    for pid in orphans:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with pytest.raises(
        DriverError,
        match=r"dut\.board\.sh\.call_method: hosted driver board\.sh "
        r"\(jumpstarter_driver_shell\.driver\.Shell\) is not running",
    ):
        list(hanging)
    wait_for(lambda: host.restarts > restarts and host.reason is None, 120, "the hosted process restarted")
    assert _run(dut.board.sh, "hello", "again")[0] == "hello again\n"


# upstream's client on hosted drivers, and on our GPIO ----------------------------------------


def test_upstream_j_drives_a_hosted_shell_on_our_exporter(exporter, jmp_shell):
    result = jmp_shell(exporter.address, "j", "board", "sh", "hello", "upstream")
    assert result.returncode == 0, out(result)
    assert "hello upstream" in "\n".join(output_lines(result)) + result.stderr.decode()


def test_upstream_j_drives_our_virtual_boards_gpio(start_our_exporter, jmp_shell):
    address = start_our_exporter("demo")
    result = jmp_shell(address, "sh", "-c", "j button on && j button off && j led read")
    assert result.returncode == 0, out(result)


# configuration and lifetime -------------------------------------------------------------------


def test_an_upstream_drivers_config_mistakes_stop_the_exporter_with_file_path_and_line(peer, tmp_path):
    header = (
        f"apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nhosted:\n  python: {peer}/bin/python\n"
        "export:\n"
    )
    shell = "  sh:\n    type: jumpstarter_driver_shell.driver.Shell\n    config:\n      methods: {}\n"
    unknown = header + shell + "      colour: red\n"
    with pytest.raises(
        ConfigError,
        match=r"board.yaml: export\.sh\.config\.colour \(line 10\): Shell has no config "
        r"field 'colour'",
    ):
        build_tree(parse_config(unknown, "board.yaml"))
    wrong = header + shell + "      timeout: soon\n"
    with pytest.raises(ConfigError, match=r"export\.sh\.config\.timeout \(line 10\): .*integer.*got 'soon'"):
        build_tree(parse_config(wrong, "board.yaml"))
    nowhere = "apiVersion: jumpstarter.dev/v1alpha1\nexport:\n" + shell.partition("    config")[0]
    with pytest.raises(
        ConfigError,
        match=r"export\.sh\.type \(line 4\): .*upstream Jumpstarter driver.*`hosted: "
        r"\{python: /path/to/venv/bin/python\}`",
    ):
        build_tree(parse_config(nowhere, "board.yaml"))  # upstream is not installed in our venv
    missing = header + "  sh:\n    type: jumpstarter_driver_nosuch.driver.Thing\n"
    with pytest.raises(ConfigError, match=r"export\.sh\.type \(line 7\): cannot import driver type"):
        build_tree(parse_config(missing, "board.yaml"))


def test_sigkill_of_our_exporter_leaves_no_hosted_process_behind(peer, services, tmp_path):
    config = tmp_path / "sh.yaml"
    config.write_text(
        f"apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nhosted:\n  python: {peer}/bin/python\n"
        "export:\n  sh:\n    type: jumpstarter_driver_shell.driver.Shell\n    config:\n"
        "      methods: {hang: 'echo started; sleep 300'}\n"
    )
    service = services(
        [sys.executable, "-m", "jumpstarter_jupyter", "run", str(config), "--listen", "127.0.0.1:0"],
        "hosted-sigkill",
        clean_env(),
    )
    service.wait_for(lambda: "\nserving " in f"\n{service.log()}", "our exporter with a hosted driver")
    address = f"\n{service.log()}".split("\nserving ", 1)[1].split()[0]
    with jj.connect(address) as client:
        hanging = client.sh.call_method("hang", {})
        assert next(hanging)[0] == "started\n"
        hosted = _processes(parent=service.process.pid, command="hosted/child.py")
        assert len(hosted) == 1, "no hosted process found"
        below = _descendants(hosted[0])
        assert any("sleep 300" in _command(pid) for pid in below), [_command(pid) for pid in below]
        os.kill(service.process.pid, signal.SIGKILL)
        service.process.wait()
        wait_for(lambda: not any(_alive(pid) for pid in [*hosted, *below]), 30, "the hosted processes to end")


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _processes(command: str, parent: int) -> list[int]:
    """Live processes whose parent is ``parent`` and whose command line contains ``command``."""
    return [pid for pid in _descendants(parent) if _parent(pid) == parent and command in _command(pid)]


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _descendants(root: int) -> list[int]:
    pids = [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]
    parents = {pid: _parent(pid) for pid in pids}
    found, todo = [], [root]
    while todo:
        current = todo.pop()
        for pid, parent in parents.items():
            if parent == current:
                found.append(pid)
                todo.append(pid)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (OSError, IndexError):
        return False
