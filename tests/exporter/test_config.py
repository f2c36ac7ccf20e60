"""Loading ExporterConfig YAML: upstream's format, and errors that say file, path and line."""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass

import pytest

from jumpstarter_jupyter.driver import Driver, export
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower, PowerInterface
from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.exporter import build_tree, load_config, parse_config


def config(body: str) -> str:
    return "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\n" + textwrap.dedent(body)


def build(body: str):
    return build_tree(parse_config(config(body), "board.yaml"))


def test_upstream_config_builds_the_tree_with_implicit_composites_and_proxies():
    root = build("""
        description: Rich test exporter
        export:
          power:
            type: jumpstarter_driver_power.driver.MockPower
            description: Main DUT power
            methods_description:
              on: Turn it on!
          group:
            children:
              inner:
                type: jumpstarter_driver_power.driver.MockPower
                config:
                  voltage: 12
          alias:
            ref: power
    """)
    assert root.description == "Rich test exporter"
    assert list(root.children) == ["power", "group", "alias"]
    assert isinstance(root.children["power"], MockPower)
    assert root.children["power"].methods_description == {"on": "Turn it on!"}  # `on:` stays text
    assert isinstance(root.children["group"], Composite)
    assert root.children["group"].children["inner"].voltage == 12.0
    assert root.children["alias"].target is root.children["power"]


def test_load_config_reads_a_file(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(config("export:\n  power:\n    type: MockPower\n"))
    assert list(load_config(path).export) == ["power"]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "export:\n  power:\n    type: MockPower\n   config: {}\n",
            r"board.yaml: line 6, column 4: YAML syntax error",
        ),
        (
            "export:\n  power:\n    type: MockPowr\n",
            r"export.power.type \(line 5\): unknown driver type 'MockPowr'; did you mean MockPower",
        ),
        (
            "export:\n  power:\n    type: MockPower\n    config:\n      voltage: high\n",
            r"export.power.config.voltage \(line 7\): expected float, got text 'high'",
        ),
        (
            "export:\n  power:\n    type: MockPower\n    config:\n      volts: 5\n",
            r"export.power.config.volts \(line 7\): MockPower has no config field 'volts'; "
            r"fields: voltage, current$",
        ),
        (
            "export:\n  power:\n    type: MockPower\n    colour: red\n",
            r"export.power.colour \(line 6\): unknown key",
        ),
        ("export:\n  power: {}\n", r"export.power \(line 4\): expected `type:`"),
        ("export: []\n", r"export \(line 3\): expected a mapping"),
        ("export:\n  power:\n    type: os.path.join\n", r"'os.path.join' is not a driver class"),
        ("export:\n  a:\n    ref: nothere\n", r"ref 'nothere': no driver 'nothere'"),
    ],
)
def test_bad_configs_name_file_yaml_path_line_and_expectation(body, message):
    with pytest.raises(ConfigError, match=message):
        build(body)


@dataclass
class NeedsPort(Driver):
    port: int


def test_missing_required_field_is_named():
    with pytest.raises(
        ConfigError, match=r"export.dev.config.port \(line 6\): NeedsPort needs config field 'port' \(int\)"
    ):
        build("export:\n  dev:\n    type: test_config.NeedsPort\n    config: {}\n")


def test_int_fields_accept_whole_numbers_only():
    assert (
        build("export:\n  dev:\n    type: test_config.NeedsPort\n    config: {port: 80}\n")
        .children["dev"]
        .port
        == 80
    )
    with pytest.raises(
        ConfigError, match=r"export.dev.config.port \(line 6\): expected int, got a number 80.5"
    ):
        build("export:\n  dev:\n    type: test_config.NeedsPort\n    config: {port: 80.5}\n")


def test_wrong_api_version_and_kind_are_refused():
    with pytest.raises(ConfigError, match=r"apiVersion \(line 1\): expected 'jumpstarter.dev/v1alpha1'"):
        parse_config("apiVersion: v2\nkind: ExporterConfig\nexport: {}\n", "x.yaml")
    with pytest.raises(ConfigError, match=r"kind \(line 2\)"):
        parse_config("apiVersion: jumpstarter.dev/v1alpha1\nkind: Other\nexport: {}\n", "x.yaml")


def test_unreadable_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"nope.yaml: cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_labels_are_read_as_text_and_checked_for_selectors():
    head = "export:\n  power:\n    type: MockPower\nlabels:\n"
    assert parse_config(head + "  soc: imx8mp\n  rev: 2\n").labels == {"soc": "imx8mp", "rev": "2"}
    for body, message in (
        ("  my key: x\n", "labels.my key (line 5): label key 'my key' is not a valid name"),
        ("  soc: [a]\n", "labels.soc (line 5): expected a text or number value, got ['a']"),
        ("  soc: a b\n", "labels.soc (line 5): label value 'a b' of 'soc' is not valid"),
    ):
        with pytest.raises(ConfigError, match=re.escape(f"board.yaml: {message}")):
            parse_config(head + body, "board.yaml")


