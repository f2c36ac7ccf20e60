"""The test controller and router (tests/controller) as a bench service, with the identities
of two exporters (ours, upstream's) and one client, and their config files.

    python benchmarks/controller.py serve WORKDIR

Writes WORKDIR/ours.yaml and WORKDIR/upstream.yaml (ExporterConfigs with a MockPower, labels
``bench=ours`` and ``bench=upstream``) and WORKDIR/clients/bench.yaml (a ClientConfig), prints
``serving ENDPOINT WORKDIR`` and serves until it is stopped.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from controller import client_config, exporter_config, new_client, new_exporter  # noqa: E402
from controller.server import TestController  # noqa: E402

POWER = {"power": {"type": "jumpstarter_driver_power.driver.MockPower"}}


def serve(workdir: str) -> None:
    directory = Path(workdir)
    controller = TestController(directory)
    controller.start()
    for side in ("ours", "upstream"):
        name, token = new_exporter(controller, {"bench": side}, f"bench-{side}")
        exporter_config(controller, directory / f"{side}.yaml", name, token, POWER)
    name, token = new_client(controller, "bench")
    client_config(controller, directory / "clients" / "bench.yaml", name, token)
    print(f"serving {controller.endpoint} {directory}", flush=True)
    threading.Event().wait()  # until the harness stops the process


if __name__ == "__main__":
    serve(sys.argv[2])
