"""Sharing a board between notebooks: two real kernels on one exporter with leases required.

Kernel A holds the board, kernel B watches it. What B's widgets show and do comes from the
exporter's lease status, so the checks read the widgets' synced state inside each kernel, and
clicks arrive as the comm messages a browser sends.
"""

from __future__ import annotations

import json

from kernels import WAIT_UNTIL, jupyter_env, leased_board, start_kernel  # noqa: F401 (fixtures)

import jumpstarter_jupyter as jj
from support import start_exporter, wait_for

DEADLINE = 60
WIDGETS = """
from jumpstarter_jupyter.drivers.power.widget import PowerWidget
from jumpstarter_jupyter.jupyter.lease import LeaseWidget
power, bar = PowerWidget.for_client(dut.power), LeaseWidget.for_client(dut)
"""


def model_id(kernel, name: str) -> str:
    return kernel.ok(f"print({name}.model_id)").text.strip()


def test_a_holder_and_a_watcher_in_two_kernels(start_kernel, leased_board):
    endpoint, log = leased_board
    a, b = start_kernel(), start_kernel()
    for kernel in (a, b):
        kernel.ok("%load_ext jumpstarter\n" + WAIT_UNTIL)
    a.ok(f"%jmp connect {endpoint} --purpose bring-up;\n{WIDGETS}")
    # asking while A holds: the place in line shows while waiting, then a clear timeout
    waited = b.run(f"%jmp connect {endpoint} --wait 1s")
    assert waited.status == "error"
    assert "waiting for the board's lease: number 1 in line" in waited.text
    assert "no lease on" in waited.text and "within 1 s, still number 1 in line" in waited.text
    b.ok(f"%jmp connect {endpoint} --watch;\n{WIDGETS}")

    # B's scripted control call: the exporter's named error, also a PermissionError
    refused = b.run("dut.power.off()")
    assert refused.status == "error" and "LeaseRequired" in refused.text and "bring-up" in refused.text
    assert (
        "PermissionError"
        in b.ok("from jumpstarter_jupyter import LeaseRequired; print(LeaseRequired.__mro__)").text
    )

    # B's panel: controls locked naming the holder, the bar shows the holder
    b.ok(
        "wait_until(lambda: power.locked.startswith('held by') and 'bring-up' in power.locked, 60, 'B locked')"
    )
    state = json.loads(
        b.ok(
            "import json; print(json.dumps(dict(holder=bar.holder, purpose=bar.purpose, "
            "mine=bar.mine, locked=power.locked, remaining=bar.remaining)))"
        ).text
    )
    assert state["purpose"] == "bring-up" and not state["mine"] and 0 < state["remaining"] <= 3600
    assert state["locked"] == f"held by {state['holder']} (bring-up)"
    a.ok("wait_until(lambda: bar.mine and not power.locked, 60, 'A to see itself holding')")

    # a click on B's power widget: refused by the exporter, shown in the widget
    b.send_to_widget(model_id(b, "power"), {"action": "off", "args": []})
    b.ok(
        "wait_until(lambda: power.error.startswith('off:') and 'held by' in power.error, 60, 'the refusal shown')"
    )

    # B asks for the board: A's bar shows who asks
    b.send_to_widget(model_id(b, "bar"), {"action": "request_handover", "args": []})
    a.ok(
        "wait_until(lambda: bar.notices and 'asks for the board' in bar.notices[-1]['text'], 60,"
        " 'the hand-over notice')"
    )

    # A releases; B takes the lease from its bar, without reconnecting
    assert "lease released" in a.ok("%jmp release").text
    b.ok("wait_until(lambda: not bar.holder, 60, 'B to see the board free')")
    b.send_to_widget(model_id(b, "bar"), {"action": "take", "args": []})
    b.ok("wait_until(lambda: bar.mine and not power.locked, 60, 'B to hold the board')")
    b.ok("dut.power.off()")
    a.ok("wait_until(lambda: power.locked.startswith('held by'), 60, 'A locked now')")
    assert "you hold the board" in b.ok("%jmp lease").text

    # B's kernel shut down: the lease is given back on the way out
    b.shutdown()
    watcher = jj.connect(endpoint, lease=False)
    wait_for(
        lambda: not watcher.connection.lease_status().HasField("lease"), DEADLINE, "the board to be free"
    )
    watcher.close()
    assert log.read_text().count("released by its holder") == 2  # A's %jmp release, then B's exit


WARNED_BOARD = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: MockPower
lease:
  required: true
  warning: 60s
"""


def test_the_expiry_warning_shows_in_the_bar_and_extending_clears_it(start_kernel, tmp_path):
    config, socket = tmp_path / "board.yaml", tmp_path / "board.sock"
    config.write_text(WARNED_BOARD)
    process = start_exporter("run", config, "--socket", socket)
    try:
        kernel = start_kernel()
        kernel.ok(
            f"%load_ext jumpstarter\n{WAIT_UNTIL}\n%jmp connect unix:{socket} --duration 30s --purpose short;\n"
            "from jumpstarter_jupyter.jupyter.lease import LeaseWidget\nbar = LeaseWidget.for_client(dut)"
        )
        # 30 s is inside the 60 s warning period: the exporter warns at once
        kernel.ok(
            "wait_until(lambda: bar.warning.startswith('the lease expires in'), 60, 'the warning in the bar')"
        )
        assert "you hold the board (short)" in kernel.ok("%jmp lease --extend 2h").text
        kernel.ok(
            "wait_until(lambda: bar.warning == '' and bar.remaining > 3600, 60, 'the warning to clear')"
        )
        assert "expected a duration" in kernel.run("%jmp lease --extend soon").text
    finally:
        process.terminate()
        process.wait(DEADLINE)
