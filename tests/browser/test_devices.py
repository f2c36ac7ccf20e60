"""The lab's chrome in JupyterLab: the pool file, the devices sidebar, the status bar's lease
countdown, and forward links through the server (jupyter-server-proxy).

Three boards in the pool of the session's JupyterLab (its per-user config directory): the
virtual board with leases required (free), a power-only board someone else holds, and a board
whose exporter is gone.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jumpstarter_jupyter import connect
from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from jumpstarter_jupyter.exporter.leases import LeasePolicy
from support import serving, start_exporter, wait_for

pytestmark = pytest.mark.browser
DEADLINE = 30
SIDEBAR_TAB = ".jp-SideBar .lm-TabBar-tab[data-id='jumpstarter-devices']"
POOL = """\
exporters:
  bench-free:
    endpoint: {free}
    description: the virtual board
    admin_passphrase_file: {admin}
  bench-held:
    endpoint: {held}
    labels: {{board: power-only}}
    admin_passphrase_file: {admin}
  bench-gone:
    endpoint: unix:{gone}
"""


@dataclass
class Pool:
    free: str
    held: str
    holder: object  # the client holding bench-held

    def hold_again(self) -> None:
        self.holder = connect(self.held, purpose="soak")


@pytest.fixture
def pool(lab, tmp_path) -> Iterator[Pool]:
    """The three boards, named in the lab's per-user pool file (removed afterwards)."""
    admin = tmp_path / "admin.pass"
    admin.write_text("root of trust\n")
    socket = tmp_path / "free.sock"
    demo = start_exporter("demo", "--socket", socket, "--lease", "required", "--admin-passphrase-file", admin)
    root = Composite()
    root.children = {"power": MockPower()}
    pool_file = Path(lab.root).parent / "config" / "jumpstarter-pool.yaml"
    with serving(root, lease=LeasePolicy(required=True, admin_passphrase="root of trust")) as held:
        pool_file.write_text(
            POOL.format(free=f"unix:{socket}", held=held.address, admin=admin, gone=tmp_path / "gone.sock")
        )
        state = Pool(f"unix:{socket}", held.address, connect(held.address, purpose="soak"))
        try:
            yield state
        finally:
            pool_file.unlink()
            state.holder.close()
            demo.terminate()
            demo.wait(DEADLINE)


def boards(lab) -> dict[str, dict]:
    return {board["name"]: board for board in lab.api("GET", "/jumpstarter/boards")["boards"]}


def test_the_server_reports_a_free_a_held_and_an_unreachable_board(lab, pool):
    answer = boards(lab)
    assert {"bench-free", "bench-held", "bench-gone"} <= set(answer)
    free, held, gone = answer["bench-free"], answer["bench-held"], answer["bench-gone"]
    assert free["reachable"] and free["required"] and not free["holder"] and free["drivers"] == 7
    assert free["description"] == "the virtual board" and free["admin"]
    assert (
        held["holder"] == pool.holder.lease.holder and held["purpose"] == "soak" and held["kernel_id"] == ""
    )
    assert 3500 < held["remaining"] <= 3600 and held["labels"] == {"board": "power-only"}
    assert held["summary"].startswith("1 drivers, held by") and held["queue"] == []
    assert not gone["reachable"] and gone["error"] == "not reachable"
    # authenticated like every Jupyter API
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{lab.url}/jumpstarter/boards", timeout=10)
    assert refused.value.code == 403


def card(page, name: str):
    return page.locator(f".jmp-devices .jmp-board[data-board='{name}']")


