"""GPIO outputs and inputs through a real exporter, the Python API and the CLI."""

from __future__ import annotations

import contextlib
import glob
import threading
from collections.abc import Iterator

import pytest

from jumpstarter_jupyter import ConfigError, DriverError, DriverInvalidArgument, DriverTimeout, connect
from jumpstarter_jupyter.drivers.gpio.client import DigitalInputClient, DigitalOutputClient
from jumpstarter_jupyter.drivers.gpio.driver import (
    MockDigitalInput,
    MockDigitalOutput,
    VirtualDigitalInput,
    VirtualDigitalOutput,
    VirtualLine,
)
from jumpstarter_jupyter.exporter import build_tree, parse_config
from jumpstarter_jupyter.protocol.metadata import FAILED_LABEL
from support import client_for, run_cli, serving

DEADLINE = 30.0  # seconds: generous bounds on waits that normally end at once


@contextlib.contextmanager
def toggling(line: VirtualLine) -> Iterator[None]:
    """Pulse ``line`` (1 then 0) from another thread until the block ends.

    An edge waiter subscribes at some point after its call is sent; pulsing until the call
    returns guarantees it sees an edge without guessing when it started listening.
    """
    done = threading.Event()

    def pulse():
        while not done.wait(0.01):
            line.set(1)
            line.set(0)

    thread = threading.Thread(target=pulse, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def test_virtual_line_waits_and_notifies():
    line = VirtualLine()
    seen = []
    unsubscribe = line.subscribe(seen.append)
    line.set(1)
    line.set(1)  # no change: no notification
    line.set(0)
    unsubscribe()
    line.set(1)
    assert seen == [1, 0]
    assert line.wait_for(1, timeout=0) and not line.wait_for(0, timeout=0)
    with pytest.raises(ValueError, match="0 or 1, got 2"):
        line.set(2)


def test_output_drives_the_line():
    line = VirtualLine()
    with client_for(VirtualDigitalOutput(line), "button") as button:
        assert isinstance(button, DigitalOutputClient)
        assert button.read_pin() == 0
        button.on()
        assert line.value == 1 and button.read() == 1
        button.off()
        assert line.value == 0 and button.read_pin() == 0
        button.cycle(wait=0)
        assert line.value == 1
        with pytest.raises(DriverInvalidArgument, match=r"dut\.button\.cycle: wait must be >= 0"):
            button.cycle(wait=-1)


def test_output_reports_upstream_client():
    with client_for(MockDigitalOutput(), "button") as button:
        assert (
            button.labels["jumpstarter.dev/client"] == "jumpstarter_driver_gpiod.client.DigitalOutputClient"
        )
    with client_for(MockDigitalInput(), "led") as led:
        assert led.labels["jumpstarter.dev/client"] == "jumpstarter_driver_gpiod.client.DigitalInputClient"
        assert isinstance(led, DigitalInputClient)


def test_input_reads_the_line():
    line = VirtualLine()
    with client_for(VirtualDigitalInput(line), "led") as led:
        assert led.read_pin() == 0
        line.set(1)
        assert led.read() == 1


def test_wait_for_active_returns_when_another_thread_sets_the_line():
    line = VirtualLine()
    with client_for(VirtualDigitalInput(line), "led") as led:
        with pytest.raises(DriverTimeout) as caught:
            led.wait_for_active(timeout=0.1)
        assert isinstance(caught.value, TimeoutError)
        assert "dut.led.wait_for_active: pin did not become active within 0.1 s" in str(caught.value)
        setter = threading.Thread(target=line.set, args=(1,))
        setter.start()
        led.wait_for_active(timeout=DEADLINE)
        setter.join()
        assert led.read() == 1
        with pytest.raises(DriverTimeout, match="did not become inactive"):
            led.wait_for_inactive(timeout=0.05)
        threading.Thread(target=line.set, args=(0,)).start()
        led.wait_for_inactive(timeout=DEADLINE)


@pytest.mark.parametrize("edge", ["rising", "falling"])
def test_wait_for_edge(edge):
    line = VirtualLine()
    with client_for(VirtualDigitalInput(line), "led") as led:
        with pytest.raises(DriverTimeout, match=f"no {edge} edge within 0.05 s"):
            led.wait_for_edge(edge, timeout=0.05)
        with toggling(line):
            led.wait_for_edge(edge, timeout=DEADLINE)


def test_wait_for_edge_refuses_unknown_edge_and_negative_timeout():
    with client_for(VirtualDigitalInput(VirtualLine()), "led") as led:
        with pytest.raises(DriverInvalidArgument) as caught:
            led.wait_for_edge("up", timeout=1)
        assert isinstance(caught.value, ValueError)
        assert "dut.led.wait_for_edge: edge_type must be one of 'rising', 'falling', got 'up'" in str(
            caught.value
        )
        with pytest.raises(DriverInvalidArgument, match="timeout must be >= 0 seconds"):
            led.wait_for_active(timeout=-1)


def test_watch_yields_value_then_each_change():
    line = VirtualLine()
    with client_for(VirtualDigitalInput(line), "led") as led:
        changes = led.watch()
        assert next(changes) == 0
        line.set(1)
        assert next(changes) == 1
        line.set(0)
        line.set(1)
        assert [next(changes), next(changes)] == [0, 1]
        changes.close()


def test_mock_drivers_from_upstream_style_yaml():
    config = parse_config(
        """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  relay:
    type: MockDigitalOutput
    config: {line: 4}
  sense:
    type: jumpstarter_jupyter.drivers.gpio.driver.MockDigitalInput
    config: {line: 5, initial_value: 1}
""",
        "gpio.yaml",
    )
    with serving(build_tree(config)) as exporter, connect(exporter.address) as dut:
        dut.relay.on()
        assert dut.relay.read() == 1
        assert dut.sense.read() == 1
        dut.sense.wait_for_active(timeout=0)


def test_virtual_driver_in_yaml_explains_itself():
    config = parse_config(
        """
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  led:
    type: VirtualDigitalInput
    config: {line: 3}
""",
        "gpio.yaml",
    )
    with pytest.raises(ConfigError, match=r"gpio\.yaml: export\.led\.config.*VirtualLine.*MockDigitalInput"):
        build_tree(config)


def test_output_cli():
    line = VirtualLine()
    with client_for(VirtualDigitalOutput(line), "button") as button:
        assert run_cli(button, "on").returncode == 0
        assert line.value == 1
        result = run_cli(button, "read")
        assert (result.returncode, result.stdout) == (0, "1\n")
        assert run_cli(button, "off").returncode == 0
        assert line.value == 0
        assert run_cli(button, "cycle", "-w", "0").returncode == 0
        assert line.value == 1
        help_text = run_cli(button, "--help").stdout
        assert all(name in help_text for name in ("on", "off", "cycle", "read"))


def test_input_cli():
    line = VirtualLine()
    with client_for(VirtualDigitalInput(line), "led") as led:
        result = run_cli(led, "read")
        assert (result.returncode, result.stdout) == (0, "0\n")
        result = run_cli(led, "wait-for-active", "-t", "0.1")
        assert result.returncode == 1
        assert "dut.led.wait_for_active: pin did not become active within 0.1 s" in result.stderr
        line.set(1)
        result = run_cli(led, "wait-for-active", "-t", "5")
        assert (result.returncode, result.stdout) == (0, "active\n")
        result = run_cli(led, "wait-for-inactive", "-t", "0.1")
        assert result.returncode == 1 and "did not become inactive" in result.stderr
        with toggling(line):
            result = run_cli(led, "wait-for-edge", "falling", "-t", str(DEADLINE))
        assert (result.returncode, result.stdout) == (0, "falling edge\n")
        result = run_cli(led, "wait-for-edge", "up")
        assert result.returncode == 2 and "'up' is not one of 'rising', 'falling'" in result.stderr


# The libgpiod drivers need a GPIO chip, which this machine and CI lack: these tests cover
# what runs without one (upstream type names, config checks, the kernel's refusals).


def _gpiod_config(entry: str) -> str:
    return f"""
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  relay:
{entry}
"""


@pytest.mark.parametrize(
    "device, reason",
    [
        ("/dev/gpiochip99", "cannot request line 4 of /dev/gpiochip99: No such file or directory"),
        ("/dev/null", "cannot request line 4 of /dev/null: No such device"),  # libgpiod: not a GPIO chip
    ],
)
def test_libgpiod_output_that_cannot_open_its_line_is_reported_failed_naming_the_device(device, reason):
    config = parse_config(
        _gpiod_config(f"""    type: jumpstarter_driver_gpiod.driver.DigitalOutput
    config: {{line: 4, device: {device}}}"""),
        "gpio.yaml",
    )
    with serving(build_tree(config)) as exporter, connect(exporter.address) as dut:
        assert dut.relay.labels[FAILED_LABEL] == f"OSError: {reason}"
        with pytest.raises(DriverError, match=f"dut.relay.on: OSError: {reason}"):
            dut.relay.on()


def test_libgpiod_input_checks_its_options_before_touching_hardware():
    config = parse_config(
        _gpiod_config("""    type: jumpstarter_driver_gpiod.driver.DigitalInput
    config: {line: 4, device: /dev/null, bias: sideways}"""),
        "gpio.yaml",
    )
    with pytest.raises(
        ConfigError, match="bias must be one of as_is, disabled, pull_up, pull_down, got 'sideways'"
    ):
        build_tree(config)


def test_libgpiod_without_a_chip_says_so():
    if glob.glob("/dev/gpiochip*"):
        pytest.skip("this host has GPIO chips: the default device exists")
    config = parse_config(
        _gpiod_config("""    type: DigitalInput
    config: {line: 4}"""),
        "gpio.yaml",
    )
    with pytest.raises(
        ConfigError, match=r"no GPIO chip on this host \(/dev/gpiochip\* does not exist\); set `device:`"
    ):
        build_tree(config)