@dataclass
class HalfPower(PowerInterface):
    """Implements only ``on`` of the power interface."""

    @export
    def on(self) -> None:
        pass


def test_a_driver_leaving_interface_methods_out_is_refused_when_the_config_loads():
    expected = (
        r"^board.yaml: export.power.type \(line 5\): HalfPower does not implement "
        r"PowerInterface.off, PowerInterface.state$"
    )  # read() has a default: the meter child's, or none
    with pytest.raises(ConfigError, match=expected):
        build("export:\n  power:\n    type: test_config.HalfPower\n")
    with pytest.raises(TypeError, match="abstract"):  # nor can code build one
        HalfPower()


@pytest.mark.parametrize(
    "type_name, key, value",
    [
        ("MockPower", "powered", "true"),
        ("VirtualPower", "lock", "x"),
        ("VirtualPower", "target", "x"),
    ],
)
def test_runtime_state_is_not_configuration(type_name, key, value):
    body = f"export:\n  power:\n    type: {type_name}\n    config:\n      {key}: {value}\n"
    expected = rf"^board.yaml: export.power.config.{key} \(line 7\): {type_name}.{key} is not configuration"
    with pytest.raises(ConfigError, match=expected):
        build(body)


CONTROLLER = """\
metadata: {namespace: lab, name: bench-1}
endpoint: grpc.jumpstarter.example.com:443
token: abc123
export:
  power:
    type: MockPower
"""


def test_controller_keys_join_the_upstream_controller_and_an_empty_endpoint_means_none():
    joined = parse_config(
        config(CONTROLLER + "tls: {insecure: true}\ngrpcOptions: {grpc.keepalive_time_ms: 5000}\n")
    )
    settings = joined.controller
    assert (settings.endpoint, settings.token, settings.namespace, settings.name) == (
        "grpc.jumpstarter.example.com:443",
        "abc123",
        "lab",
        "bench-1",
    )
    assert settings.insecure and settings.ca == ""
    assert dict(settings.options)["grpc.keepalive_time_ms"] == 5000  # over upstream's default 20000
    assert dict(settings.options)["grpc.lb_policy_name"] == "round_robin"
    alone = parse_config(config('endpoint: ""\ntoken: ""\nexport: {power: {type: MockPower}}\n'))
    assert alone.controller is None


@pytest.mark.parametrize(
    "change, message",
    [
        (
            ("endpoint: grpc.jumpstarter.example.com:443", "endpoint: grpc.example.com"),
            r"endpoint \(line 4\): expected the controller's HOST:PORT, got 'grpc.example.com'",
        ),
        (("token: abc123", "token: 42"), r"token \(line 5\): expected text, got 42"),
        (("token: abc123", ""), r"token: expected the Exporter object's token \(`jmp admin create exporter`"),
        (("name: bench-1", "name: ''"), r"metadata.name \(line 3\): expected the Exporter object's name"),
        (
            ("export:", "tls: {ca: bm90IGEgY2VydA==}\nexport:"),
            r"tls.ca \(line 6\): expected base64 PEM certificates \(no PEM certificate in it\)",
        ),
        (("export:", "tls: {insecure: maybe}\nexport:"), r"tls.insecure \(line 6\): expected true or false"),
        (
            ("export:", "tls: {verify: no}\nexport:"),
            r"tls.verify \(line 6\): unknown key; expected one of ca, insecure",
        ),
        (
            ("export:", "grpcOptions: {grpc.x: [1]}\nexport:"),
            r"grpcOptions.grpc.x \(line 6\): expected text or an integer",
        ),
    ],
)
def test_bad_controller_keys_name_file_path_line_and_expectation(change, message):
    with pytest.raises(ConfigError, match=r"^board\.yaml: " + message):
        parse_config(config(CONTROLLER.replace(*change)), "board.yaml")


def test_the_exporter_objects_name_may_come_from_the_environment_as_upstream_reads_it(monkeypatch):
    body = config(CONTROLLER.replace("metadata: {namespace: lab, name: bench-1}\n", ""))
    with pytest.raises(
        ConfigError, match=r"metadata: expected the Exporter object's namespace .*JMP_NAMESPACE"
    ):
        parse_config(body, "board.yaml")
    monkeypatch.setenv("JMP_NAMESPACE", "lab")
    monkeypatch.setenv("JMP_NAME", "bench-2")
    settings = parse_config(body, "board.yaml").controller
    assert (settings.namespace, settings.name) == ("lab", "bench-2")
