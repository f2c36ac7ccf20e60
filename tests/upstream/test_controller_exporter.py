"""Our exporter in an upstream deployment: it registers at the test controller (tests/controller),
upstream's ``jmp`` 0.9.0 leases it by selector and drives it through the router, and it rides out
a controller that goes away, a cut router stream and an endpoint nobody answers.

One exporter (``jumpstarter-jupyter run``, leases required, also on ``--listen`` for direct
clients) serves the module; the controller is the session's.
"""

from __future__ import annotations

import datetime
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import yaml
from interop import clean_env, free_port

import jumpstarter_jupyter as jj
from controller import client_config, exporter_config, new_client, new_exporter
from jumpstarter_jupyter import ConnectionFailed
from jumpstarter_jupyter.protocol.client.v1 import client_pb2, client_pb2_grpc
from jumpstarter_jupyter.protocol.v1 import common_pb2
from support import start_exporter, wait_for

pytestmark = pytest.mark.upstream

PEER_SCRIPTS = Path(__file__).parent / "peer"
LABELS = {"board": "ours", "site": "lab-a"}
SELECTOR = "board=ours,site=lab-a"
EXPORT = {
    "power": {"type": "jumpstarter_driver_power.driver.MockPower"},
    "serial": {"type": "jumpstarter_driver_pyserial.driver.PySerial", "config": {"url": "loop://"}},
    "blocking": {"type": "blocking.Blocking"},  # tests/exporter/blocking.py: calls that stay in flight
}
BLOCKING = Path(__file__).parents[1] / "exporter"
DEADLINE = 60.0
READY, WAITING = common_pb2.EXPORTER_STATUS_LEASE_READY, common_pb2.EXPORTER_STATUS_BEFORE_LEASE_HOOK
AVAILABLE, OFFLINE = common_pb2.EXPORTER_STATUS_AVAILABLE, common_pb2.EXPORTER_STATUS_OFFLINE


def our_config(controller, directory: Path, labels: dict[str, str] = LABELS, **extra) -> tuple[str, Path]:
    """A fresh Exporter object and our config joining the controller as it: (name, path)."""
    name, token = new_exporter(controller, labels, "ours")
    path = exporter_config(controller, directory / f"{name}.yaml", name, token, EXPORT)
    path.write_text(yaml.safe_dump({**yaml.safe_load(path.read_text()), **extra}, sort_keys=False))
    return name, path


class Board:
    """``jumpstarter-jupyter run`` registered at the test controller and serving ``--listen`` too."""

    def __init__(self, controller, directory: Path):
        self.controller = controller
        self.name, config = our_config(controller, directory, lease={"required": True, "heartbeat": "2s"})
        self.log = directory / "exporter.log"
        self.address = f"127.0.0.1:{free_port()}"
        self.process = start_exporter(
            "run", config, "--listen", self.address, log=str(self.log), env={"PYTHONPATH": str(BLOCKING)}
        )
        self.clients: list = []

    @property
    def record(self):
        """The controller's Exporter object of this board."""
        return self.controller.exporter(self.name)

    def connect(self, **options):
        client = jj.connect(self.address, **options)
        self.clients.append(client)
        return client

    def stop(self) -> int:
        for client in self.clients:
            client.close()
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=DEADLINE)


@pytest.fixture(scope="module")
def board(controller, tmp_path_factory):
    ours = Board(controller, tmp_path_factory.mktemp("ours"))
    wait_for(
        lambda: ours.record.online and ours.record.status == AVAILABLE, DEADLINE, "our exporter registered"
    )
    yield ours
    assert ours.stop() == 0
    log = ours.log.read_text()
    assert "unregistered from the controller" in log, log[-3000:]
    assert ours.record.status == OFFLINE and not ours.record.devices


@pytest.fixture
def client(controller, tmp_path) -> tuple[str, str, Path]:
    """A fresh Client object and its upstream client config: (name, token, path)."""
    name, token = new_client(controller)
    return name, token, client_config(controller, tmp_path / "client.yaml", name, token)


def jmp_shell(
    peer: Path, config: Path, *command: str, selector: str = SELECTOR, **options
) -> subprocess.Popen:
    """``jmp shell --selector SELECTOR -- COMMAND`` against the test controller, output on a pipe."""
    argv = [str(peer / "bin/jmp"), "--log-level", "WARNING", "shell", "--client-config", str(config)]
    return subprocess.Popen(
        [*argv, "--selector", selector, "--", *command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=clean_env(peer),
        **options,
    )


def read_until(process: subprocess.Popen, text: str) -> str:
    """The process's output up to the line holding ``text`` (all of it if it ends first)."""
    seen = ""
    for line in iter(process.stdout.readline, b""):
        seen += line.decode(errors="replace")
        if text in seen:
            break
    return seen


def finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]
    return output.decode(errors="replace")


