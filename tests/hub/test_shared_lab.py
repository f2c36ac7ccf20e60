"""Two people on one board through a real JupyterHub, each in their own Chromium context.

u1 takes the board from the devices sidebar; u2 sees u1 hold it, watches u1's console with
its controls locked, asks for a hand-over; u1's kernel is shut down through the hub and the
board comes back free and powered off (the exporter's afterLease hook); u2 takes it, opens
the board's web page through its own server's proxy; u2's kernel is then SIGKILLed and the
board comes back within one heartbeat. Screenshots of both views are kept on failure.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from browser.conftest import CHROMIUM, FLAGS, NotebookPage
from browser.test_devices import SIDEBAR_TAB, card, run_code
from browser.test_lease_browser import rows
from jumpstarter_jupyter import connect
from support import wait_for

pytestmark = pytest.mark.browser
DEADLINE = 60  # seconds for what a person would wait for
HEARTBEAT = 10  # seconds (examples/shared-lab.yaml)
ARTIFACTS = Path(__file__).resolve().parents[2] / "jumpstarter-logs" / "hub"  # gitignored


@pytest.fixture(scope="module")
def browser(playwright_session):
    """Headless Chromium (Debian's); each user gets a context of their own."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")
    chromium = playwright_session.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
    yield chromium
    chromium.close()


def log_in(hub, browser, user: str) -> NotebookPage:
    """``user`` logs in on the hub's page and opens a notebook of their own in JupyterLab."""
    hub.start_server(user)
    token = hub.token(user, ["access:servers!user"])
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "cells": [],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    }
    request = urllib.request.Request(
        f"{hub.url}/user/{user}/api/contents/lab.ipynb",
        method="PUT",
        data=json.dumps({"type": "notebook", "format": "json", "content": notebook}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=30).close()
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.goto(f"{hub.url}/hub/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", "shared-lab")
    page.click("input[type=submit]")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=DEADLINE * 1000)
    page.goto(f"{hub.url}/user/{user}/lab/workspaces/shared/tree/lab.ipynb")
    view = NotebookPage(page)
    view.wait_ready()
    return view


@pytest.fixture
def people(hub, lab_board, browser, request) -> Iterator[dict[str, NotebookPage]]:
    """u1's and u2's notebooks; screenshots of both when the test fails."""
    views = {user: log_in(hub, browser, user) for user in ("u1", "u2")}
    yield views
    if getattr(request.node, "failed", True):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for user, view in views.items():
            view.page.screenshot(path=str(ARTIFACTS / f"{user}.png"), full_page=True)
    for view in views.values():
        view.page.context.close()


def bar(view: NotebookPage):
    """The lease bar of the notebook's last panel."""
    return view.page.locator(".jmp-lease").last


def kernel_value(view: NotebookPage, expression: str) -> str:
    """What ``expression`` prints in the notebook's kernel."""
    run_code(view, f"print({expression})")
    printed = [outputs for outputs in view.all_outputs() if outputs]  # Shift+Enter added an empty cell below
    return printed[-1][0]["text"].strip()


def test_two_users_share_one_board(hub, lab_board, people):
    u1, u2 = people["u1"], people["u2"]
    observer = connect(lab_board.endpoint, lease=False)
    try:
        _u1_takes_the_board(u1, lab_board, observer)
        _u2_watches_and_asks(u2, u1)
        _u1s_kernel_shut_down_from_the_hub(hub, u1, u2, observer)
        _u2_opens_the_board_page_through_its_server(hub, u2)
        _u2s_kernel_killed(u2, u1, observer)
    finally:
        observer.close()


def _u1_takes_the_board(u1: NotebookPage, lab_board, observer) -> None:
    page = u1.page
    page.locator(SIDEBAR_TAB).click()
    bench = card(page, "bench-1")
    wait_for(
        lambda: bench.get_attribute("data-state") == "free", DEADLINE, "u1's sidebar to show bench-1 free"
    )
    bench.get_by_role("button", name="connect in this notebook").click()
    wait_for(lambda: bar(u1).get_attribute("data-mode") == "holder", DEADLINE, "u1's lease bar")
    lease = observer.connection.lease_status().lease
    assert (lease.holder, lease.verified) == ("u1", True)
    wait_for(
        lambda: "held by this notebook" in bench.inner_text(), DEADLINE, "u1's sidebar to name this notebook"
    )
    status = page.locator(".jmp-lease-status")
    wait_for(lambda: status.is_visible() and status.get_attribute("data-seconds"), DEADLINE, "u1's countdown")
    assert status.inner_text().startswith("bench-1: ")
    # the exporter got a name-only credential, never the server's own token
    server_token = kernel_value(
        u1,
        "__import__('jumpstarter_jupyter.exporter.identity').exporter.identity"
        ".fingerprint(__import__('os').environ['JUPYTERHUB_API_TOKEN'])",
    )
    logged = lab_board.logged()
    assert "hub user u1 verified (credential sha256:" in logged and server_token.startswith("sha256:")
    assert server_token not in logged
    run_code(u1, "dut.board.power.on(); dut.board.serial.expect('login: ', timeout=90)")


