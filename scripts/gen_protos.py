"""Regenerate the gRPC stubs in jumpstarter_jupyter/protocol/ from proto/.

    python scripts/gen_protos.py          # write the stubs
    python scripts/gen_protos.py --check  # exit 1 if the committed stubs are stale

protoc writes imports by the .proto paths (`from jumpstarter.v1 import ...`); a top-level
`jumpstarter.v1` would collide with upstream Jumpstarter and with our `jumpstarter` shim, so
the stubs move under `jumpstarter_jupyter.protocol` and their imports with them:
`jumpstarter/v1` and `jumpstarter_jupyter/v1` go to `jumpstarter_jupyter.protocol.v1`,
`jumpstarter/client/v1` to `jumpstarter_jupyter.protocol.client.v1`. The protobuf packages on
the wire stay `jumpstarter.v1`, `jumpstarter.client.v1` and `jumpstarter_jupyter.v1`.

proto/jumpstarter/ is upstream's, recovered by scripts/recover_upstream_protos.py; its
client.proto imports google/api/*.proto, found in googleapis-common-protos (a runtime
dependency: the stubs import its `google.api` modules).
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PROTOCOL_DIR = ROOT / "jumpstarter_jupyter" / "protocol"
# a .proto directory (and protoc's import path) without its first part, under jumpstarter_jupyter.protocol
IMPORT_RE = re.compile(r"^from (?:jumpstarter|jumpstarter_jupyter)((?:\.client)?\.v1) import", re.MULTILINE)


def out_path(generated: Path) -> Path:
    """Where a stub protoc wrote as ``jumpstarter[_jupyter]/[client/]v1/NAME`` goes in the package."""
    return Path(*generated.parts[1:])


def generate() -> dict[Path, str]:
    """Run protoc on every .proto file and return {stub path under protocol/: text}."""
    import google.api.annotations_pb2
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    google_api = Path(google.api.annotations_pb2.__file__).parent.parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"-I{google_api}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {protos}")
        stubs = {}
        for path in sorted(Path(tmp).rglob("*.py*")):
            text = IMPORT_RE.sub(r"from jumpstarter_jupyter.protocol\1 import", path.read_text())
            stubs[out_path(path.relative_to(tmp))] = text
        return stubs


def main(argv: list[str]) -> int:
    stubs = generate()
    if "--check" in argv:
        stale = [
            name
            for name, text in stubs.items()
            if not (PROTOCOL_DIR / name).exists() or (PROTOCOL_DIR / name).read_text() != text
        ]
        if stale:
            print(f"stale stubs in {PROTOCOL_DIR}: {', '.join(map(str, stale))}; run scripts/gen_protos.py")
            return 1
        return 0
    for name, text in stubs.items():
        (PROTOCOL_DIR / name).parent.mkdir(parents=True, exist_ok=True)
        (PROTOCOL_DIR / name).write_text(text)
        for package in (PROTOCOL_DIR / name).relative_to(PROTOCOL_DIR).parents:
            (PROTOCOL_DIR / package / "__init__.py").touch()
    print(f"wrote {len(stubs)} stubs to {PROTOCOL_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
