"""`make soak`: many clients on one exporter for a long time; does anything creep?

    python benchmarks/soak.py [--minutes 10] [--clients 64] [--stream-gib 1] [--calls 100000]

Starts our exporter (power, a ``loop://`` serial port, a network driver to a local echo
server) and ``clients`` client threads spread over 8 processes. Each client mixes unary
``power.on()`` calls with byte streams (serial ``loop://`` and network echo) until the
time is up and both the call and the stream totals are reached. Prints the exporter's
threads, file descriptors and RSS before and after, and every client error (there should be
none), and writes them, dated and with the machine, to ``docs/_data/soak.json`` (committed:
the documentation's Reliability page renders it). A run shorter than the default 10 minutes
is marked there as a quick check. Not a test: it runs from a clean clone and reports.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import services  # noqa: E402
from machine import describe  # noqa: E402

RESULTS = services.HERE.parent / "docs" / "_data" / "soak.json"
FULL_MINUTES = 10.0
PROCESSES = 8
CHUNK = 64 * 1024


def figures(pid: int) -> dict:
    status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status").read().splitlines())
    return {
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
    }


def client(endpoint: str, deadline: float, calls: int, stream_bytes: int, results) -> None:
    """One client: unary calls back to back, a stream echo every 200 calls."""
    from jumpstarter_jupyter import connect

    done_calls = done_bytes = 0
    errors: list[str] = []
    payload = os.urandom(CHUNK)
    try:
        with connect(endpoint) as dut:
            while time.monotonic() < deadline or done_calls < calls or done_bytes < stream_bytes:
                try:
                    dut.power.on()
                    done_calls += 1
                    if done_calls % 200 == 0 and done_bytes < stream_bytes:
                        child = dut.serial if done_calls % 400 == 0 else dut.net
                        with child.stream("connect") as stream:
                            for _ in range(16):  # 1 MiB through, echoed back
                                stream.send(payload)
                                got = 0
                                while got < CHUNK:
                                    got += len(stream.receive())
                            done_bytes += 16 * CHUNK
                except Exception as exc:  # every error counts, none should happen
                    errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    if len(errors) > 20:
                        break
    except Exception as exc:
        errors.append(f"connect: {type(exc).__name__}: {exc}"[:300])
    results.put({"calls": done_calls, "bytes": done_bytes, "errors": errors})


def worker(endpoint: str, threads: int, deadline: float, calls: int, stream_bytes: int, results) -> None:
    import threading

    running = [
        threading.Thread(target=client, args=(endpoint, deadline, calls, stream_bytes, results))
        for _ in range(threads)
    ]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=FULL_MINUTES)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--stream-gib", type=float, default=1.0, help="bytes through byte streams, in all")
    parser.add_argument("--calls", type=int, default=100_000, help="unary calls, in all")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON report (default {RESULTS})")
    args = parser.parse_args(argv)
    per_client_calls = args.calls // args.clients
    per_client_bytes = int(args.stream_gib * (1 << 30)) // args.clients
    with tempfile.TemporaryDirectory(prefix="jmp-soak-") as workdir:
        echo = services.echo_server()
        config = yaml.safe_load((services.HERE / "bench.yaml").read_text())
        config["export"] = {key: config["export"][key] for key in ("power", "serial", "net")}
        config["export"]["net"]["config"]["port"] = int(echo.match.group(1).rpartition(":")[2])
        path = Path(workdir) / "soak.yaml"
        path.write_text(yaml.safe_dump(config))
        exporter = services.our_exporter(str(path))
        endpoint = exporter.match.group(1)
        try:
            before = figures(exporter.process.pid)
            started = time.monotonic()
            deadline = started + args.minutes * 60
            context = multiprocessing.get_context("spawn")
            results = context.Queue()
            per_process = [
                args.clients // PROCESSES + (i < args.clients % PROCESSES) for i in range(PROCESSES)
            ]
            processes = [
                context.Process(
                    target=worker, args=(endpoint, n, deadline, per_client_calls, per_client_bytes, results)
                )
                for n in per_process
                if n
            ]
            for process in processes:
                process.start()
            outcomes = [results.get() for _ in range(args.clients)]
            for process in processes:
                process.join()
            after = figures(exporter.process.pid)
        finally:
            exporter.stop()
            echo.stop()
    errors = [e for o in outcomes for e in o["errors"]]
    report = {
        "machine": describe(None),
        "quick": args.minutes < FULL_MINUTES,
        "minutes": round((time.monotonic() - started) / 60, 1),
        "clients": args.clients,
        "calls": sum(o["calls"] for o in outcomes),
        "stream_mib": sum(o["bytes"] for o in outcomes) >> 20,
        "before": before,
        "after": after,
        "errors": len(errors),
    }
    print(json.dumps(report, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.output}")
    for error in errors[:10]:
        print("  error:", error)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
