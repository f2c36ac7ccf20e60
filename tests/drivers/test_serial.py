"""Serial console: PySerial on real ptys through pyserial, the ring, fan-out, expect, the CLI."""

from __future__ import annotations

import _thread
import os
import select
import subprocess
import sys
import tempfile
import threading
import time

import pexpect
import pexpect.fdpexpect
import pytest

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.serial.common import ExpectTimeout
from jumpstarter_jupyter.drivers.serial.console import Console
from jumpstarter_jupyter.drivers.serial.driver import PySerial
from support import cli_argv, client_for, serving, sigint_raises_keyboard_interrupt

DEADLINE = 20.0


def wait_until(condition, what: str, timeout: float = DEADLINE) -> None:
    """Wait for ``condition()`` on a deadline, woken by nothing but re-checks of real state."""
    deadline = time.monotonic() + timeout
    event = threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        event.wait(0.02)


class Pty:
    """A real pty pair; the test plays the board on the master side."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self.name = os.ttyname(self.slave)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def read_until(self, expected: bytes) -> bytes:
        """Read what the port sent to the board until ``expected`` arrives (with a deadline)."""
        got = b""
        deadline = time.monotonic() + DEADLINE
        while expected not in got:
            ready, _, _ = select.select([self.master], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise AssertionError(f"the board never received {expected!r}; got {got!r}")
            got += os.read(self.master, 4096)
        return got

    def close(self) -> None:
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def pty():
    pair = Pty()
    yield pair
    pair.close()


def test_pty_bytes_reach_the_client_and_keys_reach_the_port(pty):
    with client_for(PySerial(url=pty.name), "serial") as serial:
        pty.write(b"U-Boot 2024.01\r\nlogin: ")
        assert serial.expect(r"login: ", timeout=DEADLINE) == 0
        assert "U-Boot 2024.01" in serial.before
        serial.sendline("root")
        assert pty.read_until(b"root\n").endswith(b"root\n")


def test_late_attach_replays_the_boot_log(pty):
    driver = PySerial(url=pty.name)
    with serving(_root(driver)) as exporter:
        with connect(exporter.address) as first:
            pty.write(b"[    0.000000] Linux version 6.6\r\nboot done\r\n")
            first.serial.expect("boot done", timeout=DEADLINE)
        with connect(exporter.address) as late:
            assert late.serial.log().startswith("[    0.000000] Linux version 6.6\r\nboot done\r\n")
            pty.write(b"login: ")  # the late client's expect sees output from its attach on
            late.serial.expect("login: ", timeout=DEADLINE)
            assert "boot done" not in late.serial.before


def test_two_concurrent_readers_each_get_every_byte_in_order(pty):
    lines = b"".join(b"line %05d\r\n" % i for i in range(3000))
    driver = PySerial(url=pty.name)
    with serving(_root(driver)) as exporter, connect(exporter.address) as a, connect(exporter.address) as b:
        received = {"a": bytearray(), "b": bytearray()}
        a.serial.subscribe(lambda chunk: received["a"].extend(chunk.data))
        b.serial.subscribe(lambda chunk: received["b"].extend(chunk.data))
        writer = threading.Thread(target=_write_all, args=(pty.master, lines))
        writer.start()
        writer.join(DEADLINE)
        wait_until(
            lambda: len(received["a"]) >= len(lines) and len(received["b"]) >= len(lines), "both readers"
        )
        assert bytes(received["a"]) == lines
        assert bytes(received["b"]) == lines


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view[:4096]) :]


def test_slow_reader_gets_an_explicit_dropped_marker():
    console = Console(capacity=1000)
    reader = console.reader()
    for i in range(100):
        console.append(b"%04d" % i * 10)  # 40 bytes each: 4000 in all, four times the ring
    chunks = []
    while (chunk := reader.read(0)) is not None:
        chunks.append(chunk)
    assert chunks[0].dropped > 0
    assert sum(c.dropped for c in chunks) + sum(len(c.data) for c in chunks) == 4000
    assert (
        b"".join(c.data for c in chunks)
        == b"".join(b"%04d" % i * 10 for i in range(100))[chunks[0].dropped :]
    )


def test_client_behind_the_ring_sees_the_marker_in_band():
    driver = PySerial(url="loop://", scrollback=1000)
    with client_for(driver, "serial") as serial:  # this client's console starts at offset 0
        driver.write(b"x" * 5000)  # more than the ring keeps, before the client reads a byte
        driver.write(b"tail\r\n")
        serial.expect(r"\[jumpstarter\] (\d+) bytes dropped", timeout=DEADLINE)
        dropped = int(serial.match.group(1))
        serial.expect("tail", timeout=DEADLINE)
        assert dropped + serial.before.count("x") == 5000


def test_vanished_pty_is_reported_and_reopened():
    with tempfile.TemporaryDirectory() as directory:
        link = os.path.join(directory, "ttyV0")
        first = Pty()
        os.symlink(first.name, link)
        driver = PySerial(url=link, reopen_interval=0.05)
        with client_for(driver, "serial") as serial:
            first.write(b"before\r\n")
            serial.expect("before", timeout=DEADLINE)
            os.unlink(link)
            first.close()  # the adapter vanishes
            serial.expect(r"\[jumpstarter\] port gone, reattaching", timeout=DEADLINE)
            second = Pty()
            try:
                os.symlink(second.name, link)  # ... and comes back
                serial.expect(r"\[jumpstarter\] port reopened", timeout=DEADLINE)
                second.write(b"after\r\n")
                serial.expect("after", timeout=DEADLINE)
                serial.sendline("typed")
                second.read_until(b"typed\n")
                assert "port gone, reattaching" in serial.log()
            finally:
                second.close()


class _Flood:
    """The board floods its console with numbered lines until its pty goes away under it."""

    def __init__(self, pty: Pty, prefix: str):
        self.pty, self.prefix, self.written = pty, prefix, 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                os.write(self.pty.master, f"{self.prefix}{self.written:07d}\r\n".encode())
                self.written += 1
        except OSError:
            pass  # the pty was closed: the adapter vanished


def _lines(data: bytes, prefix: str) -> list[int]:
    """The numbers of the whole lines in ``data`` (the port may vanish in the middle of one)."""
    whole = data.decode().split("\r\n")[:-1]
    return [int(line[len(prefix) :]) for line in whole if line.startswith(prefix)]


def test_a_pty_vanishing_during_a_flood_loses_nothing_delivered_and_the_console_resumes():
    """The port vanishes while the board floods it and comes back: every byte the exporter read
    reaches the client in order, one "port gone" marker marks the gap, the console resumes."""
    with tempfile.TemporaryDirectory() as directory:
        link = os.path.join(directory, "ttyV0")
        first = Pty()
        os.symlink(first.name, link)
        driver = PySerial(url=link, reopen_interval=0.05, scrollback=64 << 20)  # the ring never drops here
        chunks = []
        with client_for(driver, "serial") as serial:
            serial.subscribe(chunks.append)
            flood = _Flood(first, "before-")
            serial.expect("before-0020000", timeout=DEADLINE)  # well into the flood
            os.unlink(link)
            first.close()  # the adapter vanishes mid-flood
            flood.thread.join(DEADLINE)
            serial.expect(r"\[jumpstarter\] port gone, reattaching", timeout=DEADLINE)
            second = Pty()
            try:
                os.symlink(second.name, link)  # ... and comes back
                serial.expect(r"\[jumpstarter\] port reopened", timeout=DEADLINE)
                _Flood(second, "after-")
                serial.expect("after-0010000", timeout=DEADLINE)  # the console resumed by itself
                events = [chunk.event for chunk in list(chunks) if chunk.event]
            finally:
                second.close()  # also ends the second flood
            assert events == ["port gone, reattaching", "port reopened"]  # one gap, one marker
            gone = next(i for i, chunk in enumerate(chunks) if chunk.event)
            seen = b"".join(chunk.data for chunk in chunks[: gone + 1])  # what the client got before the gap
            numbers = _lines(seen, "before-")
            assert numbers == list(range(len(numbers))) and len(numbers) > 20000  # no line lost, none twice
            held = serial.history()  # what the exporter read from the port, with its events
            assert next(chunk.offset for chunk in held if chunk.event) == len(seen)
            assert b"".join(chunk.data for chunk in held)[: len(seen)] == seen
            assert not any(chunk.dropped for chunk in chunks)


def test_loop_echo_through_connect():
    with client_for(PySerial(url="loop://"), "serial") as serial:
        with serial.stream("connect") as stream:
            stream.send(b"hello serial")
            got = b""
            while len(got) < 12:
                got += stream.receive()
            assert got == b"hello serial"
            stream.send_eof()
            assert stream.receive() == b""  # the exporter's GOAWAY
        assert "hello serial" in serial.log()


def test_connect_is_live_only(pty):
    with client_for(PySerial(url=pty.name), "serial") as serial:
        pty.write(b"old output\r\n")
        serial.expect("old output", timeout=DEADLINE)
        with serial.stream("connect") as stream:
            pty.write(b"new output\r\n")
            got = b""
            while b"new output\r\n" not in got:
                got += stream.receive()
            assert got == b"new output\r\n"


def test_expect_timeout_names_pattern_and_last_output():
    with client_for(PySerial(url="loop://"), "serial") as serial:
        serial.sendline("no prompt here")
        with pytest.raises(ExpectTimeout) as excinfo:
            serial.expect("login:", timeout=0.5)
        assert "login:" in str(excinfo.value) and "no prompt here" in str(excinfo.value)
        assert isinstance(excinfo.value, TimeoutError) and isinstance(excinfo.value, pexpect.TIMEOUT)


def test_keyboard_interrupt_cancels_expect_and_client_stays_usable():
    with client_for(PySerial(url="loop://"), "serial") as serial:
        main = threading.main_thread().ident

        def interrupt_when_waiting():
            wait_until(lambda: _in_function(main, "read_nonblocking"), "expect to block")
            _thread.interrupt_main()

        helper = threading.Thread(target=interrupt_when_waiting)
        # interrupt_main() does nothing where SIGINT is ignored (a run started in the background)
        with sigint_raises_keyboard_interrupt():
            helper.start()
            with pytest.raises(KeyboardInterrupt) as excinfo:
                serial.expect("never printed", timeout=10 * DEADLINE)  # bounded: a lost interrupt fails
            helper.join(DEADLINE)
        assert any(entry.name == "read_nonblocking" for entry in excinfo.traceback)
        serial.sendline("still alive")
        assert serial.expect("still alive", timeout=DEADLINE) == 0


def _in_function(thread_id: int, name: str) -> bool:
    frame = sys._current_frames().get(thread_id)
    while frame is not None:
        if frame.f_code.co_name == name:
            return True
        frame = frame.f_back
    return False


def test_modem_lines_and_break_on_a_pty(pty):
    with client_for(PySerial(url=pty.name), "serial") as serial:
        with pytest.raises(NotImplementedError, match="no modem lines"):
            serial.set_dtr(True)  # a pty has none: a clear error, not an ioctl errno
        with pytest.raises(NotImplementedError, match="no modem lines"):
            serial.set_rts(False)
        serial.send_break(0.01)
        with pytest.raises(ValueError, match="duration must be > 0"):
            serial.send_break(0)


def test_bad_url_is_a_clear_error():
    with pytest.raises(ValueError, match="serial url 'nosuch://x'"):
        PySerial(url="nosuch://x")


def test_cli_pipe_round_trips_bytes_through_loop():
    with client_for(PySerial(url="loop://"), "serial") as serial:
        argv = cli_argv(serial.connection.endpoint, "serial", "pipe")
        done = subprocess.run(argv, input=b"hello through pipe\n", capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout == b"hello through pipe\n"


def test_cli_console_is_an_interactive_raw_terminal(pty):
    with client_for(PySerial(url=pty.name), "serial") as serial:
        # the console runs on a terminal of its own: a second real pty, the test types on its master
        # (subprocess forks and execs in C: pexpect.spawn's Python-level fork in this gRPC process is not safe)
        terminal = Pty()
        argv = cli_argv(serial.connection.endpoint, "serial", "console")
        process = subprocess.Popen(
            argv, stdin=terminal.slave, stdout=terminal.slave, stderr=terminal.slave, start_new_session=True
        )
        user = pexpect.fdpexpect.fdspawn(terminal.master, timeout=DEADLINE)
        try:
            user.expect_exact("console attached")
            pty.write(b"board says hi\r\n")
            user.expect_exact("board says hi")
            user.send("ls\r")
            assert pty.read_until(b"ls\r").endswith(b"ls\r")
            user.send("\x02\x02\x02")
            user.expect_exact("console detached")
            assert process.wait(DEADLINE) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            terminal.close()


def _root(serial: PySerial) -> Composite:
    root = Composite()
    root.children = {"serial": serial}
    return root


def test_a_port_is_held_exclusively(pty):
    """Two exporters configured with one device must not split its bytes between them."""
    with client_for(PySerial(url=pty.name), "serial") as serial:
        second = PySerial(url=pty.name, reopen_interval=0.05)  # finds the port taken: waits for it
        try:
            events = [chunk.event for chunk in second.console.follow(snapshot=True)]
            assert events == [f"port absent ({pty.name}), waiting for it"]
            pty.write(b"all of it\r\n")
            serial.expect("all of it", timeout=DEADLINE)
        finally:
            second.teardown()


def test_release_stops_the_console_reader():
    with client_for(PySerial(url="loop://"), "serial") as serial:
        serial.sendline("started")
        serial.expect("started", timeout=DEADLINE)
        reader = [t for t in threading.enumerate() if t.name == "serial console reader dut.serial"]
        assert len(reader) == 1 and reader[0].is_alive()
    reader[0].join(DEADLINE)
    assert not reader[0].is_alive()


def test_client_keeps_working_across_an_exporter_restart(tmp_path):
    from jumpstarter_jupyter.exporter import serve

    socket_path = str(tmp_path / "exporter.sock")
    exporter = serve(_root(PySerial(url="loop://")), socket=socket_path)
    with connect(f"unix:{socket_path}") as dut:
        dut.serial.sendline("before restart")
        dut.serial.expect("before restart", timeout=DEADLINE)
        exporter.stop(grace=0)
        exporter = serve(_root(PySerial(url="loop://")), socket=socket_path)
        try:
            dut.serial.expect(r"console connection lost", timeout=DEADLINE)
            dut.serial.expect(r"exporter restarted: the console starts over", timeout=DEADLINE)
            dut.serial.sendline("after restart")  # reaches the new exporter even before the follower is back
            dut.serial.expect("after restart", timeout=DEADLINE)
        finally:
            exporter.stop(grace=0)


def test_a_client_built_before_a_restart_follows_the_new_console_from_its_start(tmp_path):
    """The follower starts only after the restart, with an offset of the old run: nothing is skipped."""
    from jumpstarter_jupyter.exporter import serve

    socket_path = str(tmp_path / "exporter.sock")
    exporter = serve(_root(PySerial(url="loop://")), socket=socket_path)
    try:
        with connect(f"unix:{socket_path}") as writer:
            writer.serial.write(b"x" * 500)  # the old run's console reaches offset 500
            writer.serial.expect("x" * 500, timeout=DEADLINE)
        late = connect(f"unix:{socket_path}")  # its origin: offset 500 of the old run; no follower yet
        exporter.stop(grace=0)
        exporter = serve(_root(PySerial(url="loop://")), socket=socket_path)
        with connect(f"unix:{socket_path}") as writer:
            writer.serial.write(b"BOOT-LINE-1\r\n")
            writer.serial.expect("BOOT-LINE-1", timeout=DEADLINE)
        with late:
            late.serial.call(
                "offset"
            )  # a call first: the connection rebinds to the new run before the follower starts
            late.serial.expect(r"exporter restarted: the console starts over at offset 0", timeout=DEADLINE)
            late.serial.expect("BOOT-LINE-1", timeout=DEADLINE)
    finally:
        exporter.stop(grace=0)


LOOP_CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  serial:
    type: PySerial
    config: {url: "loop://"}
"""


def test_writes_lost_with_a_killed_exporter_raise_and_the_client_works_again(tmp_path):
    """SIGKILL the exporter, then write at once: no write vanishes without an error."""
    from jumpstarter_jupyter import ConnectionFailed
    from support import start_exporter

    config, socket_path = tmp_path / "loop.yaml", tmp_path / "loop.sock"
    config.write_text(LOOP_CONFIG)
    exporter = start_exporter("run", config, "--socket", socket_path)
    try:
        with connect(f"unix:{socket_path}") as dut:
            dut.serial.write(b"first\n")
            dut.serial.flush()
            exporter.kill()
            exporter.wait()
            with pytest.raises(
                ConnectionFailed,
                match=r"dut\.serial\.write: (\d+ bytes written were not delivered|"
                r".*not reachable)",
            ):
                for line in (b"one\n", b"two\n", b"three\n"):
                    dut.serial.write(line)
                dut.serial.flush()
            exporter = start_exporter("run", config, "--socket", socket_path)
            dut.serial.sendline("after the restart")
            dut.serial.flush()
            dut.serial.expect("after the restart", timeout=DEADLINE)
    finally:
        exporter.kill()
        exporter.wait()
