"""Power switches that are not SNMP (a relay on GPIO lines, commands) and hwmon meters, through a
real exporter and client. The sysfs trees are directories shaped like /sys/class/hwmon in tmp_path
(no INA chip exists here); the commands are real shell commands writing a state file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from jumpstarter_jupyter import ConfigError, DriverError, DriverNotImplemented, DriverTimeout, connect
from jumpstarter_jupyter.drivers.gpio.driver import VirtualDigitalInput, VirtualDigitalOutput, VirtualLine
from jumpstarter_jupyter.drivers.power.command import CommandPower
from jumpstarter_jupyter.drivers.power.common import PowerReading
from jumpstarter_jupyter.drivers.power.hwmon import HwmonMeter
from jumpstarter_jupyter.drivers.power.relay import GpioPower
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import client_for, run_cli, serving

# what the kernel's ina2xx and ina3221 drivers expose (Documentation/hwmon/ina2xx.rst, ina3221.rst)
INA226 = {
    "name": "ina226",
    "in0_input": "2",
    "in1_input": "5012",
    "curr1_input": "312",
    "power1_input": "1564000",
}
INA3221 = {
    "name": "ina3221",
    "in1_input": "12034",
    "in2_input": "3301",
    "in3_input": "1800",
    "curr1_input": "1500",
    "curr2_input": "250",
    "curr3_input": "0",
    "in4_input": "15",
    "in5_input": "2",
    "in6_input": "0",
}
INA_POWER_ONLY = {"name": "ina260", "in1_input": "4000", "power1_input": "2000000"}  # 2 W at 4 V: 0.5 A


def sysfs(root: Path, devices: dict[str, dict[str, str]]) -> Path:
    """A /sys/class/hwmon-shaped tree: one directory per device holding its attribute files."""
    for entry, attributes in devices.items():
        (root / entry).mkdir(parents=True)
        for name, value in attributes.items():
            (root / entry / name).write_text(value + "\n")
    return root


@pytest.fixture
def hwmon(tmp_path) -> Path:
    return sysfs(
        tmp_path / "hwmon",
        {
            "hwmon0": {"name": "acpitz", "temp1_input": "45000"},
            "hwmon1": INA226,
            "hwmon2": INA3221,
            "hwmon3": INA_POWER_ONLY,
        },
    )


def yaml_config(text: str):
    return parse_config("apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n" + text, "lab.yaml")


# HwmonMeter ----------------------------------------------------------------------------------


def test_meter_reads_a_single_channel_chip_by_name_in_kernel_units(hwmon):
    meter = HwmonMeter(name="ina226", root=str(hwmon))
    assert list(meter.read()) == [{"voltage": 5.012, "current": 0.312}]  # mV and mA -> V and A
    (hwmon / "hwmon1" / "curr1_input").write_text("1250\n")  # the board draws more: read again, not cached
    assert list(meter.read()) == [{"voltage": 5.012, "current": 1.25}]


def test_meter_reads_each_channel_of_an_ina3221(hwmon):
    readings = [next(HwmonMeter(name="ina3221", channel=n, root=str(hwmon)).read()) for n in (1, 2, 3)]
    assert readings == [
        {"voltage": 12.034, "current": 1.5},
        {"voltage": 3.301, "current": 0.25},
        {"voltage": 1.8, "current": 0.0},
    ]


def test_meter_by_path_and_current_from_power(hwmon, tmp_path):
    assert list(HwmonMeter(path=str(hwmon / "hwmon3")).read()) == [{"voltage": 4.0, "current": 0.5}]
    device = sysfs(
        tmp_path / "devices" / "1-0040" / "hwmon", {"hwmon7": INA226}
    ).parent  # an i2c device directory
    assert list(HwmonMeter(path=str(device)).read()) == [{"voltage": 5.012, "current": 0.312}]


def test_meter_errors_name_what_is_missing(hwmon):
    with pytest.raises(
        ValueError,
        match=r"no hwmon device named 'ina219' under .*hwmon \(present: acpitz \(hwmon0\), "
        r"ina226 \(hwmon1\)",
    ):
        HwmonMeter(name="ina219", root=str(hwmon))
    with pytest.raises(
        ValueError, match=r"hwmon1 \(ina226\) has no in4_input for channel 4 \(has: curr1_input, in0_input"
    ):
        HwmonMeter(name="ina226", channel=4, root=str(hwmon))
    with pytest.raises(ValueError, match="either `name`.*or `path`.*not neither"):
        HwmonMeter()
    with pytest.raises(ValueError, match="has in1_input but neither curr1_input nor power1_input"):
        HwmonMeter(
            name="acpi",
            root=str(sysfs(hwmon.parent / "other", {"hwmon0": {"name": "acpi", "in1_input": "1"}})),
        )
    sysfs(hwmon, {"hwmon9": INA226})
    with pytest.raises(
        ValueError, match=r"2 hwmon devices are named 'ina226' .*\(hwmon1, hwmon9\): give `path`"
    ):
        HwmonMeter(name="ina226", root=str(hwmon))


def test_meter_child_feeds_read_and_the_client(hwmon, tmp_path):
    state = tmp_path / "state"
    config = yaml_config(f"""export:
  power:
    type: CommandPower
    config:
      on_command: echo on > {state}
      off_command: echo off > {state}
      state_command: cat {state}
    children:
      meter:
        type: HwmonMeter
        config: {{name: ina3221, channel: 2, root: {hwmon}}}
