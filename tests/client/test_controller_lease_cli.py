"""A controller's lease day to day, from the command line and a script: ``j --controller`` takes a
lease for one command (its wait on stderr) and releases it; the ``lease`` commands on a pool board
a controller leases; the first call after the lease expired says so. Our exporter (its own process)
is joined to the session's test controller (tests/controller)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

import jumpstarter_jupyter as jj
from controller import client_config, joined_exporter, new_client
from jumpstarter_jupyter.cli import main
from jumpstarter_jupyter.client.controller import ControllerLease, load_client_config
from support import wait_for

SELECTOR = "board=cli-ui"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def board(controller, tmp_path_factory):
    """Our exporter with a power driver, leasable from the controller by ``SELECTOR``: its name.
    Its leases are required: a call after the controller's lease ended is refused at once."""
    with joined_exporter(
        controller,
        tmp_path_factory.mktemp("joined"),
        {"board": "cli-ui"},
        {"power": {"type": "MockPower"}},
        lease={"required": True},
    ) as name:
        yield name


@pytest.fixture
def lab(controller, board, tmp_path, monkeypatch):
    """A fresh Client object as client config ``lab`` and a pool board ``lab-board`` leased through it:
    (client name, environment for a subprocess)."""
    name, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", name, token)
    (tmp_path / "jumpstarter-pool.yaml").write_text(
        f"exporters:\n  lab-board: {{controller: lab, selector: '{SELECTOR}'}}\n"
    )
    env = {
        "JMP_CLIENT_CONFIG_HOME": str(tmp_path),
        "JUPYTER_CONFIG_DIR": str(tmp_path),
        "JUPYTER_CONFIG_PATH": str(tmp_path / "none"),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("JUMPSTARTER_HOST", raising=False)
    wait_for(lambda: controller.exporter(board).lease is None, what=f"{board} free")
    return name, {**os.environ, **env}


def other_lease(controller, tmp_path) -> ControllerLease:
    """The board held by another Client object (config ``other``), so that ours waits."""
    name, token = new_client(controller, "other")
    client_config(controller, tmp_path / "clients" / "other.yaml", name, token)
    lease = ControllerLease(load_client_config("other"), SELECTOR, 600)
    lease.acquire(DEADLINE)
    return lease


def read_until(stream, text: str, timeout: float = DEADLINE) -> str:
    """Lines of a subprocess's pipe until one holds ``text`` (all of them, joined); fails after ``timeout``."""
    seen, deadline = [], time.monotonic() + timeout
    while not any(text in line for line in seen):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        line = stream.readline() if ready else ""
        if not line:
            raise AssertionError(f"no {text!r} within {timeout} s; saw: {''.join(seen)}")
        seen.append(line)
    return "".join(seen)


def test_j_with_a_controller_waits_on_stderr_runs_the_command_and_releases(controller, board, lab, tmp_path):
    client, env = lab
    holder = other_lease(controller, tmp_path)
    j = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", "j", "--controller", "lab", "--selector", SELECTOR]
        + ["--duration", "5m", "power", "on"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        waited = read_until(j.stderr, "NotAvailable")
        assert f"waiting for an exporter matching {SELECTOR} at controller lab: NotAvailable" in waited
        holder.release()  # the board is free: j gets it
        _, rest = j.communicate(timeout=DEADLINE)
    finally:
        j.kill()
    assert j.returncode == 0, waited + rest
    (lease,) = controller.leases_of(client)
    assert f"leased {board} from controller lab (" in rest and f"(lease {lease.id})" in rest, rest
    assert f"released the controller lease {lease.id}" in rest, rest
    assert lease.conditions["Ready"].reason == "Released" and lease.duration.total_seconds() == 300
    by_name = CliRunner().invoke(main, ["j", "--endpoint", "lab-board", "power", "on"])  # the pool board
    assert by_name.exit_code == 0 and f"leased {board} from controller lab" in by_name.output, by_name.output
    assert len(controller.leases_of(client)) == 2 and all(each.ended for each in controller.leases_of(client))
    bad = CliRunner().invoke(main, ["j", "--controller", "lab", "power", "on"])
    assert bad.exit_code == 2 and "--controller NAME and --selector S go together" in bad.output


def test_lease_commands_on_a_pool_board_a_controller_leases(controller, board, lab):
    client, env = lab
    acquire = subprocess.Popen(
        [sys.executable, "-m", "jumpstarter_jupyter", "lease", "acquire", "--endpoint", "lab-board"]
        + ["--duration", "10m", "--print-token"],
        env=env,
        stdin=subprocess.PIPE,  # held open: `lease acquire` ends when its standard input closes
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lease_id = read_until(acquire.stdout, "\n").strip()
        (lease,) = controller.leases_of(client)
        assert lease.id == lease_id and lease.exporter == board
        status = CliRunner().invoke(main, ["lease", "status", "--endpoint", "lab-board"])
        assert status.exit_code == 0, status.output
        assert f"lab-board: any exporter matching {SELECTOR} at controller lab (" in status.output
        assert f"  {lease_id}  {SELECTOR}  {board}, " in status.output and " left" in status.output, (
            status.output
        )
        acquire.send_signal(signal.SIGTERM)
        _, said = acquire.communicate(timeout=DEADLINE)
    finally:
        acquire.kill()
    assert f"controller lease {lease_id} of {board} held by client {client} for 10 min" in said, said
    assert (
        f"released the controller lease {lease_id}" in said and lease.conditions["Ready"].reason == "Released"
    )
    assert (
        f"client default/{client} holds no lease there"
        in CliRunner().invoke(main, ["lease", "status", "--endpoint", "lab-board"]).output
    )

    held = ControllerLease(load_client_config("lab"), SELECTOR, 600)
    held.acquire(DEADLINE)
    released = CliRunner().invoke(main, ["lease", "release", "--endpoint", "lab-board", "--token", held.id])
    assert released.exit_code == 0 and f"released the controller lease {held.id}" in released.output
    assert controller.lease(held.name).conditions["Ready"].reason == "Released"
    held.release()
    forced = CliRunner().invoke(
        main, ["lease", "force-release", "--endpoint", "lab-board", "--admin-passphrase-file", __file__]
    )
    assert forced.exit_code == 1 and "only its admin ends other clients' leases there" in forced.output


def test_the_first_call_after_the_lease_expired_says_it_ended_and_how_to_get_another(controller, board, lab):
    client, _ = lab
    with jj.connect(controller="lab", selector=SELECTOR, duration=2) as dut:
        dut.power.on()
        (lease,) = controller.leases_of(client)
        wait_for(lambda: lease.ended, what="the lease to expire")

        def failure() -> str | None:
            try:
                dut.power.on()
            except jj.ConnectionFailed as failed:
                return str(failed)
            return None  # the exporter has not heard of the end yet

        message = wait_for(failure, what="a call to fail")
    assert message.startswith(f"dut.power.on: the controller lease {lease.id} of {board} ended (Expired)"), (
        message
    )
    assert f"jj.connect(controller='lab', selector='{SELECTOR}')" in message, message
    assert f"%jmp connect --controller lab --selector {SELECTOR}" in message
