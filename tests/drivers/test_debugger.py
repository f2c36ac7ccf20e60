"""The debugger on real kernels: QEMU's gdbstub through a real exporter, a real gdb-multiarch.

One boot per architecture serves the module (x86_64, then aarch64); the exporter requires
leases, so the test's client holds the board and a second client watches. The guest's
``/proc/kallsyms`` gives the symbols (grepped on the guest: the whole file floods the console).
"""

from __future__ import annotations

import contextlib
import io
import re
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jumpstarter_jupyter.client import DriverClient, connect
from jumpstarter_jupyter.drivers.debugger import rsp
from jumpstarter_jupyter.drivers.debugger.symbols import parse_map, resolve
from jumpstarter_jupyter.drivers.qemu.driver import QemuBoard
from jumpstarter_jupyter.drivers.qemu.images import build
from jumpstarter_jupyter.errors import DriverError, LeaseRequired
from jumpstarter_jupyter.exporter import build_tree, load_config
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from support import run_cli, serving, wait_for

DEADLINE = 60.0
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "debug-probe.yaml"
REGISTERS = {"x86_64": ("rip", "rsp"), "aarch64": ("pc", "sp")}
# the banner, a function only the `sync` command reaches, the end of the kernel's code
SYMBOLS = ("linux_banner", "ksys_sync", "_etext")
BANNER = b"Linux version 6.1"


@dataclass
class Guest:
    arch: str
    dut: DriverClient
    address: str

    @property
    def debugger(self) -> DriverClient:
        return self.dut.debugger


@pytest.fixture(scope="module", params=list(REGISTERS))
def guest(request):
    build(request.param)
    with (
        serving(QemuBoard(arch=request.param), lease=LeasePolicy(required=True)) as exporter,
        connect(exporter.address) as dut,
    ):
        dut.boot_to_shell(DEADLINE)
        pattern = "|".join(SYMBOLS)
        code, text = dut.run(f"grep -E ' ({pattern})$' /proc/kallsyms", DEADLINE)
        assert code == 0, text
        # Debian's arm64 kernel is built without CONFIG_KALLSYMS_ALL: no data symbols (see banner())
        assert dut.debugger.symbols(text) == len(SYMBOLS) - (request.param == "aarch64")
        yield Guest(request.param, dut, exporter.address)


def stop_in_sync(guest: Guest) -> dict:
    """Break at ksys_sync and type `sync`: the guest halts in the kernel."""
    guest.debugger.breakpoint("ksys_sync")
    guest.dut.serial.discard()
    guest.dut.serial.sendline("sync; echo synced")
    return guest.debugger.wait_for_stop(DEADLINE)


def banner(guest: Guest) -> int:
    """linux_banner's address; where kallsyms lacks data symbols (arm64), found in the read-only
    data after _etext and added to the client's symbols as a kallsyms line would."""
    if "linux_banner" not in guest.debugger.symbol_table:
        for offset in range(0, 32 << 20, 1 << 20):
            found = guest.debugger.read_memory(f"_etext+{offset:#x}", (1 << 20) + len(BANNER)).find(BANNER)
            if found >= 0:
                address = guest.debugger.address("_etext") + offset + found
                guest.debugger.symbols(f"{address:016x} D linux_banner")
                break
    return guest.debugger.address("linux_banner")


def finish_sync(guest: Guest) -> None:
    guest.debugger.resume()
    guest.dut.serial.expect("\nsynced", timeout=DEADLINE)
    assert guest.dut.run("true", DEADLINE) == (0, "")


def test_halt_a_booted_guest_and_read_its_registers(guest):
    state = guest.debugger.halt()
    assert state["state"] == "halted" and state["reason"] == "SIGINT"
    registers = guest.debugger.registers()
    pc, sp = REGISTERS[guest.arch]
    assert registers[pc] == state["pc"] and registers[sp] == state["sp"] and registers[sp] > 0
    if guest.arch == "x86_64":  # a halt in aarch64's user space cannot read kernel memory (see below)
        assert guest.debugger.read_memory("linux_banner", 14) == b"Linux version "
    assert guest.debugger.resume()["state"] == "running"
    assert guest.dut.run("true", DEADLINE) == (0, "")


