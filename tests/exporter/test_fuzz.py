"""Bad input, generated: wire calls of every value shape, unknown UUIDs and methods, malformed
and oversized messages, and exporter configs. The exporter (its own process) must answer each
with a status that names the problem, never crash, never show a traceback, and keep serving.

``make test`` runs a quick pass; ``make fuzz`` sets ``JMP_FUZZ_EXAMPLES`` for a long one.
"""

from __future__ import annotations

import os

import grpc
import pytest
import yaml
from google.protobuf import empty_pb2, struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jumpstarter_jupyter.errors import ConfigError
from jumpstarter_jupyter.exporter import build_tree, parse_config
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2 as pb
from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2_grpc
from support import start_exporter

EXAMPLES = int(os.environ.get("JMP_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize="JMP_FUZZ_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
export:
  power: {type: MockPower}
  serial: {type: PySerial, config: {url: "loop://"}}
  storage: {type: MockStorageMux}
  relay: {type: MockDigitalOutput}
  net: {type: TcpNetwork, config: {host: 127.0.0.1, port: 9}}
"""
# what a refusal may be; every one must carry details naming the problem
REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.fixture(scope="module")
def exporter(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fuzz")
    (directory / "board.yaml").write_text(CONFIG)
    log = directory / "exporter.log"
    process = start_exporter(
        "run", directory / "board.yaml", "--socket", directory / "board.sock", log=str(log)
    )
    channel = grpc.insecure_channel(f"unix:{directory / 'board.sock'}")
    stub = jumpstarter_pb2_grpc.ExporterServiceStub(channel)
    report = stub.GetReport(empty_pb2.Empty())
    methods = {
        entry.uuid: [
            m["name"] for m in yaml.safe_load(entry.labels.get("jumpstarter-jupyter.dev/methods", "[]"))
        ]
        for entry in report.reports
    }
    yield stub, channel, methods
    assert process.poll() is None, "the exporter died under fuzzing"
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    channel.close()
    process.terminate()
    process.wait(timeout=60)


def values(depth: int = 3) -> st.SearchStrategy[struct_pb2.Value]:
    """Every wire value shape, NaN and infinities included."""
    leaf = st.one_of(
        st.just(struct_pb2.Value(null_value=0)),
        st.floats(allow_nan=True, allow_infinity=True).map(lambda n: struct_pb2.Value(number_value=n)),
        st.text(max_size=40).map(lambda s: struct_pb2.Value(string_value=s)),
        st.booleans().map(lambda b: struct_pb2.Value(bool_value=b)),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(
                lambda items: struct_pb2.Value(list_value=struct_pb2.ListValue(values=items))
            ),
            st.dictionaries(st.text(max_size=10), inner, max_size=4).map(
                lambda fields: struct_pb2.Value(struct_value=struct_pb2.Struct(fields=fields))
            ),
        ),
        max_leaves=depth * 4,
    )


def _refused_well(error: grpc.RpcError) -> None:
    assert error.code() in REFUSALS, (error.code(), error.details())
    assert error.details(), error.code()
    assert "Traceback" not in error.details()


def _names(methods: dict[str, list[str]]) -> st.SearchStrategy[str]:
    known = sorted({name for names in methods.values() for name in names})
    return st.one_of(
        st.sampled_from(known),
        st.sampled_from(["_recv_internal", "__init__", "teardown", "walk"]),
        st.text(max_size=20),
    )


@FUZZ
@given(data=st.data())
def test_driver_calls_with_any_arguments_are_answered_or_refused_with_a_reason(exporter, data):
    stub, _, methods = exporter
    uuid = data.draw(st.one_of(st.sampled_from(sorted(methods)), st.uuids().map(str), st.text(max_size=10)))
    method = data.draw(_names(methods))
    args = data.draw(st.lists(values(), max_size=4))
    streaming = data.draw(st.booleans())
    try:
        if streaming:
            responses = stub.StreamingDriverCall(
                pb.StreamingDriverCallRequest(uuid=uuid, method=method, args=args), timeout=2
            )
            for _, _ in zip(range(3), responses, strict=False):
                pass
            responses.cancel()
        else:
            stub.DriverCall(pb.DriverCallRequest(uuid=uuid, method=method, args=args), timeout=2)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.CANCELLED:  # ours, after three items
            _refused_well(error)
    assert stub.GetReport(empty_pb2.Empty(), timeout=10).reports  # still serving


@FUZZ
@given(payload=st.binary(max_size=200))
def test_malformed_messages_are_refused_and_the_exporter_keeps_serving(exporter, payload):
    stub, channel, _ = exporter
    raw = channel.unary_unary("/jumpstarter.v1.ExporterService/DriverCall")
    try:
        raw(payload, timeout=5)
    except grpc.RpcError as error:
        _refused_well(error)
    assert stub.GetReport(empty_pb2.Empty(), timeout=10).reports


def test_an_oversized_message_is_refused_and_the_exporter_keeps_serving(exporter):
    stub, _, methods = exporter
    huge = struct_pb2.Value(string_value="x" * (5 << 20))
    with pytest.raises(grpc.RpcError) as refused:
        stub.DriverCall(pb.DriverCallRequest(uuid=next(iter(methods)), method="on", args=[huge]), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert stub.GetReport(empty_pb2.Empty(), timeout=10).reports


KEYS = [
    "apiVersion",
    "kind",
    "export",
    "type",
    "config",
    "children",
    "ref",
    "description",
    "methods_description",
    "lease",
    "hooks",
    "required",
    "heartbeat",
    "beforeLease",
    "afterLease",
    "script",
    "timeout",
    "onFailure",
    "url",
    "voltage",
    "power",
    "MockPower",
    "PySerial",
    "TcpNetwork",
]
yaml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-5, 10**6),
        st.floats(allow_nan=False),
        st.text(max_size=12),
        st.sampled_from(KEYS),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), inner, max_size=4),
    ),
    max_leaves=12,
)


@FUZZ
@given(
    document=st.one_of(
        st.dictionaries(st.sampled_from(KEYS), yaml_values, max_size=5).map(lambda d: yaml.safe_dump(d)),
        st.text(max_size=200),
        st.builds(
            lambda name, entry: yaml.safe_dump({"export": {name: entry}}), st.text(max_size=8), yaml_values
        ),
    )
)
def test_any_exporter_config_loads_or_fails_with_a_config_error(document):
    try:
        config = parse_config(document, "fuzzed.yaml")
    except ConfigError as error:
        assert str(error).startswith("fuzzed.yaml"), error
        return
    try:
        root = build_tree(config)
    except ConfigError as error:
        assert str(error).startswith("fuzzed.yaml"), error
        return
    root.teardown()


@pytest.mark.parametrize(
    "document, message",
    [
        ("0:", "fuzzed.yaml: export: expected a mapping of driver names to entries"),
        (
            "export: {a: {type: MockPower, config: {voltage: 2001-13-45}}}",
            "fuzzed.yaml: export.a.config.voltage (line 1): invalid value: month must be in 1..12",
        ),
    ],
)
def test_configs_the_fuzzer_found(document, message):
    with pytest.raises(ConfigError) as error:
        parse_config(document, "fuzzed.yaml")
    assert str(error.value) == message
