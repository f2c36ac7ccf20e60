"""An exporter SIGKILLed in the middle of things: its clients raise ConnectionFailed (never
hang), and the same client objects work again once an exporter is back on the address."""

from __future__ import annotations

import os
import socket
import threading

import pytest

from jumpstarter_jupyter import ConnectionFailed, DriverTimeout, connect
from jumpstarter_jupyter.driver import Driver, exportstream
from support import client_for, start_exporter, wait_for

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


class _Sink:
    """A TCP service that reads and counts everything: the far end of the network driver."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(1 << 20):
                self.received += len(data)


@pytest.fixture
def streams_board(tmp_path):
    """``(start, address, sink)``: an exporter with a serial loop and a network driver to ``sink``."""
    sink = _Sink()
    config, socket_path = tmp_path / "streams.yaml", tmp_path / "streams.sock"
    config.write_text(f"""\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  serial: {{type: PySerial, config: {{url: "loop://"}}}}
  network: {{type: TcpNetwork, config: {{host: 127.0.0.1, port: {sink.port}}}}}
""")
    running = []

    def start():
        running.append(start_exporter("run", config, "--socket", socket_path))
        return running[-1]

    yield start, f"unix:{socket_path}", sink
    sink.listener.close()
    for process in running:
        process.kill()
        process.wait()


def test_byte_stream_writes_lost_with_a_killed_exporter_raise_naming_the_driver(streams_board):
    """SIGKILL the exporter, then write and flush at once: no byte-stream write vanishes silently."""
    start, address, sink = streams_board
    exporter = start()
    with connect(address) as dut:
        streams = {name: dut[name].stream() for name in ("serial", "network")}
        for stream in streams.values():
            stream.send(b"first\n")
            stream.flush()  # acknowledged: the driver took it
        assert streams["serial"].receive() == b"first\n"  # loop:// echoes
        wait_for(lambda: sink.received == len(b"first\n"), what="the sink to get the first line")
        exporter.kill()
        exporter.wait()
        for name, stream in streams.items():
            with pytest.raises(ConnectionFailed, match=rf"dut\.{name}\.connect: .*(not delivered|not sent)"):
                for line in (b"one\n", b"two\n", b"three\n"):
                    stream.send(line)
                stream.flush()
            stream.close()  # the loss was reported once: closing says nothing more
        exporter = start()
        with dut.network.stream() as stream:  # the same client, the next exporter
            stream.send(b"after the restart\n")
            stream.flush()
        # flush() means the driver took the bytes (into its socket): the sink reads them soon after
        wait_for(
            lambda: sink.received == len(b"first\nafter the restart\n"),
            what="the sink to get the second line",
        )


def test_a_forward_killed_mid_flood_resets_its_connection_and_raises_naming_the_driver(streams_board):
    """The exporter dies while a local program floods a forwarded connection: the program sees a
    reset (not a clean end) and leaving ``forward()`` raises, naming the driver and the loss."""
    start, address, _ = streams_board
    exporter = start()
    with connect(address) as dut:
        with pytest.raises(
            ConnectionFailed,
            match=r"dut\.network\.forward: dut\.network\.connect: "
            r"(\d+ bytes written were not delivered|the stream broke)",
        ):
            with dut.network.forward() as forwarded:
                host, port = forwarded.rsplit(":", 1)
                local = socket.create_connection((host, int(port)), timeout=DEADLINE)
                local.sendall(b"x" * (8 << 20))  # under way through the stream
                exporter.kill()
                with pytest.raises((ConnectionResetError, BrokenPipeError)):  # a reset, not a timeout
                    while True:
                        local.sendall(b"x" * (1 << 20))
                local.close()


class _GatedStream:
    """A device that takes bytes only while ``gate`` is open and refuses them after ``refuse``."""

    def __init__(self):
        self.gate, self.taken, self.refusing = threading.Event(), bytearray(), False
        self._ended = threading.Event()

    def send(self, data: bytes) -> None:
        self.gate.wait()
        if self.refusing:
            raise OSError("the device went away")
        self.taken += data

    def receive(self) -> bytes:
        self._ended.wait()
        return b""

    def send_eof(self) -> None:
        pass

    def close(self) -> None:
        self.gate.set()
        self._ended.set()


class Gated(Driver):
    """A driver whose byte stream is a :class:`_GatedStream` the test controls."""

    def __init__(self):
        super().__init__()
        self.device = _GatedStream()

    @exportstream
    def connect(self) -> _GatedStream:
        return self.device


def test_flush_returns_only_once_the_driver_took_every_byte_and_a_refusing_driver_raises():
    driver = Gated()
    with client_for(driver, "gated") as gated, gated.stream() as stream:
        for part in (b"one ", b"two ", b"three"):
            stream.send(part)  # pipelined: returns although the driver takes nothing yet
        with pytest.raises(
            DriverTimeout,
            match=r"dut\.gated\.connect\.flush: 13 bytes not taken by the driver "
            r"within 0\.2 s",
        ):
            stream.flush(timeout=0.2)
        driver.device.gate.set()
        stream.flush()
        assert driver.device.taken == b"one two three"
        driver.device.refusing = True
        stream.send(b"four")
        with pytest.raises(
            ConnectionFailed,
            match=r"dut\.gated\.connect: 4 bytes written were not delivered: "
            r"the driver took no more bytes: the device went away",
        ):
            stream.flush()
        with pytest.raises(
            ConnectionFailed, match=r"dut\.gated\.connect: the stream broke .*; 4 bytes not sent"
        ):
            stream.send(b"five")
