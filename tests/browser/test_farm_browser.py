"""The farm in Chromium: ``run-notebooks`` over four labelled boards with one failing (its
junit.xml, exit code and HTML report), and the devices sidebar's labels, selector filter and
"connect to any free S". One shelf of four exporters, named in the session lab's pool file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from junitparser import Failure, JUnitXml

import jumpstarter_jupyter as jj
from browser.test_devices import SIDEBAR_TAB, card
from shelf import BOARDS, DEADLINE, Shelf
from support import wait_for

pytestmark = pytest.mark.browser
RUN_TIMEOUT = 600
CHECK = [  # a notebook as run-notebooks runs them: it takes endpoint and lease_token, and fails on fail_on
    'endpoint = None\nlease_token = None\nfail_on = ""',
    "import jumpstarter_jupyter as jj\nimport matplotlib.pyplot as plt\n"
    "dut = jj.connect(endpoint, lease_token=lease_token)\ndut.power.on()\n"
    "plt.plot([r.current for r in dut.power.read()])\nplt.show()",
    'assert not endpoint.endswith(f"/{fail_on}.sock"), f"the check fails on {fail_on}"',
]


@pytest.fixture(scope="module")
def shelf(lab, tmp_path_factory):
    board = Shelf(tmp_path_factory.mktemp("shelf"), Path(lab.root).parent / "config")
    yield board
    board.pool_file.unlink()
    board.stop()


def check_notebook(path: Path) -> Path:
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CHECK]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, path)
    return path


def test_run_notebooks_over_four_boards_reports_the_one_that_failed(shelf, chromium, tmp_path):
    notebook, out = check_notebook(tmp_path / "check.ipynb"), tmp_path / "report"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "jumpstarter_jupyter",
            "run-notebooks",
            str(notebook),
            "--selector",
            "soc",
            "--each",
            "--parallel",
            "4",
            "-p",
            "fail_on",
            "am-2",
            "--out",
            str(out),
        ],
        env=shelf.env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        stdin=subprocess.DEVNULL,
    )
    assert run.returncode == 1, run.stderr
    assert "FAILED      check.ipynb on am-2 (AssertionError: the check fails on am-2)" in run.stderr, (
        run.stderr
    )
    assert "4 runs: 1 failed, 3 passed" in run.stderr, run.stderr

    [suite] = JUnitXml.fromfile(str(out / "junit.xml"))
    cases = {case.name: case for case in suite}
    assert set(cases) == set(BOARDS) and {case.classname for case in suite} == {"check"}
    [failure] = cases["am-2"].result
    assert (
        isinstance(failure, Failure) and failure.message == "In [4]: AssertionError: the check fails on am-2"
    )
    assert "AssertionError" in failure.text  # In [4]: papermill put its parameters in [3]
    assert all(case.is_passed for name, case in cases.items() if name != "am-2")

    # each run held its board under its own lease ("NOTEBOOK on BOARD"); all are free again
    for name in BOARDS:
        assert f"(check.ipynb on {name})" in (shelf.directory / f"{name}.log").read_text()
    shelf.wait_until_free(*BOARDS)

    page = chromium.new_page()
    try:
        page.goto(f"file://{out / 'index.html'}")
        failed = page.locator("tr[data-board='am-2']")
        assert failed.get_attribute("data-outcome") == "failed"
        assert "AssertionError: the check fails on am-2" in failed.inner_text()
        assert page.locator("tr[data-outcome='passed']").count() == 3
        failed.get_by_role("link", name="check-am-2.html").click()
        page.wait_for_url("**/check-am-2.html")
        assert "the check fails on am-2" in page.content()
        assert page.locator("img[src^='data:image/png']").count() == 1  # the plot, embedded
    finally:
        page.close()


def test_the_sidebar_shows_labels_filters_by_selector_and_connects_to_any_free_match(
    lab, shelf, open_notebook
):
    holder = jj.connect(shelf.addresses["imx-1"], purpose="holding")
    try:
        notebook = open_notebook("farm.ipynb", [""])
        page = notebook.page
        page.locator(SIDEBAR_TAB).click()
        imx2 = card(page, "imx-2")
        wait_for(
            lambda: imx2.count() and imx2.get_attribute("data-state") == "free", DEADLINE, "imx-2 shown free"
        )
        assert imx2.locator(".jmp-label").all_inner_texts() == ["rev=b", "site=lab2", "soc=imx8mp"]  # sorted

        page.locator(".jmp-selector").fill("soc=imx8mp")
        shown = page.locator(".jmp-devices .jmp-board")
        wait_for(
            lambda: (
                sorted(shown.evaluate_all("cards => cards.map(c => c.dataset.board)")) == ["imx-1", "imx-2"]
            ),
            DEADLINE,
            "only the imx8mp boards shown",
        )
        assert page.locator(".jmp-match").inner_text().startswith("2 of 4 match, 1 free")

        page.locator(".jmp-selector").fill("soc=imx8mp site")
        wait_for(
            lambda: "at column 12: expected ','" in page.locator(".jmp-devices").inner_text(),
            DEADLINE,
            "the selector's error",
        )
        page.locator(".jmp-selector").fill("soc=imx8mp")
        connect_any = page.get_by_role("button", name="connect to any free soc=imx8mp")
        connect_any.wait_for(timeout=DEADLINE * 1000)
        connect_any.click()
        wait_for(
            lambda: "held by this notebook" in imx2.inner_text(), DEADLINE, "imx-2 held by this notebook"
        )
        assert shelf.status("imx-1").queue == []  # imx-2 was free: nothing waits at imx-1
    finally:
        holder.close()
