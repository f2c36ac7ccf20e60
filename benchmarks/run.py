"""`make bench`: our stack side by side with upstream Jumpstarter 0.9.0 and raw ceilings.

    python benchmarks/run.py [--quick] [--rounds N] [--only KEY,...]

Starts, on loopback, our exporter and upstream's exporter serving ``bench.yaml``, a raw
grpcio server and a TCP echo server; then, for each measurement, runs several rounds,
each round one fresh client process per side (ours, upstream, raw) in turn. Prints the
medians, their ratios and the targets, and writes them, dated and with the machine, to
``docs/_data/bench.json`` (committed: the documentation's Performance page renders it).
``--quick`` uses small sizes and one round, and runs upstream's client without ``jmp shell``
(with the variables the shell would set): it checks the harness, its numbers claim nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402
from figures import MEASUREMENTS, ROWS, Sizes  # noqa: E402
from machine import describe  # noqa: E402
from table import render  # noqa: E402

RESULTS = services.HERE.parent / "docs" / "_data" / "bench.json"
SIDE_TIMEOUT = 600


@dataclass
class Bench:
    """The running services and where the side scripts find them."""

    workdir: Path
    peer: Path
    sizes: Sizes
    children: set[str]
    shell: bool = True  # upstream's side under `jmp shell`, as its users run it
    services: dict[str, services.Service] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)

    def service(self, name: str) -> services.Service:
        """Start ``name`` on first use; it runs until :meth:`stop`."""
        if name not in self.services:
            self.services[name] = self._start(name)
        return self.services[name]

    def address(self, name: str, group: int | str = 1) -> str:
        return self.service(name).match.group(group)

    def _start(self, name: str) -> services.Service:
        if name == "echo":
            return services.echo_server()
        if name == "echo-unix":
            return services.echo_server(str(self.workdir / "echo.sock"))
        if name == "ours-hosted":
            return services.our_exporter(self.hosted_config())
        if name == "upstream-hosted":
            return services.upstream_exporter(self.peer, self.hosted_config())
        if name == "raw":
            return services.raw_server(str(self.workdir / "raw.sock"))
        if name == "raw-aio":
            return services.raw_aio_server(str(self.workdir / "raw-aio.sock"))
        if name == "ours":
            return services.our_exporter(self.config())
        if name == "ours-unix":
            return services.our_exporter(self.config(), str(self.workdir / "ours.sock"))
        if name == "upstream":
            return services.upstream_exporter(self.peer, self.config())
        if name == "demo":
            return services.our_demo()
        if name == "ours-1000":
            return services.our_exporter(self.wide_config())
        if name == "upstream-1000":
            return services.upstream_exporter(self.peer, self.wide_config())
        if name == "ours-storm":
            return services.our_exporter(self.storm_config())
        if name == "farm":
            return services.farm(self.sizes.farm, self.sizes.farm_virtual, self.workdir)
        if name == "routed":
            return services.routed(self.peer, self.workdir)
        if name == "flood-source":
            return services.flood_source(self.sizes.flood_rate)
        if name == "ours-flood":
            return services.our_exporter(self.flood_config())
        if name == "snmp-agent":
            return services.snmp_agent(self.workdir / "snmp")
        if name == "ours-snmp":
            return services.our_exporter(self.snmp_config())
        if name == "ours-qemu":
            return services.our_exporter(self.qemu_config())
        if name == "ours-sd":
            return services.our_exporter(
                self._write(
                    "sd.yaml",
                    {
                        "apiVersion": "jumpstarter.dev/v1alpha1",
                        "kind": "ExporterConfig",
                        "export": {
                            "storage": {"type": "StorageDevice", "config": {"device": self.loop_device()}}
                        },
                    },
                )
            )
        raise KeyError(name)

    def config(self) -> str:
        """``bench.yaml`` with the echo server's port, keeping the children the run needs."""
        if "bench" not in self.files:
            config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
            config["export"] = {k: v for k, v in config["export"].items() if k in self.children}
            if "net" in config["export"]:
                config["export"]["net"]["config"]["port"] = int(self.address("echo").rpartition(":")[2])
            self.files["bench"] = self._write("bench.yaml", config)
        return self.files["bench"]

    def wide_config(self) -> str:
        """An exporter with ``sizes.tree`` power drivers."""
        if "wide" not in self.files:
            config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
            power = config["export"]["power"]
            config["export"] = {f"power{i:04d}": dict(power) for i in range(self.sizes.tree)}
            self.files["wide"] = self._write("wide.yaml", config)
        return self.files["wide"]

    def hosted_config(self) -> str:
        """Upstream's own MockPower and UnixNetwork (to the unix echo server): hosted in an upstream
        exporter process by ours, served directly by upstream's (which ignores the `hosted` keys)."""
        if "hosted" not in self.files:
            self.address("echo-unix")
            config = {
                "apiVersion": "jumpstarter.dev/v1alpha1",
                "kind": "ExporterConfig",
                "metadata": {"namespace": "default", "name": "hosted"},
                "hosted": {"python": str(self.peer / "bin" / "python")},
                "export": {
                    "power": {"type": "jumpstarter_driver_power.driver.MockPower", "hosted": True},
                    "unixnet": {
                        "type": "jumpstarter_driver_network.driver.UnixNetwork",
                        "config": {"path": str(self.workdir / "echo.sock")},
                    },
                },
            }
            self.files["hosted"] = self._write("hosted.yaml", config)
        return self.files["hosted"]

    def storm_config(self) -> str:
        """Power plus a digital input whose waits the storm abandons (ours only: upstream's
        peer has no gpiod driver)."""
        config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
        config["export"] = {
            "power": config["export"]["power"],
            "led": {"type": "jumpstarter_jupyter.drivers.gpio.driver.MockDigitalInput"},
        }
        return self._write("storm.yaml", config)

    def flood_config(self) -> str:
        """A serial port on the flooding pty."""
        config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
        config["export"] = {
            "serial": {**config["export"]["serial"], "config": {"url": self.address("flood-source")}}
        }
        return self._write("flood.yaml", config)

    def snmp_config(self) -> str:
        """An SnmpPower outlet of the private net-snmp agent (ours only: upstream's peer has no
        SNMP driver installed)."""
        host, _, port = self.address("snmp-agent").rpartition(":")
        config = {
            "apiVersion": "jumpstarter.dev/v1alpha1",
            "kind": "ExporterConfig",
            "export": {
                "pdu": {
                    "type": "SnmpPower",
                    "config": {"host": host, "port": int(port), "plug": 1, "community": "private"},
                }
            },
        }
        return self._write("snmp.yaml", config)

    def qemu_config(self) -> str:
        """An x86_64 QEMU board whose CPU waits for the debugger at power on (nothing boots)."""
        from jumpstarter_jupyter.drivers.qemu.images import build

        build("x86_64")
        config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
        config["export"] = {"dut": {"type": "QemuBoard", "config": {"gdb_wait": True}}}
        return self._write("qemu.yaml", config)

    def image(self) -> str:
        """The file flashed through the storage mux (incompressible, ``sizes.flash`` bytes)."""
        if "image" not in self.files:
            path = self.workdir / "image.bin"
            with open(path, "wb") as out:
                block = bytes(range(256)) * 4096
                for i in range(self.sizes.flash // len(block)):
                    out.write(bytes([i & 0xFF]) + block[1:])
            self.files["image"] = str(path)
        return self.files["image"]

    def loop_device(self) -> str:
        """A real loop device over a sparse file of ``sizes.sparse`` bytes (detached by :meth:`stop`)."""
        if "loop" not in self.files:
            backing = self.workdir / "card.backing"
            with open(backing, "wb") as out:
                out.truncate(max(self.sizes.sparse, self.sizes.flash))
            self.files["loop"] = subprocess.run(
                ["losetup", "-f", "--show", str(backing)], check=True, capture_output=True, text=True
            ).stdout.strip()
        return self.files["loop"]

    def sparse_image(self) -> str:
        """A ``sizes.sparse`` image with a tenth of it mapped in ten places, and bmaptool's bmap of it."""
        if "sparse" not in self.files:
            path = self.workdir / "sparse.img"
            with open(path, "wb") as out:
                out.truncate(self.sizes.sparse)
                for piece in range(10):
                    out.seek(piece * self.sizes.sparse // 10)
                    out.write(os.urandom(self.sizes.sparse // 100))
            subprocess.run(
                ["bmaptool", "create", "-o", f"{path}.bmap", str(path)], check=True, capture_output=True
            )
            self.files["sparse"] = str(path)
        return self.files["sparse"]

    def _write(self, name: str, config: dict) -> str:
        path = self.workdir / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return str(path)

    def command(self, side: str, script: str, args: list[str], endpoint: str | None = None) -> list[str]:
        """The argv of one side's client process."""
        path = str(services.HERE / script)
        if side == "upstream":
            python = str(self.peer / "bin" / "python")
            if not self.shell:  # the variables `jmp shell` sets for its child
                return [
                    "env",
                    f"JUMPSTARTER_HOST={endpoint}",
                    "JMP_GRPC_INSECURE=1",
                    "JMP_DRIVERS_ALLOW=UNSAFE",
                    "JMP_EXPORTER=direct",
                    "JMP_LEASE=direct",
                    "_JMP_SUPPRESS_DRIVER_WARNINGS=1",
                    python,
                    path,
                    *args,
                ]
            return [
                str(self.peer / "bin" / "jmp"),
                "shell",
                "--tls-grpc",
                endpoint,
                "--tls-grpc-insecure",
                "--",
                python,
                path,
                *args,
            ]
        return [sys.executable, path, *args]

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
        if "loop" in self.files:
            subprocess.run(["losetup", "-d", self.files["loop"]], capture_output=True, check=False)


def run_side(argv: list[str]) -> dict:
    """Run one client process; its RESULT line as a dict (or ``{"error": ...}``)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=SIDE_TIMEOUT, cwd=services.ROOT)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {SIDE_TIMEOUT} s: {' '.join(argv[-4:])}"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
    return {"error": f"exit {done.returncode}: {' | '.join(tail) or 'no output'}"}


def measure(bench: Bench, rounds: int, selected: list) -> tuple[dict, list[str]]:
    """``{row key: {side: [value per round]}}`` and the errors met on the way."""
    values: dict[str, dict[str, list[float]]] = {}
    errors: list[str] = []
    for measurement in selected:
        print(f"== {measurement.title}", file=sys.stderr, flush=True)
        began = time.monotonic()
        for round_ in range(rounds):
            for side, make in measurement.sides.items():
                try:
                    result = run_side(make(bench))
                except Exception as exc:  # a service that would not start: report it, go on
                    result = {"error": f"{type(exc).__name__}: {exc}"}
                if "error" in result:
                    errors.append(f"{measurement.key} {side} round {round_ + 1}: {result['error']}")
                    print(f"   {side}: {result['error']}", file=sys.stderr, flush=True)
                    continue
                print(f"   {side}: {_short(result)}", file=sys.stderr, flush=True)
                for row, field_name in measurement.rows.items():
                    values.setdefault(row, {}).setdefault(side, []).append(result[field_name])
        print(f"   ({time.monotonic() - began:.1f} s)", file=sys.stderr, flush=True)
    return values, errors


def _short(result: dict) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items())


def summarize(values: dict) -> list[dict]:
    """Medians, ratios and targets per row, in table order."""
    medians = {
        row: {side: statistics.median(v) for side, v in sides.items()} for row, sides in values.items()
    }
    rows = []
    for row in ROWS:
        if row.key not in values:
            continue
        entry = {
            "key": row.key,
            "title": row.title,
            "unit": row.unit,
            "sides": {
                side: {"median": medians[row.key][side], "runs": runs}
                for side, runs in values[row.key].items()
            },
            "ratios": row.ratios(medians[row.key]),
            "targets": [{"target": t.text, "met": t.check(medians)} for t in row.targets],
        }
        rows.append(entry)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (checks the harness)")
    parser.add_argument("--rounds", type=int, help="rounds per measurement (default 5, quick 1)")
    parser.add_argument(
        "--only", help="comma-separated measurement keys: " + ", ".join(m.key for m in MEASUREMENTS)
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    # a run stopped with SIGTERM (background jobs ignore SIGINT) still stops its services
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    selected = _select(args.only)
    sizes = Sizes.quick() if args.quick else Sizes()
    rounds = args.rounds or (1 if args.quick else 5)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="jmp-bench-") as workdir:
        children = {child for m in selected for child in m.children}
        bench = Bench(Path(workdir), services.upstream_peer(), sizes, children, shell=not args.quick)
        try:
            values, errors = measure(bench, rounds, selected)
        finally:
            bench.stop()
    rows = summarize(values)
    result = {
        "machine": describe(bench.peer),
        "quick": args.quick,
        "rounds": rounds,
        "seconds": round(time.time() - started, 1),
        "sizes": sizes.__dict__,
        "rows": rows,
        "errors": errors,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(render(result))
    print(f"\nwritten to {args.output}")
    return 1 if errors else 0


def _select(only: str | None) -> list:
    if not only:
        return list(MEASUREMENTS)
    keys = [k.strip() for k in only.split(",") if k.strip()]
    known = {m.key: m for m in MEASUREMENTS}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise SystemExit(f"--only: unknown measurement {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[k] for k in keys]


if __name__ == "__main__":
    sys.exit(main())
