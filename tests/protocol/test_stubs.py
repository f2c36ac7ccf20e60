"""The committed gRPC stubs are what scripts/gen_protos.py makes from proto/."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_stubs_are_current():
    result = subprocess.run(
        [sys.executable, "scripts/gen_protos.py", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_stubs_import_under_our_package_not_a_top_level_jumpstarter():
    for stub in (ROOT / "jumpstarter_jupyter/protocol").rglob("*_pb2*.py"):
        text = stub.read_text()
        assert "from jumpstarter." not in text and "import jumpstarter." not in text, stub.name


def test_wire_names_are_upstreams():
    from jumpstarter_jupyter.protocol.v1 import jumpstarter_pb2, router_pb2

    assert (
        jumpstarter_pb2.DESCRIPTOR.services_by_name["ExporterService"].full_name
        == "jumpstarter.v1.ExporterService"
    )
    assert router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name == "jumpstarter.v1.RouterService"
    fields = {f.name: f.number for f in jumpstarter_pb2.DriverInstanceReport.DESCRIPTOR.fields}
    assert fields == {"uuid": 1, "parent_uuid": 2, "labels": 3, "description": 4, "methods_description": 5}
    assert router_pb2.FRAME_TYPE_GOAWAY == 7 and router_pb2.FRAME_TYPE_PING == 6
