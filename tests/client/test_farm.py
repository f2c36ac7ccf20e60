"""Any free board of four labelled exporters: a free match at once, a waiter in line at every
match gets the first released and leaves no queue entry behind (not even when SIGKILLed), and
a declined offer runs no hook. One shelf of four exporter processes for the module."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import nbformat
import pytest

import jumpstarter_jupyter as jj
from jumpstarter_jupyter.client import farm, pool
from jumpstarter_jupyter.client.lease import Withdrawn
from jumpstarter_jupyter.errors import ConnectionFailed, LeaseTimeout
from shelf import DEADLINE, Shelf
from support import wait_for


@pytest.fixture(scope="module")
def shelf(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shelf")
    with pytest.MonkeyPatch.context() as patch:
        board = Shelf(directory, directory / "jupyter-config")
        for key, value in board.env().items():
            if key.startswith("JUPYTER_CONFIG"):
                patch.setenv(key, value)
        yield board
        board.stop()


@pytest.fixture
def held(shelf):
    """Hold boards by name (``held("imx-1")``); every lease is given back afterwards."""
    holders = []

    def hold(*names: str):
        holders.extend(jj.connect(shelf.addresses[name], purpose="holding") for name in names)
        return holders[-len(names) :]

    yield hold
    for holder in holders:
        holder.close()
    shelf.wait_until_free(*shelf.addresses)


def test_labels_are_the_exporters_and_the_pools_and_the_pool_wins(shelf):
    states = {state.name: state for state in pool.pool_states()}
    assert states["imx-1"].labels == {"soc": "imx8mp", "rev": "a", "site": "lab1"}
    assert states["imx-2"].labels == {"soc": "imx8mp", "rev": "b", "site": "lab2"}  # rev=b: the pool's
    with jj.connect("am-2", lease=False) as watcher:  # the exporter reports its own in GetReport
        assert dict(watcher.connection.report.labels) == {"soc": "am62"}


def test_a_selector_connects_to_a_free_match_at_once(shelf, held):
    held("imx-1")
    hooks = shelf.hooks_run("imx-2")
    with jj.connect(selector="soc=imx8mp", purpose="bring-up") as dut:
        assert dut.connection.board == "imx-2"
        dut.power.on()  # the lease is the connection's
        assert shelf.status("imx-2").lease.purpose == "bring-up"
        assert shelf.hooks_run("imx-2") == hooks + 1
    with jj.connect(selector="soc in (am62), site=lab2, !broken") as dut:
        assert dut.connection.board == "am-2"


def test_a_waiter_gets_the_first_board_released_and_leaves_the_other_queue(shelf, held):
    first, second = held("imx-1", "imx-2")
    places, got = [], {}

    def wait() -> None:
        got["dut"] = jj.connect(selector="soc=imx8mp", purpose="waiter", on_queued=places.append)

    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_for(
        lambda: shelf.queue("imx-1") == ["waiter"] and shelf.queue("imx-2") == ["waiter"],
        DEADLINE,
        "the waiter in line at both boards",
    )
    second.close()
    waiter.join(DEADLINE)
    dut = got["dut"]
    try:
        assert dut.connection.board == "imx-2" and places == [1]
        assert shelf.queue("imx-1") == []  # withdrawn at once
        assert shelf.status("imx-2").lease.purpose == "waiter"
        first.close()
        shelf.wait_until_free("imx-1")  # nobody took imx-1: the request held one board only
    finally:
        dut.close()


def test_a_waiter_killed_while_in_line_at_two_boards_leaves_neither_queue(shelf, held):
    held("am-1", "am-2")
    code = "import jumpstarter_jupyter as jj; jj.connect(selector='soc=am62', purpose='doomed')"
    waiter = subprocess.Popen([sys.executable, "-c", code], env=shelf.env(), stdin=subprocess.DEVNULL)
    try:
        wait_for(
            lambda: shelf.queue("am-1") == ["doomed"] and shelf.queue("am-2") == ["doomed"],
            DEADLINE,
            "the waiter in line at both boards",
        )
    finally:
        os.kill(waiter.pid, signal.SIGKILL)
        waiter.wait(DEADLINE)
    wait_for(lambda: shelf.queue("am-1") == [] and shelf.queue("am-2") == [], DEADLINE, "both queues empty")


def test_no_hook_runs_for_a_declined_offer_and_the_next_in_line_gets_the_board(shelf, held):
    [holder] = held("am-1")
    [board] = farm.find("soc=am62,site=lab1")
    decliner = board.lease("declines", 0, True)
    offers = []

    def decline() -> None:
        try:
            decliner.wait_for_grant(on_offer=lambda lease: offers.append(lease) or False)
        except Withdrawn as exc:
            offers.append(str(exc))

    declining = threading.Thread(target=decline)
    declining.start()
    wait_for(lambda: shelf.queue("am-1") == ["declines"], DEADLINE, "the decliner in line")
    taker = board.lease("takes", 0, True)
    taking = threading.Thread(target=taker.wait_for_grant)
    taking.start()
    wait_for(lambda: shelf.queue("am-1") == ["declines", "takes"], DEADLINE, "both in line")
    hooks = shelf.hooks_run("am-1")
    holder.close()
    declining.join(DEADLINE)
    taking.join(DEADLINE)
    try:
        assert offers == [decliner, f"declined the board offered at {shelf.addresses['am-1']}"]
        assert taker.active and shelf.status("am-1").lease.purpose == "takes"
        assert shelf.hooks_run("am-1") == hooks + 1  # the taker's hook only
        assert (
            "left the line: declined the offer" in (shelf.directory / "am-1.log").read_text()
        )  # said on the wire
    finally:
        taker.release()
        board.channel.close()


def test_wait_bounds_the_wait_at_every_board_and_leaves_no_queue_entry(shelf, held):
    held("imx-1", "imx-2")
    with pytest.raises(
        LeaseTimeout, match=r"no lease on any of 2 boards within .*places in line: imx-\d 1, imx-\d 1"
    ):
        jj.connect(selector="soc=imx8mp", wait=1.0, purpose="impatient")
    wait_for(lambda: shelf.queue("imx-1") == [] and shelf.queue("imx-2") == [], DEADLINE, "both queues empty")


def test_a_selector_nothing_matches_names_the_boards_and_a_bad_one_names_the_column(shelf):
    with pytest.raises(
        ConnectionFailed,
        match=r"no board of the pool matches 'soc=rk3588': imx-1 \(labels "
        r"rev=a,site=lab1,soc=imx8mp\)",
    ):
        jj.connect(selector="soc=rk3588")
    with pytest.raises(ValueError, match="at column 12: expected ',' between requirements"):
        jj.connect(selector="soc=imx8mp site=lab1")
    with pytest.raises(ValueError, match="give an endpoint or a selector, not both"):
        jj.connect("imx-1", selector="soc=imx8mp")


def test_ctrl_c_stops_run_notebooks_and_releases_every_lease(shelf, tmp_path):
    parameters_notebook(
        tmp_path / "block.ipynb", "import threading\nthreading.Event().wait()  # until interrupted"
    )
    runner = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jumpstarter_jupyter",
            "run-notebooks",
            str(tmp_path / "block.ipynb"),
            "--selector",
            "soc=am62",
            "--each",
            "--parallel",
            "2",
            "--out",
            str(tmp_path / "out"),
        ],
        env=shelf.env(),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(
            lambda: (
                [shelf.status(name).lease.purpose for name in ("am-1", "am-2")]
                == ["block.ipynb on am-1", "block.ipynb on am-2"]
            ),
            DEADLINE,
            "both runs holding their boards",
        )
        runner.send_signal(signal.SIGINT)
        _, stderr = runner.communicate(timeout=DEADLINE)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 130, stderr
    assert "2 runs: 2 interrupted" in stderr
    shelf.wait_until_free("am-1", "am-2")
    assert (tmp_path / "out" / "index.html").read_text().count('data-outcome="interrupted"') == 2
    leftovers = subprocess.run(
        ["pgrep", "-f", f"papermill {tmp_path}"], capture_output=True, text=True
    ).stdout
    assert leftovers == ""


def test_run_notebooks_refuses_a_notebook_that_would_queue_behind_its_runner(shelf, tmp_path):
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import jumpstarter_jupyter")]),
        tmp_path / "plain.ipynb",
    )
    run = run_notebooks(shelf, tmp_path / "plain.ipynb", "--selector", "soc", "--out", tmp_path / "out")
    assert run.returncode == 1
    assert "plain.ipynb: no endpoint or lease_token parameter" in run.stderr
    assert not (tmp_path / "out").exists() and shelf.queue("imx-1") == []


def test_a_run_that_gets_no_board_says_why_on_the_terminal(shelf, held, tmp_path):
    held("am-1")
    notebook = parameters_notebook(tmp_path / "quick.ipynb")
    args = ("--selector", "soc=am62", "--each", "--wait", "1s", "--out", tmp_path / "out")
    run = run_notebooks(shelf, notebook, *args)
    assert run.returncode == 1, run.stderr
    assert "ERROR       quick.ipynb on am-1 (no lease: no lease on" in run.stderr, run.stderr
    assert "PASSED      quick.ipynb on am-2\n" in run.stderr, run.stderr
    assert "2 runs: 1 error, 1 passed" in run.stderr, run.stderr


def parameters_notebook(path, *cells: str):
    """A notebook as run-notebooks runs them: a parameters cell (endpoint, lease_token), then ``cells``."""
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    notebook.cells = [nbformat.v4.new_code_cell(c) for c in ("endpoint = None\nlease_token = None", *cells)]
    notebook.cells[0].metadata["tags"] = ["parameters"]
    nbformat.write(notebook, path)
    return path


def run_notebooks(shelf, *args) -> subprocess.CompletedProcess:
    """``jumpstarter-jupyter run-notebooks ARGS`` on the shelf's pool, to the end."""
    return subprocess.run(
        [sys.executable, "-m", "jumpstarter_jupyter", "run-notebooks", *map(str, args)],
        env=shelf.env(),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=DEADLINE,
    )
