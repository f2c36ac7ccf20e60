"""Leases through the test controller and router (tests/controller), with upstream 0.9.0 on both
ends first: this is what shows the test controller speaks upstream's protocol as upstream's own
exporter and ``jmp`` expect. Then our client leases the same upstream exporter."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
from interop import Service, clean_env

from controller import client_config, exporter_config, new_client, new_exporter

MOCK_POWER = {"power": {"type": "jumpstarter_driver_power.driver.MockPower"}}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


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
    wait_until(lambda: controller.exporter(name).lease is None, "the exporter is free again")


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
    wait_until(lambda: controller.exporter(name).lease is None, "the exporter is free")
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
    wait_until(lambda: controller.exporter(name).lease is None, "the exporter is free again")
