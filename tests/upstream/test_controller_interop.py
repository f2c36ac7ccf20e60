"""Leases through the test controller and router (tests/controller), with upstream 0.9.0 on both
ends first: this is what shows the test controller speaks upstream's protocol as upstream's own
exporter and ``jmp`` expect. Then our client leases the same upstream exporter."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from interop import Service, clean_env

from controller import client_config, exporter_config, new_client, new_exporter
from support import wait_for

MOCK_POWER = {"power": {"type": "jumpstarter_driver_power.driver.MockPower"}}


@pytest.fixture(scope="module")
def upstream_board(
    controller, peer, services, tmp_path_factory
) -> Iterator[tuple[str, dict[str, str], Service]]:
    """Upstream's ``jmp run`` with a MockPower, registered at the test controller: (name, labels, service)."""
    labels = {"board": "upstream-mock", "site": "here"}
    name, token = new_exporter(controller, labels, "upstream")
    config = exporter_config(
        controller, tmp_path_factory.mktemp("exporter") / f"{name}.yaml", name, token, MOCK_POWER
    )
    service = services(
        [str(peer / "bin/jmp"), "run", "--exporter-config", str(config)], name, clean_env(peer)
    )
    exporter = controller.exporter(name)
    service.wait_for(
        lambda: bool(exporter.devices) and exporter.online, f"upstream exporter {name} registered"
    )
    yield name, labels, service
    service.stop()  # while the controller is up: upstream's exporter retries unregistering for long


def jmp_shell(peer, config, selector: str, *command: str) -> subprocess.CompletedProcess:
    argv = [str(peer / "bin/jmp"), "--log-level", "WARNING", "shell", "--client-config", str(config)]
    return subprocess.run(
        [*argv, "--selector", selector, "--", *command],
        input=b"",
        capture_output=True,
        env=clean_env(peer),
        timeout=120,
    )


def test_upstream_jmp_leases_an_upstream_exporter_through_the_test_controller(
    controller, peer, upstream_board, tmp_path
):
    name, _, _ = upstream_board
    client, token = new_client(controller)
    config = client_config(controller, tmp_path / "client.yaml", client, token)
    done = jmp_shell(peer, config, "board=upstream-mock,site=here", "j", "power", "on")
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    leases = controller.leases_of(client)
    assert len(leases) == 1 and leases[0].exporter == name
    # jmp released the lease on exit; the exporter is free again
    assert leases[0].conditions["Ready"].reason == "Released"
    assert controller.state.dials >= 1
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free again")


def test_upstream_jmp_gets_unsatisfiable_for_a_selector_nothing_matches(
    controller, peer, upstream_board, tmp_path
):
    client, token = new_client(controller)
    config = client_config(controller, tmp_path / "client.yaml", client, token)
    done = jmp_shell(peer, config, "board=no-such-board", "true")
    assert done.returncode != 0
    assert "cannot be satisfied" in done.stderr.decode(), done.stderr.decode()[-3000:]


def test_our_client_leases_an_upstream_exporter_through_the_router(
    controller, upstream_board, tmp_path, monkeypatch
):
    import jumpstarter_jupyter as jj

    name, _, _ = upstream_board
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free")
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    with jj.connect(controller="lab", selector="board=upstream-mock", duration=600) as dut:
        assert dut.connection.board == name
        dut.power.on()
        dut.power.off()
        lease = controller.leases_of(client)[0]
        assert lease.exporter == name and lease.is_true("Ready")
    assert lease.conditions["Ready"].reason == "Released"  # deleted at close
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free again")


def test_a_busy_exporter_makes_our_client_wait_and_says_why(
    controller, upstream_board, tmp_path, monkeypatch
):
    import jumpstarter_jupyter as jj

    name, _, _ = upstream_board
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free")
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    for alias in ("first", "second"):
        client, token = new_client(controller, alias)
        client_config(controller, tmp_path / "clients" / f"{alias}.yaml", client, token)
    reasons: list[str] = []
    second: list = []
    with jj.connect(controller="first", selector="board=upstream-mock") as first:
        waiter = threading.Thread(
            target=lambda: second.append(
                jj.connect(
                    controller="second", selector="board=upstream-mock", on_wait=reasons.append, wait=60
                )
            )
        )
        waiter.start()
        wait_for(lambda: reasons, what="the second client is told why it waits")
        assert reasons[0].startswith("NotAvailable"), reasons
        first.power.on()
    waiter.join(timeout=60)  # the first lease deleted at close: the second gets the exporter
    (dut,) = second
    with dut:
        assert dut.connection.board == name
        dut.power.off()


def test_a_cut_router_stream_is_redialled_under_the_same_lease(
    controller, upstream_board, tmp_path, monkeypatch
):
    import jumpstarter_jupyter as jj

    name, _, _ = upstream_board
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free")
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    with jj.connect(controller="lab", selector="board=upstream-mock") as dut:
        dut.power.on()
        lease = dut.connection.controller_lease
        dials = lease.dials
        assert controller.cut_router_streams(lease.name) >= 1
        try:  # the call may meet the cut connection: then it fails as a lost connection does
            dut.power.off()
        except jj.ConnectionFailed as failed:
            assert "power.off" in str(failed)
        dut.power.on()  # works again: a new router stream under the same lease
        assert lease.dials > dials
        assert len(controller.leases_of(client)) == 1


EXIT_SCRIPT = """
import jumpstarter_jupyter as jj
dut = jj.connect(controller="lab", selector="board=upstream-mock")
dut.power.on()
print("leased", dut.connection.controller_lease.name, flush=True)
"""


def test_process_exit_deletes_the_lease(controller, upstream_board, tmp_path):
    name, _, _ = upstream_board
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free")
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT],
        env={**clean_env(), "JMP_CLIENT_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "leased" in done.stdout, done.stderr[-3000:]
    (lease,) = controller.leases_of(client)
    assert lease.conditions["Ready"].reason == "Released"  # by the exit handler, not by expiry
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free again")


def test_an_expired_lease_fails_calls_and_says_so(controller, upstream_board, tmp_path, monkeypatch):
    import jumpstarter_jupyter as jj

    name, _, _ = upstream_board
    wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is free")
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    with jj.connect(controller="lab", selector="board=upstream-mock", duration=2) as dut:
        dut.power.on()
        (lease,) = controller.leases_of(client)
        wait_for(lambda: lease.ended, what="the lease expires")
        assert lease.conditions["Ready"].reason == "Expired"
        wait_for(lambda: controller.exporter(name).lease is None, what="the exporter is freed")
        failures = []

        def failed() -> bool:  # upstream's exporter may serve a call or two before it ends the stream
            try:
                dut.power.on()
            except jj.ConnectionFailed as failure:
                failures.append(str(failure))
            return bool(failures)

        wait_for(failed, what="a call to fail")
    # not "call cancelled (CANCELLED)": the lease that ended, why, and how to get another
    assert failures[0].startswith(f"dut.power.on: the controller lease {lease.id} of {name} ended (Expired)")
    assert "jj.connect(controller='lab', selector='board=upstream-mock')" in failures[0], failures