def reported_statuses(log: Path) -> list[str]:
    """The statuses the exporter's log says it reported to the controller, in order."""
    return [
        line.split("status ", 1)[1] for line in log.read_text().splitlines() if "controller: status " in line
    ]


def test_our_exporter_registers_its_drivers_and_reports_available(board):
    record = board.record
    names = {report.labels.get("jumpstarter.dev/name") for report in record.devices}
    assert {"power", "serial"} <= names
    assert record.status == AVAILABLE and record.online
    assert "registered with the controller" in board.log.read_text()


def test_upstream_jmp_leases_our_exporter_by_selector_and_switches_power_through_the_router(
    controller, peer, board, client
):
    name, _, config = client
    dials = controller.state.dials
    finish(jmp_shell(peer, config, "j", "power", "on"))
    watcher = board.connect(lease=False)
    assert watcher.power.state() is True  # the call came through the router under the lease
    (lease,) = controller.leases_of(name)
    assert lease.exporter == board.name and lease.conditions["Ready"].reason == "Released"
    assert controller.state.dials > dials
    wait_for(lambda: board.record.status == AVAILABLE and board.record.lease is None, DEADLINE, "free again")


def test_a_direct_holder_makes_the_controller_client_wait_in_line(controller, peer, board, client):
    holder = board.connect(purpose="bench work")
    holder.power.off()
    name, _, config = client
    shell = jmp_shell(peer, config, "j", "power", "on")
    try:
        wait_for(lambda: board.record.status == WAITING, DEADLINE, "the controller's client in line")
        assert "waiting for the board (held by" in board.record.status_message
        assert f"{name} is number 1 in line" in board.record.status_message
        assert [w.holder for w in holder.connection.lease_status().queue] == [name]
        assert holder.power.state() is False  # the board is still the direct holder's
        holder.lease.release()
        finish(shell)
    finally:
        shell.kill()
    assert board.connect(lease=False).power.state() is True


def test_a_cut_router_stream_fails_the_call_in_flight_and_the_next_call_dials_again(
    controller, peer, board, client
):
    name, _, config = client
    script = jmp_shell(peer, config, str(peer / "bin/python"), str(PEER_SCRIPTS / "router_cut.py"))
    try:
        assert "in flight" in read_until(script, "in flight")
        (lease,) = controller.leases_of(name)
        dials = controller.state.dials
        assert controller.cut_router_streams(lease.name) >= 1
        output = finish(script)
    finally:
        script.kill()
    # the client's connection is closed by then (upstream's BrokenResourceError), so its next call
    # connects anew at once: no retry (tests/upstream/peer/router_cut.py)
    assert "the call in flight failed: BrokenResourceError" in output, output
    assert "next call: power state False" in output, output
    assert controller.state.dials > dials  # the next call came through a new dial under the same lease
    assert len(controller.leases_of(name)) == 1
    assert "router stream of lease" in board.log.read_text()


@pytest.fixture
def client_home(client, monkeypatch) -> str:
    """The client's config as ``lab`` in $JMP_CLIENT_CONFIG_HOME/clients (where our client reads it)."""
    (client[2].parent / "clients").mkdir()
    client[2].rename(client[2].parent / "clients" / "lab.yaml")
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(client[2].parent))
    return "lab"


def test_our_client_leases_our_exporter_through_the_router(controller, board, client, client_home):
    with jj.connect(controller=client_home, selector=SELECTOR, duration=600) as dut:
        assert dut.connection.board == board.name
        dut.power.on()
        assert board.connect(lease=False).power.state() is True
        assert board.record.status == READY
        dut.power.off()
    (lease,) = controller.leases_of(client[0])
    assert lease.conditions["Ready"].reason == "Released"  # deleted at close
    wait_for(lambda: board.record.status == AVAILABLE, DEADLINE, "available again")


def test_a_cut_router_stream_fails_our_clients_call_in_flight_with_connection_failed(
    controller, board, client, client_home
):
    with jj.connect(controller=client_home, selector=SELECTOR, duration=600) as dut:
        stream = dut.blocking.sync_stream()
        assert next(stream) == 1  # the call is in flight now, and stays so
        (lease,) = controller.leases_of(client[0])
        dials = controller.state.dials
        assert controller.cut_router_streams(lease.name) >= 1
        with pytest.raises(ConnectionFailed, match=r"dut\.blocking\.sync_stream: .* not reachable"):
            next(stream)
        dut.power.on()  # the next call dials again, under the same lease
        assert controller.state.dials > dials and len(controller.leases_of(client[0])) == 1
        assert board.connect(lease=False).power.state() is True
    wait_for(lambda: board.record.status == AVAILABLE, DEADLINE, "available again")


