"""Regenerate the gRPC stubs in jumpstarter_jupyter/protocol/v1 from proto/.

    python scripts/gen_protos.py          # write the stubs
    python scripts/gen_protos.py --check  # exit 1 if the committed stubs are stale

protoc writes imports by the .proto paths (`from jumpstarter.v1 import ...`); a top-level
`jumpstarter.v1` would collide with upstream Jumpstarter and with our `jumpstarter` shim, so
the imports are rewritten to `jumpstarter_jupyter.protocol.v1`. The protobuf packages on the
wire stay `jumpstarter.v1` and `jumpstarter_jupyter.v1`.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "jumpstarter_jupyter" / "protocol" / "v1"
IMPORT_RE = re.compile(r"^from (jumpstarter|jumpstarter_jupyter)\.v1 import", re.MULTILINE)


def generate() -> dict[str, str]:
    """Run protoc on every .proto file and return {stub file name: text}."""
    import grpc_tools
    from grpc_tools import protoc

    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            f"--python_out={tmp}",
            f"--pyi_out={tmp}",
            f"--grpc_python_out={tmp}",
            *protos,
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {protos}")
        stubs = {}
        for path in sorted(Path(tmp).rglob("*.py*")):
            text = IMPORT_RE.sub("from jumpstarter_jupyter.protocol.v1 import", path.read_text())
            stubs[path.name] = text
        return stubs


def main(argv: list[str]) -> int:
    stubs = generate()
    if "--check" in argv:
        stale = [
            name
            for name, text in stubs.items()
            if not (OUT_DIR / name).exists() or (OUT_DIR / name).read_text() != text
        ]
        if stale:
            print(f"stale stubs in {OUT_DIR}: {', '.join(stale)}; run scripts/gen_protos.py")
            return 1
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in stubs.items():
        (OUT_DIR / name).write_text(text)
    (OUT_DIR / "__init__.py").touch()
    print(f"wrote {len(stubs)} stubs to {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