def test_a_breakpoint_stops_the_kernel_step_moves_and_resume_lets_the_shell_answer(guest):
    state = stop_in_sync(guest)
    assert state["reason"] == "breakpoint at ksys_sync"
    assert state["pc"] == guest.debugger.address("ksys_sync")
    banner(guest)
    assert guest.debugger.read_memory("linux_banner", 80).startswith(BANNER)
    stepped = guest.debugger.step()
    assert stepped["reason"] == "step" and stepped["pc"] != state["pc"]
    snapshot = guest.debugger.snapshot()
    assert REGISTERS[guest.arch][0] in snapshot["changed"]
    assert [b["label"] for b in snapshot["breakpoints"]] == ["ksys_sync"]
    assert stepped["pc"] in [line[0] for line in guest.debugger.disassemble(snapshot)]
    guest.debugger.remove("ksys_sync")
    finish_sync(guest)


def test_a_write_watchpoint_on_the_kernel_stack_stops_where_it_is_written(guest):
    """Halted at ksys_sync's entry, the 256 bytes below the stack pointer are written by the
    function's first push or store pair: QEMU's gdbstub reports the address written."""
    state = stop_in_sync(guest)
    guest.debugger.remove("ksys_sync")
    below = state["sp"] - 256
    point = guest.debugger.watchpoint(below, 256, "write")
    assert point["kind"] == "watchpoint (write)" and point["address"] == hex(below)
    guest.debugger.resume()
    stopped = guest.debugger.wait_for_stop(DEADLINE)
    hit = re.fullmatch(r"watchpoint \(write\) at (0x[0-9a-f]+)", stopped["reason"])
    assert hit and below <= int(hit[1], 16) < state["sp"], stopped
    assert guest.debugger.remove(hex(below)) == [point["id"]]
    finish_sync(guest)