def _u2_watches_and_asks(u2: NotebookPage, u1: NotebookPage) -> None:
    page = u2.page
    page.locator(SIDEBAR_TAB).click()
    bench = card(page, "bench-1")
    wait_for(
        lambda: bench.get_attribute("data-state") == "held" and "held by u1" in bench.inner_text(),
        DEADLINE,
        "u2's sidebar to show u1 holding bench-1",
    )
    bench.get_by_role("button", name="watch").click()
    wait_for(lambda: bar(u2).get_attribute("data-mode") == "watcher", DEADLINE, "u2's watcher bar")
    assert "held by u1" in bar(u2).inner_text()
    power_on = page.locator(".jmp-power").last.get_by_role("button", name="on", exact=True)
    wait_for(power_on.is_disabled, DEADLINE, "u2's power button to be disabled")
    assert power_on.get_attribute("title").startswith("only the lease holder can do this: held by u1")
    screen = page.locator(".jmp-serial .jmp-term").last
    run_code(u1, "dut.board.serial.sendline('echo SEEN-BY-U2')")
    wait_for(lambda: "SEEN-BY-U2" in rows(screen), DEADLINE, "u1's console live in u2's terminal")
    bar(u2).get_by_role("button", name="request hand-over").click()
    notice = bar(u1).locator(".jmp-notice")
    wait_for(
        lambda: notice.count() == 1 and "u2 asks for the board" in notice.inner_text(),
        DEADLINE,
        "u2's verified hand-over request in u1's panel",
    )


def _u1s_kernel_shut_down_from_the_hub(hub, u1: NotebookPage, u2: NotebookPage, observer) -> None:
    kernel = u1.page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
    token = hub.token("u1", ["access:servers!user"])
    request = urllib.request.Request(
        f"{hub.url}/user/u1/api/kernels/{kernel}",
        method="DELETE",
        headers={"Authorization": f"token {token}"},
    )
    urllib.request.urlopen(request, timeout=30).close()
    bench = card(u2.page, "bench-1")
    wait_for(
        lambda: bench.get_attribute("data-state") == "free",
        HEARTBEAT + DEADLINE,
        "u2's sidebar to show bench-1 free",
    )
    wait_for(
        lambda: observer.board.power.state() is False, DEADLINE, "the afterLease hook to power the board off"
    )
    take = bar(u2).get_by_role("button", name="take the lease")
    take.wait_for(timeout=DEADLINE * 1000)
    take.click()
    wait_for(lambda: bar(u2).get_attribute("data-mode") == "holder", DEADLINE, "u2 to hold the board")
    lease = observer.connection.lease_status().lease
    assert (lease.holder, lease.verified) == ("u2", True)


def _u2_opens_the_board_page_through_its_server(hub, u2: NotebookPage) -> None:
    run_code(u2, "dut.board.power.on(); dut.board.serial.expect('login: ', timeout=90); dut.board.network")
    network = u2.page.locator(".jmp-network").last
    network.get_by_role("button", name="open forward").click()
    link = network.locator("a.jmp-proxied")
    link.wait_for(timeout=DEADLINE * 1000)
    port = network.locator(".jmp-forward code").inner_text().split(":")[-1]
    assert link.get_attribute("href") == f"{hub.url}/user/u2/proxy/{port}/"
    proxied = u2.page.context.new_page()
    try:
        proxied.goto(link.get_attribute("href"))
        assert "Jumpstarter" in proxied.content()
    finally:
        proxied.close()


def _u2s_kernel_killed(u2: NotebookPage, u1: NotebookPage, observer) -> None:
    pid = int(kernel_value(u2, "__import__('os').getpid()"))
    os.kill(pid, signal.SIGKILL)
    bench = card(u1.page, "bench-1")
    wait_for(
        lambda: bench.get_attribute("data-state") == "free",
        HEARTBEAT + DEADLINE,
        "u1's sidebar to show bench-1 free after u2's kernel died",
    )
    wait_for(
        lambda: observer.board.power.state() is False, DEADLINE, "the afterLease hook to power the board off"
    )
