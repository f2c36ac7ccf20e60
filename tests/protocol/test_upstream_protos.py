"""proto/jumpstarter/ is upstream 0.9.0's protocol, exactly: protoc makes of our files the descriptors
upstream's jumpstarter-protocol stubs embed (less buf's file options and json_name), and
scripts/recover_upstream_protos.py prints the committed files."""

import subprocess
from pathlib import Path

import google.api.annotations_pb2
import grpc_tools
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[2]
RECOVER = ROOT / "scripts/recover_upstream_protos.py"


def normalised(proto: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    proto.ClearField("options")
    proto.ClearField("source_code_info")
    messages = list(proto.message_type)
    while messages:
        message = messages.pop()
        messages += message.nested_type
        for field in message.field:
            field.ClearField("json_name")
    return proto


def test_our_protos_compile_to_upstreams_descriptors(peer, tmp_path):
    subprocess.run(
        [peer / "bin/python", RECOVER, "--descriptors", tmp_path / "upstream.pb"], check=True, timeout=60
    )
    upstream = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "upstream.pb").read_bytes())
    names = [f.name for f in upstream.file]
    assert "jumpstarter/client/v1/client.proto" in names and "jumpstarter/v1/jumpstarter.proto" in names
    args = [
        "protoc",
        f"-I{ROOT / 'proto'}",
        f"-I{Path(grpc_tools.__file__).parent / '_proto'}",
        f"-I{Path(google.api.annotations_pb2.__file__).parents[2]}",
        f"--descriptor_set_out={tmp_path / 'ours.pb'}",
        *names,
    ]
    assert protoc.main(args) == 0
    ours = {
        f.name: f
        for f in descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "ours.pb").read_bytes()).file
    }
    for theirs in upstream.file:
        assert normalised(ours[theirs.name]) == normalised(theirs), theirs.name


def test_committed_protos_are_what_the_recovery_prints(peer, tmp_path):
    subprocess.run([peer / "bin/python", RECOVER, "--write", tmp_path], check=True, timeout=60)
    for recovered in tmp_path.rglob("*.proto"):
        relative = recovered.relative_to(tmp_path)
        assert (ROOT / "proto" / relative).read_text() == recovered.read_text(), relative