def test_a_local_gdb_attaches_through_forward_and_prints_the_banner(guest):
    stop_in_sync(guest)
    guest.debugger.remove("ksys_sync")
    address = hex(banner(guest))
    with guest.debugger.forward() as local:
        gdb = subprocess.run(
            [
                "gdb-multiarch",
                "-q",
                "-nx",
                "-batch",
                "-ex",
                f"target remote {local}",
                "-ex",
                f"x/s {address}",
                "-ex",
                "detach",
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )
    assert address in gdb.stdout and '"Linux version 6.1' in gdb.stdout, gdb.stdout + gdb.stderr
    assert guest.debugger.state()["gdb"] == ""
    guest.dut.serial.expect("\nsynced", timeout=DEADLINE)  # gdb's detach let the guest run on
    assert guest.dut.run("true", DEADLINE) == (0, "")


def test_a_watcher_sees_the_last_stop_but_is_refused_control(guest):
    holder = guest.debugger
    held = holder.halt()
    with connect(guest.address, lease=False) as watcher:
        seen = watcher.debugger.snapshot()
        assert seen["state"] == "halted" and dict(seen["registers"])[REGISTERS[guest.arch][0]] == hex(
            held["pc"]
        )
        for call in (
            watcher.debugger.step,
            watcher.debugger.resume,
            lambda: watcher.debugger.read_memory(0, 4),
            watcher.debugger.registers,
        ):
            with pytest.raises(LeaseRequired):
                call()
        holder.resume()
        assert watcher.debugger.state()["state"] == "running"
        with pytest.raises(LeaseRequired):
            watcher.debugger.halt()
    assert guest.dut.run("true", DEADLINE) == (0, "")


def test_memory_reads_refused_while_running_say_so(guest):
    with pytest.raises(DriverError, match="the target is running: halt"):
        guest.debugger.read_memory("linux_banner", 4)


def test_gdb_wait_holds_the_cpu_at_power_on_and_each_power_on_attaches_anew():
    build("x86_64")
    with serving(QemuBoard(gdb_wait=True)) as exporter, connect(exporter.address) as dut:
        dut.power.on()
        state = dut.debugger.wait_for_stop(DEADLINE)
        assert state["state"] == "halted" and state["pc"] == 0xFFF0  # x86's reset vector
        assert "held at power on" in state["notice"]
        assert dut.debugger.step(2)["pc"] != 0xFFF0
        cli = run_cli(dut.debugger, "registers")
        assert cli.returncode == 0 and f"rip        {dut.debugger.state()['pc']:#x}" in cli.stdout, cli.stderr
        assert local_gdb(exporter.address, "info registers rip") == f"rip {dut.debugger.state()['pc']:#x}"
        dut.debugger.resume()
        dut.serial.expect("Linux version", timeout=DEADLINE)
        dut.power.off()
        assert dut.debugger.state()["state"] == "detached"
        dut.power.on()
        assert dut.debugger.wait_for_stop(DEADLINE)["stops"] == 1  # a new gdbstub, a new session
        dut.power.off()


def test_example_probe_attaches_when_first_used_and_again_to_a_new_stub(tmp_path):
    """examples/debug-probe.yaml against a bare QEMU gdbstub on TCP, as a probe's GDB server."""
    build("x86_64")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "debug-probe.yaml"
    config.write_text(
        EXAMPLE.read_text().replace("127.0.0.1:3333", f"127.0.0.1:{port}").replace("/dev/ttyACM0", "loop://")
    )
    stub = start_stub(port)
    try:
        with serving(build_tree(load_config(config))) as exporter, connect(exporter.address) as root:
            probe = root.probe
            assert probe.state()["reason"] == "not attached yet"
            state = wait_for(lambda: attempt(probe.halt), DEADLINE, "the stub to listen")
            assert state["pc"] == 0xFFF0 and state["notice"] == "attached"
            probe.serial.sendline("hello probe")
            assert probe.serial.expect("hello probe", timeout=DEADLINE) == 0
            stub.kill()
            stub.wait(DEADLINE)
            wait_for(lambda: probe.state()["state"] == "detached", DEADLINE, "the stub's end to be seen")
            stub = start_stub(port)
            state = wait_for(lambda: attempt(probe.registers), DEADLINE, "the new stub to listen")
            assert state["rip"] == 0xFFF0
            assert (
                probe.state()["notice"] == "the stub is new: attached again (breakpoints set before are gone)"
            )
    finally:
        stub.kill()
        stub.wait(DEADLINE)


def start_stub(port: int) -> subprocess.Popen:
    """QEMU held at reset (-S) with its gdbstub on 127.0.0.1:port, nothing else."""
    return subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-M",
            "pc",
            "-accel",
            "tcg",
            "-m",
            "64M",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-gdb",
            f"tcp:127.0.0.1:{port}",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def attempt(call):
    """``call()``, or None while the stub does not listen yet."""
    try:
        return call()
    except DriverError as exc:
        if "Connection refused" in str(exc):
            return None
        raise


def local_gdb(endpoint: str, command: str) -> str:
    """``%jmp gdb`` in an IPython shell, then the gdb it prints running ``command``: its answer."""
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "jumpstarter_jupyter")
    try:
        shell.run_line_magic("jmp", f"connect {endpoint} --name board;")
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            shell.run_line_magic("jmp", "gdb board.debugger")
        line = re.search(r"gdb-multiarch -ex 'target remote (\S+)'", printed.getvalue())
        assert line, printed.getvalue()
        gdb = subprocess.run(
            [
                "gdb-multiarch",
                "-q",
                "-nx",
                "-batch",
                "-ex",
                f"target remote {line.group(1)}",
                "-ex",
                command,
                "-ex",
                "disconnect",
            ],
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            stdin=subprocess.DEVNULL,
        )
    finally:
        shell.run_line_magic("unload_ext", "jumpstarter_jupyter")
    return " ".join(gdb.stdout.strip().splitlines()[-1].split()[:2])


def test_packets_checksums_escapes_and_run_length_encoding():
    assert rsp.frame(b"g") == b"$g#67"
    assert rsp.escape(b"a}b#") == b"a}]b}\x03"
    assert rsp.decode(b"a}]b}\x03") == b"a}b#"
    assert rsp.decode(b"0* ") == b"0000"  # ' ' is 32: three more
    framer = rsp.Framer()
    assert list(framer.feed(b"+$OK#9a$E0")) == [("ack", b"+"), ("packet", b"OK")]
    assert list(framer.feed(b"1#00\x03")) == [("bad", b"E01"), ("interrupt", b"\x03")]
    stop = rsp.Stop.parse(b"T05thread:01;watch:ffff8000;")
    assert stop.describe() == "watchpoint (write) at 0xffff8000"
    assert rsp.Stop.parse(b"W00").describe() == "the program exited with status 0"


def test_symbols_from_kallsyms_text():
    table = parse_map("ffffffff81000000 T _text\nffffffff82000100 D linux_banner\n")
    assert resolve(table, "linux_banner+0x10") == 0xFFFFFFFF82000110
    with pytest.raises(KeyError, match="unknown symbol 'nothing'"):
        resolve(table, "nothing")
    with pytest.raises(ValueError, match="kptr_restrict"):
        parse_map("0000000000000000 T _text\n")
