"""A controller's lease in a real kernel: ``%jmp connect --controller`` shows the lease as a widget
from its first wait on (the Pending reason as the controller changes it, then the Client object, the
exporter and the time left); the panel's lease bar shows the same; ``%jmp lease`` reads it from the
controller; ``%jmp release`` deletes it, and the next call says the lease ended. Our exporter (its
own process) is joined to the session's test controller (tests/controller)."""

from __future__ import annotations

import time

import pytest
from kernels import WAIT_UNTIL, jupyter_env, start_kernel  # noqa: F401  (fixtures)

from controller import client_config, joined_exporter, new_client
from jumpstarter_jupyter.client.controller import ControllerLease, load_client_config
from support import wait_for

pytestmark = pytest.mark.notebook

SELECTOR = "board=bar-ui"
DEADLINE = 60.0


@pytest.fixture(scope="module")
def board(controller, tmp_path_factory):
    with joined_exporter(
        controller,
        tmp_path_factory.mktemp("joined"),
        {"board": "bar-ui"},
        {"power": {"type": "MockPower"}},
        lease={"required": True},
    ) as name:
        yield name


def controller_states(messages: list[dict]) -> list[dict]:
    """The ``controller`` trait's values, in the order the kernel sent them to the front end."""
    states = []
    for msg in messages:
        data = msg["content"].get("data", {})
        state = (
            data.get("state", {}) if msg["msg_type"] == "comm_open" or data.get("method") == "update" else {}
        )
        if state.get("controller"):
            states.append(state["controller"])
    return states


def test_a_controller_lease_shows_its_wait_holder_exporter_and_end_live(
    controller, board, start_kernel, tmp_path, monkeypatch
):
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    other, other_token = new_client(controller, "other")
    client_config(controller, tmp_path / "clients" / "other.yaml", other, other_token)
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    holder = ControllerLease(load_client_config("other"), SELECTOR, 600)
    holder.acquire(DEADLINE)  # the board is taken: the kernel's lease waits, NotAvailable
    kernel = start_kernel(JMP_CLIENT_CONFIG_HOME=str(tmp_path), JUPYTER_CONFIG_PATH=str(tmp_path / "none"))
    kernel.ok("%load_ext jumpstarter")

    cell = kernel.start(f"%jmp connect --controller lab --selector {SELECTOR} --duration 20m")
    messages: list[dict] = []
    deadline = time.monotonic() + DEADLINE
    while not any(s["reason"] == "NotAvailable" for s in controller_states(messages)):
        assert time.monotonic() < deadline, f"no NotAvailable shown: {controller_states(messages)}"
        messages.append(kernel.client.get_iopub_msg(timeout=DEADLINE))
    holder.release()  # now the kernel's lease is granted, and the same widget says so
    assert kernel.finish(cell) == "ok"
    while not any(s["state"] == "ready" for s in controller_states(messages)):
        assert time.monotonic() < deadline, f"no ready shown: {controller_states(messages)}"
        messages.append(kernel.client.get_iopub_msg(timeout=DEADLINE))
    states = controller_states(messages)
    (lease,) = controller.leases_of(client)
    assert states[0]["state"] == "pending" and states[0]["name"] == ""  # shown before the controller answered
    shown = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "display_data"]
    expected = f"controller lab ({controller.endpoint}): waiting for an exporter matching {SELECTOR}"
    assert shown[0] == expected, shown  # its text where no widget loads (nbconvert, GitHub)
    waiting = next(s for s in states if s["reason"] == "NotAvailable")
    assert waiting["state"] == "pending" and "none is free" in waiting["message"]
    ready = next(s for s in states if s["state"] == "ready")
    assert (ready["name"], ready["holder"], ready["exporter"]) == (lease.id, client, board)
    assert 19 * 60 < ready["remaining"] <= 20 * 60 and ready["end"] > time.time() + 19 * 60

    # the panel's lease bar: the controller's lease, not the exporter's view of it
    shown = kernel.ok(
        WAIT_UNTIL + "from jumpstarter_jupyter.jupyter.lease import LeaseWidget\n"
        "bar = LeaseWidget.for_client(dut)\n"
        "wait_until(lambda: bar.controller.get('state') == 'ready', what='the bar to show the lease')\n"
        "print(bar.summary)\n"
        "dut.power.on()"
    ).text
    assert (
        f"lease {lease.id} at controller lab (127.0.0.1:" in shown
        and f"client {client} holds {board}" in shown
    )
    said = kernel.ok("%jmp lease").text
    assert f"dut: controller lease {lease.id} at controller lab (" in said, said
    assert f"client {client} holds {board}, 1" in said and "min left" in said, said
    assert "its length is set when it is taken" in kernel.run("%jmp lease --extend 1h").text
    status = kernel.ok("%jmp status").text
    assert (
        f"dut: {board} (leased from controller lab (" in status
        and f"controller lease {lease.id} at" in status
    )

    released = kernel.ok("%jmp release").text
    assert (
        f"the controller lease {lease.id} of {board} is released" in released
        and "the board is free" in released
    )
    assert lease.conditions["Ready"].reason == "Released"
    kernel.ok("wait_until(lambda: bar.controller.get('state') == 'ended', what='the bar to show the end')")
    assert "ended (Released)" in kernel.ok("print(bar.summary)").text
    refused = kernel.run("dut.power.on()").text
    assert f"the controller lease {lease.id} of {board} ended (Released)" in refused, refused
    wait_for(lambda: controller.exporter(board).lease is None, what=f"{board} free again")
