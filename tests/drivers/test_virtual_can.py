"""The virtual board's CAN node through a real exporter: its frames decode with the shipped
DBC, the LED signal follows the shell's ``led on|off``, the version answer follows the image,
and the node is silent while the board is off."""

from __future__ import annotations

import can
import pytest

from jumpstarter_jupyter.client import connect
from jumpstarter_jupyter.drivers.virtual.driver import VirtualBoard
from jumpstarter_jupyter.drivers.virtual.firmware_can import (
    DBC,
    STATUS_ID,
    VERSION_REQUEST_ID,
    VERSION_RESPONSE_ID,
    status_data,
    version_data,
)
from jumpstarter_jupyter.drivers.virtual.image import make_image
from jumpstarter_jupyter.errors import DriverTimeout
from support import serving

DEADLINE = 30.0
PROMPT = r"root@jumpstarter:~# "
VERSION_QUERY = can.Message(arbitration_id=VERSION_REQUEST_ID, is_extended_id=False)


@pytest.fixture
def dut():
    with serving(VirtualBoard.create(pace=0.5)) as exporter, connect(exporter.address) as client:
        client.can.load_dbc(DBC)
        yield client


def shell(dut, command: str = "") -> None:
    """Log in (once) and run ``command``; returns when the prompt is back, the frames so far taken."""
    dut.boot_to_shell(timeout=DEADLINE)
    if command:
        dut.serial.sendline(command)
        dut.serial.expect(PROMPT, timeout=DEADLINE)
    drain(dut.can)


def drain(bus) -> None:
    while bus.recv(0) is not None:
        pass


def statuses_until(dut, signal: str, value: int) -> int:
    """How many Status frames came, the matching one included, until ``signal`` was ``value``."""
    for count in range(1, 50):
        decoded = dut.can.decode(dut.can.expect(arbitration_id=STATUS_ID, timeout=DEADLINE))
        if decoded[signal] == value:
            return count
    raise AssertionError(f"{signal} never became {value}")


def test_status_frames_decode_with_the_shipped_dbc(dut):
    shell(dut)
    decoded = dut.can.decode(dut.can.expect(arbitration_id=STATUS_ID, timeout=DEADLINE))
    assert decoded.message == "Status" and list(decoded.signals) == [
        "Uptime",
        "Temperature",
        "Led",
        "Button",
        "State",
        "Counter",
    ]
    assert decoded.units == {"Uptime": "s", "Temperature": "degC"}
    assert decoded.text("State") == "running" and decoded["Uptime"] > 0
    assert 25 < decoded["Temperature"] < 90
    following = dut.can.decode(dut.can.expect(arbitration_id=STATUS_ID, timeout=DEADLINE))
    assert following["Counter"] == (decoded["Counter"] + 1) % 256 and following["Uptime"] > decoded["Uptime"]


def test_led_signal_follows_the_shell_within_a_frame_period(dut):
    shell(dut, "led on")
    # the prompt came back after the LED was set: a frame still in flight may predate it, the next cannot
    assert statuses_until(dut, "Led", 1) <= 2
    assert dut.can.expect_signal("Status", "Led", "on", timeout=2).text("Led") == "on"
    shell(dut, "led off")
    assert statuses_until(dut, "Led", 0) <= 2


def test_button_and_temperature_signals(dut):
    shell(dut)
    dut.button.on()
    assert dut.can.expect_signal("Status", "Button", "pressed", timeout=DEADLINE)["Button"] == 1
    dut.button.off()
    assert dut.can.expect_signal("Status", "Button", 0, timeout=DEADLINE)
    settled = dut.can.expect_signal("Status", "Temperature", lambda t: abs(t - 37.5) < 1.5, timeout=DEADLINE)
    assert settled.text("Temperature").endswith(" degC")