""")
    with serving(build_tree(config)) as exporter, connect(exporter.address) as dut:
        assert dut.power.metered() is True
        assert list(dut.power.read()) == [PowerReading(3.301, 0.25)]
        assert list(dut.power.meter.read()) == [PowerReading(3.301, 0.25)]
        (hwmon / "hwmon2" / "curr2_input").write_text("400\n")
        assert next(dut.power.watch(0.05)) == PowerReading(3.301, 0.4)
        assert run_cli(dut.power, "read", "-n", "1").stdout.startswith(
            "voltage=3.301 V  current=0.4 A  apparent_power=1.32"
        )


def test_a_switch_without_a_meter_says_it_has_no_readings(tmp_path):
    state = tmp_path / "state"
    with client_for(
        CommandPower(on_command=f"echo on > {state}", off_command=f"echo off > {state}"), "power"
    ) as power:
        assert power.metered() is False
        with pytest.raises(
            DriverNotImplemented,
            match=r"dut\.power\.read: this switch has no readings: CommandPower "
            r"measures nothing and has no 'meter' child",
        ):
            list(power.read())
        with pytest.raises(DriverNotImplemented, match="no readings"):
            power.plot(seconds=0.1)


def test_a_meter_child_must_be_a_meter(tmp_path):
    config = yaml_config(
        "export:\n  power:\n    type: CommandPower\n    config: {on_command: 'true', off_command: 'true'}\n"
        "    children:\n      meter:\n        type: MockPower\n"
    )
    with pytest.raises(
        ConfigError,
        match=r"lab.yaml: export.power.children \(line 8\): CommandPower: child 'meter' must be "
        r"a power meter \(e.g. HwmonMeter\), got MockPower",
    ):
        build_tree(config)


# CommandPower --------------------------------------------------------------------------------


def test_commands_switch_and_state_reads_what_they_wrote(tmp_path):
    state = tmp_path / "outlet"
    driver = CommandPower(
        on_command=f"echo on > {state}", off_command=f"echo off > {state}", state_command=f"cat {state}"
    )
    with client_for(driver, "power") as power:
        power.on()
        assert state.read_text() == "on\n" and power.state() is True
        power.off()
        assert state.read_text() == "off\n" and power.state() is False
        power.cycle(wait=0)
        assert power.state() is True
        assert run_cli(power, "off").returncode == 0 and state.read_text() == "off\n"


def test_command_failures_name_the_command_exit_code_and_stderr(tmp_path):
    driver = CommandPower(
        on_command="echo relay board not found >&2; exit 3",
        off_command="true",
        state_command="echo maybe",
        timeout=0.5,
    )
    with client_for(driver, "power") as power:
        with pytest.raises(
            DriverError,
            match=r"dut\.power\.on: on_command 'echo relay board not found >&2; exit 3' "
            r"exited with 3: relay board not found",
        ):
            power.on()
        with pytest.raises(
            ValueError, match=r"state_command 'echo maybe' printed 'maybe': expected on or off"
        ):
            power.state()
    script = tmp_path / "hang.py"  # a command that never ends: killed at the timeout, with its children
    script.write_text("import time\nwhile True: time.sleep(1)\n")
    hang = f"{shlex.quote(sys.executable)} {script}"
    with (
        client_for(CommandPower(on_command=hang, off_command="true", timeout=0.5), "power") as power,
        pytest.raises(DriverTimeout, match=r"on_command .* did not finish within 0.5 s \(killed\)"),
    ):
        power.on()
    with (
        client_for(CommandPower(on_command="true", off_command="true"), "power") as power,
        pytest.raises(DriverNotImplemented, match="cannot tell its state: it has no state_command"),
    ):
        power.state()


def test_command_config_errors():
    with pytest.raises(
        ConfigError,
        match=r"lab.yaml: export.power.config.off_command \(line 6\): "
        r"CommandPower needs config field 'off_command'",
    ):
        build_tree(
            yaml_config("export:\n  power:\n    type: CommandPower\n    config: {on_command: 'true'}\n")
        )
    with pytest.raises(ConfigError, match="timeout must be > 0 seconds, got 0"):
        build_tree(
            yaml_config(
                "export:\n  power:\n    type: CommandPower\n"
                "    config: {on_command: 'true', off_command: 'true', timeout: 0}\n"
            )
        )


# GpioPower -----------------------------------------------------------------------------------


def test_relay_on_mock_lines_from_yaml_active_low():
    config = yaml_config("""export:
  power:
    type: GpioPower
    config: {active_low: true}
    children:
      relay: {type: MockDigitalOutput, config: {line: 17}}
