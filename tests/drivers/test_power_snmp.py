"""SnmpPower against a real agent: Debian's net-snmp ``snmpd`` on a free loopback UDP port with only
its own config (``benchmarks/snmp_agent.py``: never the machine's agent, config or port 161),
serving a Raritan-shaped outlet table from a ``pass_persist`` script that keeps the outlets in a
JSON file. SNMP v2c and v3 authPriv."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from jumpstarter_jupyter import ConfigError, DriverError, DriverInvalidArgument, DriverTimeout, connect
from jumpstarter_jupyter.drivers.power.snmp import PRESETS, RARITAN_SWITCHING, SnmpPower
from jumpstarter_jupyter.exporter import build_tree, parse_config
from support import client_for, run_cli, serving

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from snmp_agent import AUTH_KEY, PRIV_KEY, USER, Agent, running


@pytest.fixture(scope="module")
def agent(tmp_path_factory) -> Iterator[Agent]:
    """One private snmpd for the module (about 0.1 s to start)."""
    with running(tmp_path_factory.mktemp("snmpd")) as agent:
        yield agent


def v2c(agent: Agent, **config) -> SnmpPower:
    return SnmpPower(
        **{
            "host": "127.0.0.1",
            "port": agent.port,
            "plug": 2,
            "community": "private",
            "timeout": 2.0,
            **config,
        }
    )


def v3(agent: Agent, **config) -> SnmpPower:
    return SnmpPower(
        **{
            "host": "127.0.0.1",
            "port": agent.port,
            "plug": 3,
            "user": USER,
            "auth_protocol": "SHA",
            "auth_key": AUTH_KEY,
            "priv_protocol": "AES",
            "priv_key": PRIV_KEY,
            "timeout": 2.0,
            **config,
        }
    )


def test_v2c_on_off_cycle_read_back(agent):
    agent.reset()
    with client_for(v2c(agent), "power") as power:
        assert power.state() is False
        power.on()
        assert agent.outlets() == {"1": False, "2": True, "3": False, "4": False} and power.state() is True
        power.off()
        assert agent.outlets()["2"] is False and power.state() is False
        power.cycle(wait=0)
        assert agent.outlets()["2"] is True and power.state() is True
        agent.reset()  # switched at the PDU itself: state() asks the PDU, it remembers nothing
        assert power.state() is False
        assert power.metered() is False


def test_v3_auth_priv_with_the_raritan_preset(agent):
    agent.reset(o3=True)
    with client_for(v3(agent, preset="raritan"), "power") as power:
        assert power.state() is True  # outletSwitchingState = on(7)
        power.off()
        assert agent.outlets()["3"] is False and power.state() is False  # off(8)
        assert run_cli(power, "on").returncode == 0
        assert agent.outlets()["3"] is True and power.state() is True


def test_upstream_config_resolves_to_ours(agent):
    config = parse_config(
        f"""apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power:
    type: jumpstarter_driver_snmp.driver.SNMPServer
    config:
      host: 127.0.0.1
      port: {agent.port}
      user: {USER}
      plug: 4
      auth_protocol: SHA
      auth_key: {AUTH_KEY}
      priv_protocol: AES
      priv_key: {PRIV_KEY}