def test_version_answer_follows_the_flashed_image(dut, tmp_path):
    shell(dut)
    dut.can.send(VERSION_QUERY)
    answer = dut.can.decode(dut.can.expect(arbitration_id=VERSION_RESPONSE_ID, timeout=DEADLINE))
    assert (answer["Major"], answer["Minor"], answer["Patch"]) == (1, 0, 0)
    image = tmp_path / "os-2.7.3.img"
    image.write_bytes(make_image("Jumpstarter Linux", "2.7.3"))
    dut.flash(str(image))
    shell(dut)
    dut.can.send(VERSION_QUERY)
    answer = dut.can.decode(dut.can.expect(arbitration_id=VERSION_RESPONSE_ID, timeout=DEADLINE))
    assert (answer["Major"], answer["Minor"], answer["Patch"]) == (2, 7, 3)


def test_the_node_is_silent_while_the_board_is_off(dut):
    with connect(dut.connection.endpoint) as watcher:
        clock = watcher.can.send_periodic(
            can.Message(arbitration_id=0x7F0, is_extended_id=False), period=0.05
        )
        try:
            dut.can.send(VERSION_QUERY)
            # 20 ticks of the clock (a second): the board, off, sent nothing between them
            seen = [dut.can.recv(DEADLINE).arbitration_id for _ in range(20)]
        finally:
            clock.stop()
    assert seen == [0x7F0] * 20
    dut.power.on()
    assert dut.can.expect(arbitration_id=STATUS_ID, timeout=DEADLINE)  # the same node once the OS runs


def test_decoding_errors_name_what_is_wrong(dut, tmp_path):
    with pytest.raises(
        ValueError, match=r"no message 'Nope' in the CAN database \(it has: Status, VersionRequest"
    ):
        dut.can.expect_signal("Nope", "Led", 1)
    with pytest.raises(
        ValueError, match=r"message 'Status' has no signal 'Lde' \(it has: Uptime, Temperature"
    ):
        dut.can.expect_signal("Status", "Lde", 1)
    with pytest.raises(
        DriverTimeout,
        match=r"dut\.can\.expect_signal: Status\.Led was not 1 within 0\.3 s: "
        r"no Status frame came",
    ):
        dut.can.expect_signal("Status", "Led", 1, timeout=0.3)  # the board is off
    missing = tmp_path / "missing.dbc"
    with pytest.raises(FileNotFoundError, match="missing.dbc: no such CAN database file"):
        dut.can.load_dbc(missing)
    broken = tmp_path / "broken.dbc"
    broken.write_text("BO_ 256 Status 8 Board\n")  # no colon after the message's name
    with pytest.raises(
        ValueError, match=r"broken.dbc: not a CAN database cantools can read: .*line 1, column 16"
    ):
        dut.can.load_dbc(broken)
    assert dut.can.decode(can.Message(arbitration_id=0x7AB, data=b"\x01")) is None


def test_frame_layout_matches_the_dbc():
    import cantools

    database = cantools.database.load_file(str(DBC))
    data = status_data(uptime=123.4, temperature=-12.5, led=False, button=True, state=2, counter=255)
    assert database.decode_message("Status", data, decode_choices=False) == {
        "Uptime": pytest.approx(123.4),
        "Temperature": -12.5,
        "Led": 0,
        "Button": 1,
        "State": 2,
        "Counter": 255,
    }
    assert database.decode_message("VersionResponse", version_data("10.300-rc1")) == {
        "Major": 10,
        "Minor": 255,
        "Patch": 1,
    }


def test_a_decoded_frame_is_a_read_only_mapping_as_cantools_result_is():
    from collections.abc import Mapping

    from jumpstarter_jupyter.drivers.can import dbc

    db = dbc.load(DBC)
    data = bytes.fromhex("7b00009f01010307")
    decoded = dbc.decode(db, can.Message(arbitration_id=STATUS_ID, data=data, is_extended_id=False))
    theirs = {
        name: round(value, 9) if isinstance(value, float) else value
        for name, value in db.decode_message(STATUS_ID, data, decode_choices=False).items()
    }
    assert isinstance(decoded, Mapping) and decoded == theirs and dict(decoded) == theirs
    assert list(decoded.items()) == list(theirs.items()) and "Led" in decoded and "Nope" not in decoded
    with pytest.raises(TypeError):
        decoded["Led"] = 0  # read-only