def test_the_sidebar_shows_the_pool_and_acts_on_it(lab, pool, open_notebook):
    notebook = open_notebook("devices.ipynb", [""])
    page = notebook.page
    page.locator(SIDEBAR_TAB).click()
    for name, state in (("bench-free", "free"), ("bench-held", "held"), ("bench-gone", "unreachable")):
        wait_for(
            lambda name=name, state=state: card(page, name).get_attribute("data-state") == state,
            DEADLINE,
            f"{name} shown {state}",
        )
    assert page.locator(".jmp-devices").inner_text().startswith("Devices\nbench-free")  # nothing stray above
    held = card(page, "bench-held")
    assert "held by" in held.inner_text() and "(soak)" in held.inner_text() and "left" in held.inner_text()
    assert "not reachable" in card(page, "bench-gone").inner_text()

    # a hand-over request reaches the holder; a lease taken or released elsewhere shows
    held.get_by_role("button", name="request hand-over").click()
    wait_for(lambda: pool.holder.lease.requests, DEADLINE, "the holder to hear the request")
    pool.holder.lease.release()
    wait_for(
        lambda: held.get_attribute("data-state") == "free", DEADLINE, "the sidebar to see bench-held freed"
    )
    pool.hold_again()
    wait_for(
        lambda: held.get_attribute("data-state") == "held", DEADLINE, "the sidebar to see bench-held taken"
    )

    # force release, offered because the pool's admin credential file is readable here
    held.get_by_role("button", name="force release").click()
    wait_for(lambda: not pool.holder.lease.active, DEADLINE, "the holder's lease to end")
    assert "force-released by the exporter's admin" in pool.holder.lease.ended
    wait_for(lambda: held.get_attribute("data-state") == "free", DEADLINE, "bench-held free again")


def test_connect_in_this_notebook_the_status_bar_countdown_and_a_proxied_forward(lab, pool, open_notebook):
    holding = open_notebook("holding.ipynb", [""])
    page = holding.page
    holding_id = page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
    page.locator(SIDEBAR_TAB).click()
    free = card(page, "bench-free")
    wait_for(lambda: free.get_attribute("data-state") == "free", DEADLINE, "bench-free shown free")
    free.get_by_role("button", name="connect in this notebook").click()
    # the cell it added ran: the panel is live, and the board is held by this very notebook
    page.locator(".jmp-power").first.wait_for(timeout=DEADLINE * 1000)
    wait_for(
        lambda: "held by this notebook" in free.inner_text(), DEADLINE, "the sidebar to name this notebook"
    )
    source = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => c.model.sharedModel.getSource())"
    )
    assert "%jmp connect bench-free" in "\n".join(source)

    # the status bar counts down; under five minutes it warns; a click extends by an hour
    status = page.locator(".jmp-lease-status")
    wait_for(
        lambda: status.is_visible() and status.get_attribute("data-seconds"),
        DEADLINE,
        "the status bar countdown",
    )
    assert status.inner_text().startswith("bench-free: ")
    run_code(holding, "%jmp lease --extend 4m")
    wait_for(
        lambda: (
            "jmp-soon" in status.get_attribute("class") and int(status.get_attribute("data-seconds")) <= 240
        ),
        DEADLINE,
        "the warning colour under five minutes",
    )
    watcher = connect(pool.free, lease=False)
    before = watcher.connection.lease_status().lease.expires
    status.click()
    wait_for(
        lambda: watcher.connection.lease_status().lease.expires > before + 3000,
        DEADLINE,
        "the click to extend",
    )
    wait_for(lambda: "jmp-soon" not in status.get_attribute("class"), DEADLINE, "the warning to go")

    # a forward of the board's HTTP service, opened through the user's server
    run_code(holding, "dut.power.on(); dut.serial.expect('login: ', timeout=90); dut.network")
    network = page.locator(".jmp-network").last
    network.get_by_role("button", name="open forward").click()
    link = network.locator("a.jmp-proxied")
    link.wait_for(timeout=DEADLINE * 1000)
    href = link.get_attribute("href")
    port = network.locator(".jmp-forward code").inner_text().split(":")[-1]
    assert href == f"{lab.url}/proxy/{port}/"
    proxied = holding.page.context.new_page()
    try:
        proxied.goto(href)
        assert "Jumpstarter" in proxied.content()
    finally:
        proxied.close()

    # another notebook in front: its kernel holds nothing, so no countdown; back, and it shows
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:create-new', {kernelName: 'python3'})")
    wait_for(lambda: not status.is_visible(), DEADLINE, "no countdown in a notebook holding nothing")
    page.evaluate("(id) => window.jupyterapp.shell.activateById(id)", holding_id)
    wait_for(status.is_visible, DEADLINE, "the countdown back with the holding notebook")
    watcher.close()


def run_code(notebook, code: str) -> None:
    """Append a cell with ``code`` and run it through the UI."""
    index = notebook.page.evaluate(
        """(code) => {
        const nb = window.jupyterapp.shell.currentWidget.content;
        const model = nb.model.sharedModel;
        model.insertCell(model.cells.length, { cell_type: "code", source: code });
        return model.cells.length - 1;
    }""",
        code,
    )
    notebook.run_cell(index)