""",
        "upstream.yaml",
    )
    tree = build_tree(config)
    power = tree.children["power"]
    assert isinstance(power, SnmpPower) and power.oid == RARITAN_SWITCHING and power.timeout == 5.0
    agent.reset()
    with serving(tree) as exporter, connect(exporter.address) as dut:
        dut.power.on()
        assert agent.outlets()["4"] is True and dut.power.state() is True


def test_wrong_v3_key_is_named(agent):
    with (
        client_for(v3(agent, auth_key="not-the-key"), "power") as power,
        pytest.raises(
            DriverError,
            match=r"dut\.power\.on: PDU 127\.0\.0\.1:\d+ outlet 3: wrong credentials: the PDU "
            r"rejected the authentication key of user 'lab'.*\[PermissionError\]",
        ),
    ):
        power.on()
    with (
        client_for(v3(agent, user="nobody"), "power") as power,
        pytest.raises(DriverError, match="wrong credentials: the PDU has no SNMPv3 user 'nobody'"),
    ):
        power.state()


def test_wrong_community_is_no_answer_within_the_timeout(agent):
    with client_for(v2c(agent, community="wrong", timeout=1.0), "power") as power:
        start = time.monotonic()
        with pytest.raises(
            DriverTimeout,
            match=r"dut\.power\.on: PDU 127\.0\.0\.1:\d+ outlet 2: no answer \(wrong community, "
            r"or the PDU is unreachable\) within 1 s",
        ):
            power.on()
        assert time.monotonic() - start < 10  # a hang guard, not a timing test: the configured 1 s plus slack


def test_an_outlet_that_does_not_exist(agent):
    with client_for(v2c(agent, plug=9), "power") as power:
        with pytest.raises(
            DriverError,
            match=rf"dut\.power\.on: PDU 127\.0\.0\.1:\d+ outlet 9 does not exist: the PDU "
            rf"has no object {RARITAN_SWITCHING}\.9 \[LookupError\]",
        ):
            power.on()
        with pytest.raises(DriverError, match="outlet 9 does not exist"):
            power.state()


def test_a_read_only_community_is_refused(agent):
    agent.reset()
    with client_for(v2c(agent, community="public"), "power") as power:
        assert power.state() is False
        with pytest.raises(
            DriverError,
            match=r"outlet 2: the PDU refused setting it to 1 .*: noAccess "
            r"\(a read-only community or user\?\)",
        ):
            power.on()
    with (
        client_for(v2c(agent, on_value=5), "power") as power,
        pytest.raises(
            DriverError, match=r"refused setting it to 5 .*: wrongValue \(check on_value and off_value\)"
        ),
    ):
        power.on()
    assert agent.outlets()["2"] is False


def test_config_errors_name_the_key():
    def build(config: str):
        return build_tree(
            parse_config(
                "apiVersion: jumpstarter.dev/v1alpha1\nkind: ExporterConfig\nexport:\n"
                f"  power:\n    type: SnmpPower\n    config: {config}\n",
                "pdu.yaml",
            )
        )

    with pytest.raises(
        ConfigError,
        match=r"pdu.yaml: export.power.config \(line 6\): SnmpPower: give `community` "
        r"\(SNMP v2c\) or `user` \(SNMP v3\), not neither",
    ):
        build("{host: pdu, plug: 1}")
    with pytest.raises(
        ConfigError, match="preset must be one of raritan, apc, apc-rpdu2, apc-masterswitch, poe, got 'eaton'"
    ):
        build("{host: pdu, plug: 1, community: private, preset: eaton}")
    with pytest.raises(ConfigError, match="auth_protocol must be one of NONE, MD5, SHA.*got 'SHA1'"):
        build("{host: pdu, plug: 1, user: lab, auth_protocol: SHA1, auth_key: k}")
    with pytest.raises(ConfigError, match="priv_protocol AES needs priv_key and an auth_protocol"):
        build("{host: pdu, plug: 1, user: lab, priv_protocol: AES, priv_key: k}")
    with pytest.raises(ConfigError, match="oid must be a numeric OID"):
        build("{host: pdu, plug: 1, community: private, oid: PowerNet-MIB::sPDUOutletCtl}")


def test_presets_fill_oids_and_values():
    apc = SnmpPower(host="pdu", plug=5, community="private", preset="apc")
    assert (apc.oid, apc.on_value, apc.off_value) == ("1.3.6.1.4.1.318.1.1.12.3.3.1.1.4", 1, 2)
    assert (apc.state_oid, apc.state_on_value, apc.state_off_value) == (apc.oid, 1, 2)
    explicit = SnmpPower(
        host="pdu", plug=5, community="private", oid=".1.3.6.1.4.1.99.1", on_value=3, off_value=4
    )
    assert (explicit.oid, explicit.state_oid, explicit.state_on_value, explicit.state_off_value) == (
        "1.3.6.1.4.1.99.1",
        "1.3.6.1.4.1.99.1",
        3,
        4,
    )
    assert all(preset.source for preset in PRESETS.values())


def test_a_state_that_is_neither_on_nor_off_is_named(agent):
    agent.reset()
    with (
        client_for(v2c(agent, state_on_value=7, state_off_value=8), "power") as power,
        pytest.raises(
            DriverInvalidArgument,
            match=rf"outlet 2: {RARITAN_SWITCHING}\.2 = 0, neither on \(7\) nor "
            r"off \(8\); check the preset or state values",
        ),
    ):
        power.state()