def create_lease(controller, client: tuple[str, str, Path], selector: str = SELECTOR) -> str:
    """A lease by selector through ClientService, as upstream's client asks: its name."""
    name, token, _ = client
    credentials = grpc.ssl_channel_credentials(controller.ca_pem)
    metadata = (
        ("authorization", f"Bearer {token}"),
        ("jumpstarter-kind", "Client"),
        ("jumpstarter-namespace", "default"),
        ("jumpstarter-name", name),
    )
    with grpc.secure_channel(controller.endpoint, credentials) as channel:
        lease = client_pb2.Lease(selector=selector)
        lease.duration.FromTimedelta(datetime.timedelta(minutes=5))
        request = client_pb2.CreateLeaseRequest(parent="namespaces/default", lease=lease)
        return client_pb2_grpc.ClientServiceStub(channel).CreateLease(request, metadata=metadata).name


def delete_lease(controller, client: tuple[str, str, Path], lease: str) -> None:
    name, token, _ = client
    metadata = (
        ("authorization", f"Bearer {token}"),
        ("jumpstarter-kind", "Client"),
        ("jumpstarter-namespace", "default"),
        ("jumpstarter-name", name),
    )
    with grpc.secure_channel(controller.endpoint, grpc.ssl_channel_credentials(controller.ca_pem)) as channel:
        client_pb2_grpc.ClientServiceStub(channel).DeleteLease(
            client_pb2.DeleteLeaseRequest(name=lease), metadata=metadata
        )


def test_killing_the_controller_mid_lease_keeps_direct_clients_working_and_the_exporter_registers_again(
    controller, board, client
):
    name = client[0]
    lease = create_lease(controller, client)
    watcher = board.connect(lease=False)
    wait_for(lambda: watcher.connection.lease_status().lease.holder == name, DEADLINE, "the lease holds here")
    wait_for(lambda: board.record.status == READY, DEADLINE, "the controller sees it")
    registrations = board.record.register_count
    controller.stop()
    try:
        assert watcher.power.state() in (True, False)  # direct clients keep working
        assert watcher.connection.lease_status().lease.holder == name  # the lease still holds
        wait_for(lambda: "lost the controller" in board.log.read_text(), DEADLINE, "the exporter notices")
    finally:
        controller.start()
    wait_for(lambda: board.record.register_count > registrations, DEADLINE, "the exporter registers again")
    wait_for(lambda: board.record.status == READY, DEADLINE, "its status again")
    delete_lease(controller, client, lease)
    wait_for(lambda: board.record.status == AVAILABLE, DEADLINE, "available after the lease")
    assert watcher.connection.lease_status().lease.holder == ""


def test_a_controller_lease_ended_while_it_waits_in_line_leaves_the_line_at_once(controller, board, client):
    # as when upstream's jmp gives up waiting for LEASE_READY (300 s) and deletes its lease on exit
    holder = board.connect(purpose="long job")
    holder.power.off()
    lease = create_lease(controller, client)
    try:
        wait_for(lambda: board.record.status == WAITING, DEADLINE, "the controller's client in line")
        assert [w.holder for w in holder.connection.lease_status().queue] == [client[0]]
    finally:
        delete_lease(controller, client, lease)
    wait_for(lambda: not holder.connection.lease_status().queue, DEADLINE, "out of our line")
    wait_for(lambda: board.record.status == AVAILABLE, DEADLINE, "available to the controller again")
    assert holder.connection.lease_status().lease.holder == holder.lease.holder  # untouched
    assert holder.power.state() is False
    holder.lease.release()
    assert f"{client[0]} left the line" in board.log.read_text()


