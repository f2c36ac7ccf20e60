"""Our client at an upstream controller (the test controller, tests/controller): upstream's client
config format and its errors, unsatisfiable selectors, an unreachable or refusing controller, and
pool entries that name a controller. Leases of a live exporter: tests/upstream/test_controller_interop.py."""

from __future__ import annotations

import socket
import time

import pytest

import jumpstarter_jupyter as jj
from controller import client_config, new_client, new_exporter
from jumpstarter_jupyter.client import pool
from jumpstarter_jupyter.client.controller import load_client_config, parse_client_config

GOOD = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ClientConfig
metadata: {namespace: lab, name: alice}
endpoint: controller.example.com:443
token: abc
tls: {ca: "", insecure: false}
grpcOptions: {grpc.keepalive_time_ms: 30000}
drivers: {allow: [], unsafe: false}
leases: {acquisition_timeout: 600, retry_timeout: 300}
"""


@pytest.fixture
def configs(tmp_path, monkeypatch):
    """``$JMP_CLIENT_CONFIG_HOME`` in tmp_path: write ``clients/NAME.yaml`` there."""
    monkeypatch.setenv("JMP_CLIENT_CONFIG_HOME", str(tmp_path))
    return tmp_path / "clients"


def test_upstreams_client_config_reads_as_jmp_writes_it():
    config = parse_client_config(GOOD, "alice.yaml", "alice")
    settings = config.settings
    assert (settings.endpoint, settings.token, settings.namespace, settings.name) == (
        "controller.example.com:443",
        "abc",
        "lab",
        "alice",
    )
    assert config.acquisition_timeout == 600
    assert ("grpc.keepalive_time_ms", 30000) in settings.options


@pytest.mark.parametrize(
    "old, new, where, expected",
    [
        ("token: abc\n", "", "alice.yaml: token: expected", "token"),
        ("metadata: {namespace: lab, name: alice}", "metadata: {namespace: lab}", "metadata", "name"),
        ('tls: {ca: "", insecure: false}', "tls: {ca: notbase64!}", "tls.ca (line 6)", "base64 PEM"),
        (
            'tls: {ca: "", insecure: false}',
            "tls: {insecure: maybe}",
            "tls.insecure (line 6)",
            "true or false",
        ),
        (
            "grpcOptions: {grpc.keepalive_time_ms: 30000}",
            "grpcOptions: [1]",
            "grpcOptions (line 7)",
            "mapping",
        ),
        ("acquisition_timeout: 600", "acquisition_timeout: soon", "leases.acquisition_timeout", "seconds"),
        ("kind: ClientConfig", "kind: ExporterConfig", "kind (line 2)", "ClientConfig"),
        ("token: abc\n", "token: abc\ntokne: x\n", "tokne (line 6)", "unknown key"),
    ],
)
def test_a_bad_client_config_names_file_path_and_what_was_expected(old, new, where, expected):
    with pytest.raises(jj.ConfigError) as caught:
        parse_client_config(GOOD.replace(old, new), "alice.yaml")
    assert where in str(caught.value) and expected in str(caught.value), str(caught.value)


def test_an_unknown_controller_name_lists_the_configs_found(configs):
    configs.mkdir()
    (configs / "lab.yaml").write_text(GOOD)
    (configs / "home.yaml").write_text(GOOD)
    with pytest.raises(jj.ConfigError) as caught:
        jj.connect(controller="nope", selector="board=x")
    message = str(caught.value)
    assert "'nope'" in message and str(configs) in message and "home, lab" in message
    assert load_client_config("lab").alias == "lab"


def test_an_unreachable_controller_fails_at_once_naming_it(configs):
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    configs.mkdir()
    (configs / "lab.yaml").write_text(GOOD.replace("controller.example.com:443", f"127.0.0.1:{port}"))
    started = time.monotonic()
    with pytest.raises(jj.ConnectionFailed) as caught:
        jj.connect(controller="lab", selector="board=x")
    assert time.monotonic() - started < 10
    message = str(caught.value)
    assert f"controller lab (127.0.0.1:{port}) is not reachable" in message and "lab.yaml" in message


def test_a_selector_nothing_matches_is_unsatisfiable_not_a_wait(controller, configs):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token)
    with pytest.raises(jj.LeaseUnsatisfiable) as caught:
        jj.connect(controller="lab", selector="board=nothing-has-this", wait=30)
    message = str(caught.value)
    assert "'board=nothing-has-this'" in message and "NoAccess" in message and "controller lab" in message
    (lease,) = controller.leases_of(name)
    assert lease.is_true("Unsatisfiable")


def test_a_refused_token_says_which_client_and_file(controller, configs):
    name, _ = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, "not-the-token")
    with pytest.raises(jj.ConfigError) as caught:
        jj.connect(controller="lab", selector="board=x")
    assert f"refused client default/{name}" in str(caught.value) and "lab.yaml" in str(caught.value)


def test_a_bad_selector_fails_before_asking_the_controller(controller, configs):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token)
    with pytest.raises(ValueError, match="column"):
        jj.connect(controller="lab", selector="board in (a")
    assert controller.leases_of(name) == []


def test_a_pool_entry_naming_a_controller_leases_from_it(controller, configs, tmp_path, monkeypatch):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token)
    user = tmp_path / "jupyter"
    user.mkdir()
    (user / "jumpstarter-pool.yaml").write_text(
        "exporters:\n  lab-rpi:\n    controller: lab\n    selector: board=rpi-nowhere\n"
    )
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(user))
    with pytest.raises(jj.LeaseUnsatisfiable, match="board=rpi-nowhere"):
        jj.connect("lab-rpi")
    assert len(controller.leases_of(name)) == 1
    with pytest.raises(jj.ConfigError, match="pool board 'lab-rpi' .* has no endpoint: controller lab"):
        pool.resolve("lab-rpi")  # what the command line's lease commands ask


def test_a_stopped_controller_is_unreachable_and_serves_again_on_the_same_port(controller, configs):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token)
    port = controller.port
    controller.stop()
    try:
        with pytest.raises(jj.ConnectionFailed, match="not reachable"):
            jj.connect(controller="lab", selector="board=x")
    finally:
        controller.start()
    assert controller.port == port
    with pytest.raises(jj.LeaseUnsatisfiable):  # the objects survived the restart
        jj.connect(controller="lab", selector="board=x")


def test_tls_insecure_trusts_what_the_controller_presents(controller, configs):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token, tls={"ca": "", "insecure": True})
    with pytest.raises(jj.LeaseUnsatisfiable):  # the controller answered over TLS
        jj.connect(controller="lab", selector="board=x")


def test_an_untrusted_certificate_fails_at_once_pointing_at_tls(controller, configs):
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token, tls={"ca": "", "insecure": False})
    started = time.monotonic()
    with pytest.raises(jj.ConnectionFailed) as caught:  # the system's roots do not hold the test's CA
        jj.connect(controller="lab", selector="board=x")
    assert time.monotonic() - started < 10
    assert "not reachable" in str(caught.value) and "tls" in str(caught.value)
    assert controller.leases_of(name) == []


def test_a_controller_restarting_during_the_wait_is_waited_for(controller, configs):
    """The lease waits for an exporter that is not connected (Pending, Offline); the controller
    stops and starts again meanwhile; the wait goes on and ends at its deadline."""
    new_exporter(controller, {"board": "offline-one"})
    name, token = new_client(controller)
    client_config(controller, configs / "lab.yaml", name, token)
    reasons: list[str] = []

    def heard(reason: str) -> None:
        reasons.append(reason)
        if reason.startswith("Offline") and len(reasons) == 1:
            controller.stop()
        elif "not reachable" in reason:
            controller.start()

    try:
        with pytest.raises(jj.LeaseTimeout, match="'board=offline-one'.*last: Offline"):
            jj.connect(controller="lab", selector="board=offline-one", wait=4, on_wait=heard)
    finally:
        controller.start()
    assert [r.split(":")[0] for r in reasons] == [
        "Offline",
        "the controller is not reachable; trying again",
        "Offline",
    ]
    (lease,) = controller.leases_of(name)
    assert lease.conditions["Ready"].reason == "Released"  # deleted when the wait gave up