""")
    with serving(build_tree(config)) as exporter, connect(exporter.address) as dut:
        dut.power.on()
        assert dut.power.relay.read_pin() == 0 and dut.power.state() is True  # active low: closed at 0
        dut.power.off()
        assert dut.power.relay.read_pin() == 1 and dut.power.state() is False
        assert dut.power.metered() is False


def test_relay_state_comes_from_power_good():
    relay_line, good_line = VirtualLine(), VirtualLine()
    power = GpioPower()
    power.children = {"relay": VirtualDigitalOutput(relay_line), "power_good": VirtualDigitalInput(good_line)}
    power.check_children()
    with client_for(power, "power") as client:
        client.on()
        assert relay_line.value == 1
        assert client.state() is False  # the relay closed, but the board's supply is not good yet
        good_line.set(1)
        assert client.state() is True
        client.off()
        assert (
            relay_line.value == 0 and client.state() is True
        )  # still reported by power_good, not remembered
        good_line.set(0)
        assert client.state() is False


def test_relay_config_errors():
    with pytest.raises(
        ConfigError,
        match=r"export.power.children \(line \d+\): GpioPower: needs a child 'relay' that is "
        r"a digital output \(e.g. DigitalOutput\), got none",
    ):
        build_tree(
            yaml_config(
                "export:\n  power:\n    type: GpioPower\n    children:\n      led: {type: MockDigitalInput}\n"
            )
        )
    with pytest.raises(ConfigError, match="child 'power_good' must be a digital input"):
        build_tree(
            yaml_config(
                "export:\n  power:\n    type: GpioPower\n    children:\n"
                "      relay: {type: MockDigitalOutput}\n"
                "      power_good: {type: MockDigitalOutput}\n"
            )
        )
    with pytest.raises(ConfigError, match="unknown child 'fan'; GpioPower takes relay, power_good and meter"):
        build_tree(
            yaml_config(
                "export:\n  power:\n    type: GpioPower\n    children:\n"
                "      relay: {type: MockDigitalOutput}\n"
                "      fan: {type: MockDigitalOutput}\n"
            )
        )
