"""The routed benchmark's services: the test controller and router (tests/controller) with
upstream's ``jmp run`` registered at it, serving one MockPower labelled ``bench=routed``, and our
``jumpstarter-jupyter run`` registered beside it, labelled ``bench=routed-ours``.

    python benchmarks/controller.py PEER_DIR WORKDIR   # prints "routed ready WORKDIR", serves until SIGTERM

Writes client configs ``WORKDIR/clients/ours.yaml`` and ``upstream.yaml`` (two Client objects,
so each side's lease is its own). Upstream's real controller needs Kubernetes; this one is the
one the tests validate against upstream's own exporter and ``jmp``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from controller import client_config, exporter_config, new_client, new_exporter  # noqa: E402
from controller.server import TestController  # noqa: E402

SELECTOR = "bench=routed"
POWER = {"power": {"type": "jumpstarter_driver_power.driver.MockPower"}}


def main(peer: str, workdir: str) -> None:
    directory = Path(workdir)
    controller = TestController(directory / "controller")
    controller.start()
    exporters = [  # (name prefix, its label bench=..., the command that runs its config)
        ("bench", "routed", [str(Path(peer) / "bin" / "jmp"), "run", "--exporter-config"]),
        ("bench-ours", "routed-ours", [str(Path(sys.executable).parent / "jumpstarter-jupyter"), "run"]),
    ]
    names, processes = [], []
    for prefix, label, command in exporters:
        name, token = new_exporter(controller, {"bench": label}, prefix)
        config = exporter_config(controller, directory / f"{prefix}-exporter.yaml", name, token, POWER)
        processes.append(
            subprocess.Popen([*command, str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        names.append(name)
    for side in ("ours", "upstream"):
        client, client_token = new_client(controller, side)
        client_config(controller, directory / "clients" / f"{side}.yaml", client, client_token)
    deadline = time.monotonic() + 60
    for name, exporter in zip(names, processes, strict=True):
        registered = controller.exporter(name)
        while not (registered.devices and registered.online):
            if exporter.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"exporter {name} did not register (exit {exporter.poll()})")
            time.sleep(0.1)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"routed ready {directory}", flush=True)
    while not stop.wait(1):
        pass
    for exporter in processes:
        exporter.terminate()  # while the controller is up: it unregisters, then exits
    for exporter in processes:
        try:
            exporter.wait(timeout=10)
        except subprocess.TimeoutExpired:
            exporter.kill()
    controller.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
