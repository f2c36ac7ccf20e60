"""A shelf of four labelled boards for the farm tests (``from shelf import Shelf``).

Four exporters in their own processes (``jumpstarter-jupyter run``), leases required, each
with a ``beforeLease`` hook that notes every lease it starts, and a pool file naming them:

    board   exporter labels (config / --label)   pool labels
    imx-1   soc=imx8mp, rev=a                    site=lab1
    imx-2   soc=imx8mp, rev=a                    site=lab2, rev=b  (the pool's label wins)
    am-1    soc=am62                             site=lab1
    am-2    soc=am62                             site=lab2
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jumpstarter_jupyter as jj
from jumpstarter_jupyter.protocol.v1 import lease_pb2
from support import start_exporter, wait_for

DEADLINE = 60
CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
labels:
  soc: {soc}
export:
  power:
    type: MockPower
lease:
  required: true
  heartbeat: 2s
hooks:
  beforeLease:
    script: echo "$CLIENT_NAME" >> {marker}
"""
BOARDS = {  # name: (soc, --label arguments, pool labels)
    "imx-1": ("imx8mp", ["--label", "rev=a"], {"site": "lab1"}),
    "imx-2": ("imx8mp", ["--label", "rev=a"], {"site": "lab2", "rev": "b"}),
    "am-1": ("am62", [], {"site": "lab1"}),
    "am-2": ("am62", [], {"site": "lab2"}),
}


class Shelf:
    """The four exporters, the pool file naming them (in ``config_dir``), and helpers."""

    def __init__(self, directory: Path, config_dir: Path):
        self.directory, self.config_dir = directory, config_dir
        self.addresses = {name: f"unix:{directory / name}.sock" for name in BOARDS}
        with ThreadPoolExecutor(len(BOARDS)) as starting:
            self.processes = dict(zip(BOARDS, starting.map(self._start, BOARDS), strict=True))
        config_dir.mkdir(parents=True, exist_ok=True)
        self.pool_file = config_dir / "jumpstarter-pool.yaml"
        self.pool_file.write_text(
            "exporters:\n"
            + "".join(
                f"  {name}:\n    endpoint: {self.addresses[name]}\n    labels: {labels}\n"
                for name, (_, _, labels) in BOARDS.items()
            ).replace("'", "")
        )

    def _start(self, name: str):
        soc, labels, _ = BOARDS[name]
        config = self.directory / f"{name}.yaml"
        config.write_text(CONFIG.format(soc=soc, marker=self.marker(name)))
        return start_exporter(
            "run",
            config,
            "--socket",
            self.directory / f"{name}.sock",
            *labels,
            log=str(self.directory / f"{name}.log"),
        )

    def marker(self, name: str) -> Path:
        """The file the board's beforeLease hook appends a line to, for every lease it starts."""
        return self.directory / f"{name}.hooks"

    def hooks_run(self, name: str) -> int:
        return len(self.marker(name).read_text().splitlines()) if self.marker(name).exists() else 0

    def status(self, name: str) -> lease_pb2.LeaseStatus:
        with jj.connect(self.addresses[name], lease=False) as watcher:
            return watcher.connection.lease_status()

    def queue(self, name: str) -> list[str]:
        return [waiter.purpose for waiter in self.status(name).queue]

    def wait_until_free(self, *names: str) -> None:
        """Every board named is free: nobody holds it, nobody waits (leases end asynchronously)."""

        def free() -> bool:
            return all(not self.status(n).HasField("lease") and not self.status(n).queue for n in names)

        wait_for(free, DEADLINE, f"{', '.join(names)} to be free")

    def env(self) -> dict[str, str]:
        """An environment whose pool is this shelf's (for processes the tests start)."""
        return {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(self.config_dir),
            "JUPYTER_CONFIG_PATH": str(self.directory / "no-system-config"),
        }

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(DEADLINE)
