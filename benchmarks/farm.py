"""A farm of exporters on this host, and what a lab measures on it (ours only: upstream's
standalone exporter has no leases or labels).

    python benchmarks/farm.py serve BOARDS VIRTUAL DIR   # BOARDS exporters, VIRTUAL of them virtual boards;
                                                         # prints "serving CONFIG_DIR" (its pool file)
    python benchmarks/farm.py list CONFIG_DIR            # the server extension's board list (PoolMonitor)
    python benchmarks/farm.py connect CONFIG_DIR         # connect(selector=...) with one board free
    python benchmarks/farm.py notebooks CONFIG_DIR N [smoke|minimal]  # run-notebooks on N virtual boards

Every exporter requires leases and carries the labels ``farm=bench``, ``kind=mock|virtual`` and
``slot=N`` (its index). The clients print one RESULT line each.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from measure import report  # noqa: E402

HERE = Path(__file__).resolve().parent
SMOKE_TEST = HERE.parent / "notebooks" / "smoke-test.ipynb"
START_BATCH = 5  # exporters started at once
MOCK = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
labels: {farm: bench, kind: mock}
export:
  power:
    type: MockPower
lease:
  required: true
"""


def serve(boards: str, virtual: str, directory: str) -> None:
    """Start the exporters (a few at a time), write their pool file, serve until SIGTERM."""
    folder = Path(directory)
    (folder / "mock.yaml").write_text(MOCK)
    jumpstarter = str(Path(sys.executable).parent / "jumpstarter-jupyter")
    processes, started = [], 0
    for slot in range(int(boards)):
        kind = "virtual" if slot < int(virtual) else "mock"
        where = [
            "--socket",
            str(folder / f"board-{slot:02d}.sock"),
            "--lease",
            "required",
            "--label",
            f"slot={slot}",
        ]
        argv = (
            [jumpstarter, "demo", *where, "--label", "farm=bench", "--label", "kind=virtual"]
            if kind == "virtual"
            else [jumpstarter, "run", str(folder / "mock.yaml"), *where]
        )
        processes.append(subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
        if len(processes) % START_BATCH == 0 or slot == int(boards) - 1:  # a few at a time: a busy host
            for index in range(started, len(processes)):
                if not processes[index].stdout.readline().startswith("serving"):
                    raise SystemExit(f"board {index} did not start")
            started = len(processes)
            print(f"started {started} boards", flush=True)  # keeps the harness's start timeout away
    config = folder / "jupyter-config"
    config.mkdir(exist_ok=True)
    (config / "jumpstarter-pool.yaml").write_text(
        "exporters:\n"
        + "".join(
            f"  board-{slot:02d}:\n    endpoint: unix:{folder / f'board-{slot:02d}.sock'}\n"
            for slot in range(int(boards))
        )
    )
    print(f"serving {config}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def _use_pool(config_dir: str) -> None:
    os.environ["JUPYTER_CONFIG_DIR"] = config_dir
    os.environ["JUPYTER_CONFIG_PATH"] = tempfile.mkdtemp(prefix="no-system-config-")


def board_list(config_dir: str) -> None:
    """Milliseconds of the server extension's ``boards()`` round: first (new channels), then again."""
    _use_pool(config_dir)
    from jumpstarter_jupyter.lab import monitor

    watching = monitor.PoolMonitor()
    start = time.perf_counter()
    first = watching.boards()
    cold = time.perf_counter() - start
    time.sleep(monitor.FRESH)  # the next call probes again instead of answering from the last round
    start = time.perf_counter()
    again = watching.boards("kind=virtual")
    warm = time.perf_counter() - start
    reachable = sum(board["reachable"] for board in first["boards"])
    watching.close()
    report(
        cold * 1e3,
        warm_ms=warm * 1e3,
        boards=len(first["boards"]),
        reachable=reachable,
        matched=sum(board["matches"] for board in again["boards"]),
    )


def connect_any(config_dir: str) -> None:
    """Milliseconds of ``connect(selector="farm=bench")`` while every board but one is held."""
    _use_pool(config_dir)
    import jumpstarter_jupyter as jj
    from jumpstarter_jupyter.client import pool

    names = sorted(pool.load_pool())
    held = [jj.connect(name, purpose="holding") for name in names[:-1]]
    start = time.perf_counter()
    dut = jj.connect(selector="farm=bench", purpose="bench")
    elapsed = time.perf_counter() - start
    board = dut.connection.board
    dut.close()
    for holder in held:
        holder.close()
    if board != names[-1]:
        raise SystemExit(f"took {board}, not the free {names[-1]}")
    report(elapsed * 1e3, boards=len(names))


def notebooks(config_dir: str, count: str, notebook: str = "smoke") -> None:
    """Seconds of ``run-notebooks`` on ``count`` virtual boards at once: the smoke test, or
    (``minimal``, for the harness check) a notebook that only connects and powers on."""
    selector = "kind=virtual,slot in ({})".format(",".join(str(slot) for slot in range(int(count))))
    with tempfile.TemporaryDirectory(prefix="jmp-bench-runs-") as out:
        path = SMOKE_TEST if notebook == "smoke" else _minimal(Path(out) / "minimal.ipynb")
        env = {**os.environ, "JUPYTER_CONFIG_DIR": config_dir, "JUPYTER_CONFIG_PATH": out}
        start = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "jumpstarter_jupyter",
                "run-notebooks",
                str(path),
                "--selector",
                selector,
                "--each",
                "--parallel",
                count,
                "--out",
                f"{out}/runs",
            ],
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"run-notebooks exited {done.returncode}: {done.stderr[-1500:]}")
    report(elapsed, runs=int(count))


def _minimal(path: Path) -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    notebook.cells = [
        nbformat.v4.new_code_cell("endpoint = None\nlease_token = None"),
        nbformat.v4.new_code_cell(
            "import jumpstarter_jupyter as jj\njj.connect(endpoint, lease_token=lease_token).power.on()"
        ),
    ]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, path)
    return path


FIGURES = {"serve": serve, "list": board_list, "connect": connect_any, "notebooks": notebooks}

if __name__ == "__main__":
    FIGURES[sys.argv[1]](*sys.argv[2:])
