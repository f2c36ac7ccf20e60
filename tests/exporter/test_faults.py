"""An exporter SIGKILLed in the middle of things: its clients raise ConnectionFailed (never
hang), and the same client objects work again once an exporter is back on the address."""

from __future__ import annotations

import os
import threading

import pytest
from support import start_exporter

from jumpstarter_jupyter import ConnectionFailed, connect

DEADLINE = 60


@pytest.fixture
def board(tmp_path):
    """``(start, address)``: ``start()`` (re)starts the virtual board on one unix socket."""
    socket_path = tmp_path / "board.sock"
    running = []

    def start():
        running.append(start_exporter("demo", "--socket", socket_path))
        return running[-1]

    yield start, f"unix:{socket_path}"
    for process in running:
        if process.poll() is None:
            process.kill()
        process.wait()


def _killed_during(work, exporter) -> BaseException:
    """Run ``work()`` in a thread, SIGKILL the exporter once it is under way; what ``work`` raised."""
    outcome: list[BaseException] = []
    started = threading.Event()

    def run():
        try:
            work(started)
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert started.wait(DEADLINE)
    exporter.kill()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the client hung after its exporter died"
    assert outcome, "the call ended without an error although its exporter died"
    return outcome[0]


def test_killed_mid_call_mid_stream_and_mid_flash_raise_and_the_clients_work_again(board, tmp_path):
    start, address = board
    exporter = start()
    image = tmp_path / "image.img"
    image.write_bytes(os.urandom(64 << 20))
    with connect(address) as dut:

        def wait_forever(started):
            started.set()
            dut.led.wait_for_active(None)

        def watch_power(started):
            for _ in dut.power.watch(0.05):
                started.set()

        def flash(started):
            dut.storage.flash(str(image), progress=lambda sent, total: sent > (8 << 20) and started.set())

        for work in (wait_forever, watch_power, flash):
            failure = _killed_during(work, exporter)
            assert isinstance(failure, ConnectionFailed), f"{work.__name__}: {failure!r}"
            exporter.wait()
            exporter = start()
            dut.power.on()  # the same client, the next exporter
            assert dut.power.state() is True
            dut.power.off()
        dut.storage.flash(str(image))  # a whole flash through the last exporter
