"""Run the shipped notebooks against a board and store executed copies for the docs.

    python scripts/execute_notebooks.py [NAME ...]

``notebooks/*.ipynb`` are committed without outputs. This runs each (or the ones named) with
papermill in a real kernel, against ``jumpstarter-jupyter demo`` (the virtual board) or, for
``bringup-qemu``, a QEMU board served from ``examples/qemu-board.yaml`` (its images built by
``jumpstarter-jupyter qemu-images`` first), and writes the executed copy to
``docs/notebooks/NAME.ipynb``, which the documentation renders without executing anything.

Widgets are kept as their text summary: a static page has no kernel to draw them, so each
widget output keeps only its ``text/plain`` form (the state the widget showed).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import nbformat
import papermill

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks"
TARGET = ROOT / "docs" / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
# ipywidgets' own traits and ours that say nothing about the hardware
QUIET_TRAITS = {"path", "error", "locked", "layout", "tabbable", "tooltip", "comm_id", "keys"}
START_TIMEOUT = 60  # seconds for an exporter to say it is serving
CELL_TIMEOUT = 600  # seconds per cell (the QEMU board boots in seconds; this only bounds a hang)


@contextlib.contextmanager
def exporter(*args: str) -> Iterator[str]:
    """``jumpstarter-jupyter ARGS --socket PATH`` in its own process; yields its endpoint."""
    with tempfile.TemporaryDirectory(prefix="jmp-docs-") as directory:
        socket = os.path.join(directory, "board.sock")
        process = subprocess.Popen(
            [sys.executable, "-m", "jumpstarter_jupyter", *args, "--socket", socket],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = process.stdout.readline()  # "serving ..." once it listens, "" if it exited
            if not line.startswith("serving "):
                raise SystemExit(f"the exporter did not start ({' '.join(args)}): {line!r}")
            yield f"unix:{socket}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def board_for(name: str) -> contextlib.AbstractContextManager[str]:
    if name == "bringup-qemu":
        subprocess.run(
            [sys.executable, "-m", "jumpstarter_jupyter", "qemu-images", "--arch", "x86_64"], check=True
        )
        return exporter("run", str(ROOT / "examples" / "qemu-board.yaml"))
    return exporter("demo")


def text_only_widgets(notebook: nbformat.NotebookNode) -> None:
    """Replace each widget view (and the saved widget state) by a text summary of that state."""
    saved = notebook.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                model = saved.get(data.pop(WIDGET_VIEW).get("model_id"), {})
                data.pop("text/html", None)  # the widget's loader: nothing to load on a static page
                if model and data.get("text/plain", "").startswith("<"):  # a repr, not a summary
                    data["text/plain"] = summary(model)


def summary(model: dict) -> str:
    """``dut.led: kind=input, value=1``: the widget's path and its scalar synced traits."""
    state = model.get("state", {})
    if isinstance(state.get("summary"), str) and state["summary"]:
        return state["summary"]
    shown = []
    for name, value in state.items():
        if name.startswith("_") or name in QUIET_TRAITS or value in ("", None, [], {}):
            continue
        if isinstance(value, bool | int | float) or (isinstance(value, str) and len(value) <= 80):
            shown.append(f"{name}={value}")
    return f"{state.get('path', 'widget')}: " + ", ".join(shown)


def execute(name: str) -> Path:
    source, target = SOURCES / f"{name}.ipynb", TARGET / f"{name}.ipynb"
    TARGET.mkdir(parents=True, exist_ok=True)
    with board_for(name) as endpoint, tempfile.TemporaryDirectory(prefix="jmp-docs-run-") as workdir:
        env_before = os.environ.get("JUMPSTARTER_HOST")
        os.environ["JUMPSTARTER_HOST"] = endpoint  # %jmp connect and connect() without an endpoint find it
        try:
            # the kernel's working directory is private: console logs land there, not in the tree
            papermill.execute_notebook(
                str(source),
                str(target),
                cwd=workdir,
                kernel_name="python3",
                execution_timeout=CELL_TIMEOUT,
                progress_bar=False,
            )
        finally:
            if env_before is None:
                os.environ.pop("JUMPSTARTER_HOST")
            else:
                os.environ["JUMPSTARTER_HOST"] = env_before
    notebook = nbformat.read(target, as_version=4)
    text_only_widgets(notebook)
    nbformat.write(notebook, target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names (default: every notebook in notebooks/)")
    args = parser.parse_args(argv)
    names = args.names or sorted(path.stem for path in SOURCES.glob("*.ipynb"))
    for name in names:
        print(f"{name}: written to {execute(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