@pytest.mark.parametrize("listen", [True, False], ids=["with --listen", "without --listen"])
def test_an_unreachable_endpoint(controller, tmp_path, listen):
    _, config = our_config(controller, tmp_path, endpoint=f"127.0.0.1:{free_port()}")
    log = tmp_path / "exporter.log"
    address = f"127.0.0.1:{free_port()}"
    listener = ["--listen", address] if listen else []
    process = start_exporter("run", config, *listener, log=str(log), env={"PYTHONPATH": str(BLOCKING)})
    try:
        wait_for(
            lambda: log.read_text().count("cannot register with the controller") >= 2, DEADLINE, "retries"
        )
        if listen:  # direct clients are served meanwhile
            dut = jj.connect(address, lease=False)
            assert dut.power.state() is False
            dut.close()
        started = time.monotonic()
        process.send_signal(signal.SIGINT if listen else signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
        assert time.monotonic() - started < 10
    finally:
        process.kill()
    text = log.read_text()
    assert "retrying in" in text and "unregistered" not in text, text[-2000:]


def test_hooks_around_a_controller_lease_are_reported_as_upstream_statuses(
    controller, client, client_home, tmp_path
):
    # the afterLease hook fails under onFailure warn (the default): a warning in the AVAILABLE message
    hooks = {
        "beforeLease": {"script": "echo setting up"},
        "afterLease": {"script": "echo cleaning up; exit 1"},
    }
    name, config = our_config(controller, tmp_path, {"board": "hooked"}, hooks=hooks)
    log = tmp_path / "exporter.log"
    process = start_exporter("run", config, log=str(log), env={"PYTHONPATH": str(BLOCKING)})
    try:
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "registered")
        with jj.connect(controller=client_home, selector="board=hooked", duration=600) as dut:
            dut.power.on()
        wait_for(lambda: "[afterLease] cleaning up" in log.read_text(), DEADLINE, "the afterLease hook")
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "available again")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE)
    statuses = reported_statuses(log)
    assert statuses == [
        "AVAILABLE: Available",
        "BEFORE_LEASE_HOOK: beforeLease hook running",
        "LEASE_READY: Ready for commands",
        "AFTER_LEASE_HOOK: afterLease hook running",
        "AVAILABLE: [HOOK_WARNING] afterLease hook warning: afterLease hook exited with status 1",
    ], log.read_text()[-3000:]


def test_a_failed_after_lease_hook_is_reported_as_upstream_does_and_its_lease_released(
    controller, peer, client, tmp_path
):
    hooks = {"afterLease": {"script": "echo cleanup broke; exit 3", "onFailure": "endLease"}}
    name, config = our_config(controller, tmp_path, {"board": "cleanup"}, hooks=hooks)
    log = tmp_path / "exporter.log"
    process = start_exporter("run", config, log=str(log), env={"PYTHONPATH": str(BLOCKING)})
    try:
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "registered")
        shell = jmp_shell(peer, client[2], "j", "power", "on", selector="board=cleanup")
        try:
            output, _ = shell.communicate(timeout=120)
        finally:
            shell.kill()
        # upstream's jmp ends its session (EndSession), waits for the hook and fails with its message
        failure = "afterLease hook failed (on_failure=endLease): afterLease hook exited with status 3"
        assert shell.returncode != 0 and failure in output.decode(errors="replace"), output.decode()[-3000:]
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "available again")
        (lease,) = controller.leases_of(client[0])
        assert lease.conditions["Ready"].reason == "Released"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=DEADLINE)
    statuses = reported_statuses(log)
    assert statuses == [
        "AVAILABLE: Available",
        "LEASE_READY: Ready for commands",
        "AFTER_LEASE_HOOK: afterLease hook running",
        f"AFTER_LEASE_HOOK_FAILED: {failure}",
        "AVAILABLE: Available",
    ], log.read_text()[-3000:]


def test_an_after_lease_hook_that_fails_under_on_failure_exit_is_reported_before_offline(
    controller, client, tmp_path
):
    hooks = {"afterLease": {"script": "exit 4", "onFailure": "exit"}}
    name, config = our_config(controller, tmp_path, {"board": "fragile"}, hooks=hooks)
    process = start_exporter(
        "run", config, log=str(tmp_path / "exporter.log"), env={"PYTHONPATH": str(BLOCKING)}
    )
    try:
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "registered")
        lease = create_lease(controller, client, "board=fragile")
        wait_for(lambda: controller.exporter(name).status == READY, DEADLINE, "leased")
        delete_lease(controller, client, lease)
        assert process.wait(timeout=DEADLINE) == 1  # the hook's onFailure: exit
    finally:
        process.kill()
    failed = (
        common_pb2.EXPORTER_STATUS_AFTER_LEASE_HOOK_FAILED,
        "afterLease hook failed (on_failure=exit, shutting down): afterLease hook exited with status 4",
    )
    reported = controller.exporter(name).reported
    assert failed in reported and reported[-1][0] == OFFLINE, reported
    assert reported.index(failed) > max(i for i, (status, _) in enumerate(reported) if status == READY)


def test_tls_insecure_trusts_the_chain_the_controller_shows(controller, tmp_path):
    name, config = our_config(controller, tmp_path, {"board": "insecure"}, tls={"ca": "", "insecure": True})
    process = start_exporter(
        "run", config, log=str(tmp_path / "exporter.log"), env={"PYTHONPATH": str(BLOCKING)}
    )
    try:
        wait_for(lambda: controller.exporter(name).status == AVAILABLE, DEADLINE, "registered without a CA")
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=DEADLINE) == 0
    assert controller.exporter(name).status == OFFLINE
