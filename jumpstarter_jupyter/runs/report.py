"""The reports of a notebook run over the farm: ``junit.xml`` for CI, ``index.html`` for people.

One JUnit test case per notebook and board (class name: the notebook, name: the board); a
notebook whose cell raised is a failure carrying that cell's error and traceback, a run that
could not happen (no lease, papermill broke, Ctrl-C) is an error. The HTML page lists board,
notebook, outcome and duration, and links each executed notebook rendered as HTML.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

from jinja2 import Environment
from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite

from jumpstarter_jupyter.durations import format_duration
from jumpstarter_jupyter.runs.runner import FAILED, PASSED, Run

SUITE = "run-notebooks"


def write_junit(runs: list[Run], path: Path) -> Path:
    """``junit.xml``: one test case per run."""
    suite = TestSuite(SUITE)
    for run in runs:
        case = TestCase(name=run.board or "(no board)", classname=run.name, time=round(run.duration, 3))
        if run.outcome == FAILED and run.error is not None:
            failure = Failure(
                f"In [{run.error.cell}]: {run.error.ename}: {run.error.evalue}", run.error.ename
            )
            failure.text = run.error.traceback
            case.result = [failure]
        elif run.outcome != PASSED:
            error = Error(run.message or run.outcome, run.outcome)
            error.text = run.message
            case.result = [error]
        suite.add_testcase(case)
    suite.update_statistics()
    xml = JUnitXml()
    xml.add_testsuite(suite)
    xml.write(str(path), pretty=True)
    return path


PAGE = Environment(autoescape=True).from_string((Path(__file__).parent / "index.html.j2").read_text())


def write_index(runs: list[Run], path: Path, selector: str) -> Path:
    """``index.html``: a row per run, linking its executed notebook (as HTML and as ipynb)."""
    counts = Counter(run.outcome for run in runs)
    boards = len({run.board for run in runs if run.board})
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    rows = [
        dict(
            board=run.board,
            name=run.name,
            notebook=run.notebook,
            outcome=run.outcome,
            took=format_duration(run.duration) if run.duration else "—",
            html=_link(run.html, path.parent),
            ipynb=_link(run.executed, path.parent),
            why=_why(run),
        )
        for run in runs
    ]
    title = f"run-notebooks: {selector}"
    path.write_text(
        PAGE.render(
            title=title,
            runs=rows,
            summary=f"{summary} of {len(runs)} runs on {boards} boards, "
            f"written {time.strftime('%Y-%m-%d %H:%M:%S')}",
        ),
        encoding="utf-8",
    )
    return path


def _link(target: Path | None, base: Path) -> str:
    return "" if target is None or not target.exists() else os.path.relpath(target, base)


def _why(run: Run) -> str:
    if run.error is not None:
        return f"In [{run.error.cell}]: {run.error.ename}: {run.error.evalue}"
    return "" if run.outcome == PASSED else run.message
