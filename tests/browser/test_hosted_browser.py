"""A hosted upstream driver in JupyterLab (headless Chromium): upstream 0.9.0's shell driver gets the
generic widget, whose form runs a method and shows its output as it streams; a hardware driver
without its hardware shows as failed in the panel and in ``%jmp tree``."""

from __future__ import annotations

import re

import pytest

from support import serving, wait_for

pytestmark = pytest.mark.browser

CONFIG = """\
apiVersion: jumpstarter.dev/v1alpha1
kind: ExporterConfig
hosted:
  python: {python}
export:
  sh:
    type: jumpstarter_driver_shell.driver.Shell
    config:
      methods:
        wait: "echo first; while [ ! -e {flag} ]; do sleep 0.05; done; echo second"
  hub:
    type: jumpstarter_driver_yepkit.driver.Ykush
"""


@pytest.fixture
def hosted_board(peer, tmp_path):
    from jumpstarter_jupyter.exporter import build_tree, parse_config

    flag = tmp_path / "go"
    root = build_tree(parse_config(CONFIG.format(python=peer / "bin/python", flag=flag), "hosted.yaml"))
    with serving(root) as exporter:
        yield exporter.address, flag


def test_the_generic_widget_of_a_hosted_shell_streams_a_methods_output(hosted_board, open_notebook):
    endpoint, flag = hosted_board
    notebook = open_notebook("hosted.ipynb", [f"%load_ext jumpstarter\n%jmp connect {endpoint}", "%jmp tree"])
    notebook.run_cell(0)
    title = notebook.page.locator(".jmp-title", has_text=re.compile(r"^dut\.sh$"))
    widget = notebook.cell(0).locator(".jmp-generic", has=title)
    widget.wait_for(timeout=30_000)
    row = widget.locator('[data-method="call_method"]')
    row.locator("input[name=method]").fill("wait")
    row.locator("input[name=env]").fill("{}")
    row.get_by_role("button", name="call_method").click()
    result = row.locator(".jmp-result")
    wait_for(
        lambda: "first" in result.inner_text() and "running…" in result.inner_text(),
        60,
        "the first line while the method still runs",
    )
    flag.touch()
    wait_for(
        lambda: "second" in result.inner_text() and "running…" not in result.inner_text(),
        60,
        "the rest of the output and the exit code",
    )
    assert "0" in result.inner_text().splitlines()[-1]  # the last chunk carries the exit code

    failed = notebook.cell(0).locator(".jmp-failed")
    assert "dut.hub" in failed.inner_text() and "failed" in failed.inner_text()
    tree = notebook.run_cell(1)[0]["text"]
    assert re.search(r"hub  \(PowerClient\)  FAILED: \w+", tree), tree
