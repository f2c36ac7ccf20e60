"""Run notebooks on the boards a selector matches, each run under its own lease.

For each run the runner takes the board's lease (purpose "NOTEBOOK on BOARD"), then runs
``papermill`` in a process of its own with two parameters: ``endpoint`` (the board's address)
and ``lease_token`` (the lease's token, which the notebook's ``jj.connect(endpoint,
lease_token=lease_token)`` accepts instead of asking for a lease: the notebook never queues
behind its own runner). When papermill ends, the runner releases the lease (the exporter's
``afterLease`` hook runs) and renders the executed notebook as HTML.

Ctrl-C interrupts every running papermill (SIGINT, which stops the kernel), releases every
lease and still writes the report of what ran.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from jumpstarter_jupyter.client import farm
from jumpstarter_jupyter.client.lease import Lease
from jumpstarter_jupyter.errors import JumpstarterError

log = logging.getLogger("jumpstarter_jupyter.runs")

PASSED, FAILED, ERROR, INTERRUPTED = "passed", "failed", "error", "interrupted"
INTERRUPT_GRACE = 15.0  # seconds papermill gets to stop its kernel after SIGINT, before SIGKILL
RUN_PARAMETERS = ("endpoint", "lease_token")  # what each run hands its notebook
STDERR_TAIL = 3000  # characters of papermill's stderr kept for a run that failed outside a cell


@dataclass
class CellError:
    """The error that stopped a notebook: its cell (``In [N]``), exception type, message, traceback."""

    cell: int  # the cell's execution count
    ename: str
    evalue: str
    traceback: str


@dataclass
class Run:
    """One notebook on one board: what ran, how it ended, where its outputs are."""

    notebook: Path
    board: str = ""  # pinned (--each), else the board the lease was granted on
    outcome: str = ""  # passed, failed (a cell raised), error (no lease, papermill broke), interrupted
    started: float = 0.0  # unix seconds
    duration: float = 0.0  # seconds of papermill, lease wait excluded
    executed: Path | None = None
    html: Path | None = None
    error: CellError | None = None
    message: str = ""  # what went wrong when no cell says it

    @property
    def name(self) -> str:
        return self.notebook.stem

    @property
    def purpose(self) -> str:
        return f"{self.notebook.name} on {self.board}"


@dataclass
class Plan:
    """What to run: the notebooks, the boards, how, with which parameters, into which folder."""

    notebooks: list[Path]
    selector: str
    out: Path
    each: bool = False  # every matching board runs every notebook; else any free board, once
    parallel: int = 1
    parameters: list[tuple[str, str]] = field(default_factory=list)  # papermill -p NAME VALUE
    kernel: str | None = None
    wait: float | None = None  # seconds a run waits for a board's lease (None: as long as it takes)


class Runner:
    """Runs a plan on a few worker threads; ``runs`` holds every run, done or not."""

    def __init__(
        self, plan: Plan, boards: list[farm.Board], on_done=lambda run: None, on_start=lambda run: None
    ):
        self.plan, self.boards = plan, boards
        self.on_done, self.on_start = on_done, on_start
        if plan.each:
            self.runs = [Run(nb, board.name) for nb in plan.notebooks for board in boards]
        else:
            self.runs = [Run(nb) for nb in plan.notebooks]
        self._todo: queue.Queue[Run] = queue.Queue()
        for run in self.runs:
            self._todo.put(run)
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._processes: set[subprocess.Popen] = set()
        self._leases: set[Lease] = set()

    def run(self) -> list[Run]:
        """Run everything; Ctrl-C stops the runs, releases every lease and returns what ran."""
        self.plan.out.mkdir(parents=True, exist_ok=True)
        workers = [
            threading.Thread(target=self._work, name=f"notebook run {i}", daemon=True)
            for i in range(max(1, min(self.plan.parallel, len(self.runs))))
        ]
        for worker in workers:
            worker.start()
        try:
            for worker in workers:
                while worker.is_alive():
                    worker.join(0.5)  # a bounded join: the main thread must stay free for Ctrl-C
        except KeyboardInterrupt:
            self.stop()
            for worker in workers:
                worker.join(INTERRUPT_GRACE + 30)
        for run in self.runs:
            if not run.outcome:
                run.outcome, run.message = INTERRUPTED, "not started: the runs were interrupted"
        return self.runs

    def stop(self) -> None:
        """Interrupt every papermill and give every lease back; start nothing more."""
        self._stopping.set()
        with self._lock:
            processes, leases = list(self._processes), list(self._leases)
        for lease in leases:  # the boards first: they are free while the kernels stop
            lease.withdraw()
        for process in processes:
            _signal(process, signal.SIGINT)  # papermill stops its kernel
        deadline = time.monotonic() + INTERRUPT_GRACE
        for process in processes:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(process, signal.SIGKILL, group=True)

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                run = self._todo.get_nowait()
            except queue.Empty:
                return
            try:
                self._one(run)
            except Exception as exc:  # noqa: BLE001 - one broken run must not stop the others
                log.exception("run of %s failed", run.notebook)
                run.outcome, run.message = ERROR, f"{type(exc).__name__}: {exc}"
            self.on_done(run)

    def _one(self, run: Run) -> None:
        lease = self._lease(run)
        if lease is None:
            return
        try:
            self.on_start(run)
            self._execute(run, lease)
        finally:
            lease.release()  # the board is free for the next run (afterLease runs) before rendering
            with self._lock:
                self._leases.discard(lease)
        if run.executed is not None and run.executed.exists() and run.outcome != INTERRUPTED:
            run.html = render_html(run.executed)

    def _lease(self, run: Run) -> Lease | None:
        candidates = [b for b in self.boards if b.name == run.board] if run.board else self.boards
        try:
            board, lease = farm.take_any(
                candidates, purpose=lambda name: f"{run.notebook.name} on {name}", wait=self.plan.wait
            )
        except JumpstarterError as exc:
            run.outcome = INTERRUPTED if self._stopping.is_set() else ERROR
            run.message = f"no lease: {exc}"
            return None
        run.board = board.name
        with self._lock:
            self._leases.add(lease)
        if self._stopping.is_set():  # Ctrl-C came while the lease was being granted
            lease.withdraw()
            run.outcome, run.message = INTERRUPTED, "interrupted before it started"
            return None
        return lease

    def _execute(self, run: Run, lease: Lease) -> None:
        board = next(b for b in self.boards if b.name == run.board)
        run.executed = self.plan.out / f"{run.name}-{run.board}.ipynb"
        argv = [
            sys.executable,
            "-m",
            "papermill",
            str(run.notebook),
            str(run.executed),
            "--cwd",
            str(run.notebook.parent),
            "--no-progress-bar",
            "-r",
            "endpoint",
            board.entry.endpoint,
            "-r",
            "lease_token",
            lease.token,
        ]
        for name, value in self.plan.parameters:
            argv += ["-p", name, value]
        if self.plan.kernel:
            argv += ["-k", self.plan.kernel]
        run.started = time.time()
        # a session of its own: the terminal's Ctrl-C reaches the runner, which stops each run
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        with self._lock:
            self._processes.add(process)
        try:
            _, stderr = process.communicate()
        finally:
            with self._lock:
                self._processes.discard(process)
        run.duration = time.time() - run.started
        run.error = failing_cell(run.executed) if run.executed.exists() else None
        if self._stopping.is_set():
            run.outcome, run.message = INTERRUPTED, "interrupted (Ctrl-C)"
        elif process.returncode == 0:
            run.outcome = PASSED
        else:
            run.outcome = FAILED if run.error is not None else ERROR
            run.message = (
                stderr[-STDERR_TAIL:].strip() or f"papermill exited with status {process.returncode}"
            )


def _reason(run: Run) -> str:
    """One line on why a run did not pass: its cell's error, else the last line of its message
    (papermill's stderr ends with the exception that stopped it)."""
    if run.error is not None:
        return f"{run.error.ename}: {run.error.evalue}"
    return (run.message.strip().splitlines() or ["no reason given"])[-1]


def _signal(process: subprocess.Popen, number: int, group: bool = False) -> None:
    """Signal papermill (or its whole process group), unless it has ended already."""
    try:
        if group:
            os.killpg(process.pid, number)
        else:
            process.send_signal(number)
    except ProcessLookupError:
        pass


def check_parameters(notebook: Path) -> None:
    """Refuse a notebook without the ``endpoint`` and ``lease_token`` parameters: its connect
    would wait in line behind the runner's own lease."""
    from papermill import inspect_notebook  # noqa: PLC0415

    missing = [name for name in RUN_PARAMETERS if name not in inspect_notebook(str(notebook))]
    if missing:
        raise JumpstarterError(
            f"{notebook}: no {' or '.join(missing)} parameter: give its cell tagged 'parameters' "
            "`endpoint = None` and `lease_token = None`, and connect with "
            "jj.connect(endpoint, lease_token=lease_token)"
        )


def failing_cell(executed: Path) -> CellError | None:
    """The first error an executed notebook shows, if any."""
    from nbconvert.filters import strip_ansi  # noqa: PLC0415 - slow to import; only a finished run needs it

    notebook = nbformat.read(executed, as_version=4)
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return CellError(
                    cell.get("execution_count") or 0,
                    output.get("ename", ""),
                    output.get("evalue", ""),
                    strip_ansi("\n".join(output.get("traceback", []))),
                )
    return None


def render_html(executed: Path) -> Path:
    """The executed notebook as a standalone HTML page beside it (plots embedded)."""
    from nbconvert import HTMLExporter  # noqa: PLC0415 - slow to import; only a finished run needs it

    body, _ = HTMLExporter().from_filename(str(executed))
    html = executed.with_suffix(".html")
    html.write_text(body, encoding="utf-8")
    return html


def run_notebooks(plan: Plan) -> int:
    """Run ``plan`` with a progress bar, write the reports; the exit code (0: all passed,
    1: a run failed, 130: interrupted by Ctrl-C)."""
    from tqdm import tqdm  # noqa: PLC0415

    from jumpstarter_jupyter.runs.report import write_index, write_junit  # noqa: PLC0415

    for notebook in plan.notebooks:
        check_parameters(notebook)
    boards = farm.find(plan.selector)
    runner = Runner(plan, boards)
    counts: dict[str, int] = {}
    with tqdm(
        total=len(runner.runs), unit="run", desc="notebooks", file=sys.stderr, dynamic_ncols=True
    ) as bar:

        def done(run: Run) -> None:
            counts[run.outcome] = counts.get(run.outcome, 0) + 1
            bar.write(
                f"{run.outcome.upper():<11} {run.notebook.name} on {run.board or '(no board)'}"
                + (f" ({_reason(run)})" if run.outcome in (FAILED, ERROR) else ""),
                file=sys.stderr,
            )
            bar.set_postfix(counts, refresh=False)
            bar.update(1)

        runner.on_done = done
        try:
            runs = runner.run()
        finally:
            farm.close(boards)
    junit = write_junit(runs, plan.out / "junit.xml")
    index = write_index(runs, plan.out / "index.html", plan.selector)
    print(
        f"{len(runs)} runs: {', '.join(f'{n} {o}' for o, n in sorted(counts.items())) or 'none finished'}; "
        f"reports: {index}, {junit}",
        file=sys.stderr,
    )
    if any(run.outcome == INTERRUPTED for run in runs):
        return 130
    return 0 if all(run.outcome == PASSED for run in runs) else 1
