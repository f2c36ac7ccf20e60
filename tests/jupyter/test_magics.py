"""``%load_ext jumpstarter`` and ``%jmp`` in a real kernel, read as a user reads the cell output."""

from __future__ import annotations

import re

import pytest
from kernels import demo, jupyter_env, kernel, start_kernel  # noqa: F401  (fixtures)

from jumpstarter_jupyter.drivers.composite.driver import Composite
from jumpstarter_jupyter.drivers.power.driver import MockPower
from support import serving

pytestmark = pytest.mark.notebook


def board() -> Composite:
    rack = Composite()
    rack.description = "the bench supply"
    rack.children = {"aux": MockPower()}
    root = Composite()
    root.children = {"power": MockPower(), "rack": rack}
    return root


@pytest.fixture
def exporter():
    with serving(board()) as served:
        yield served


def test_connect_binds_dut_and_shows_the_panel_once(kernel, exporter):
    kernel.ok("%load_ext jumpstarter")
    cell = kernel.ok(f"%jmp connect {exporter.address}")
    assert len(cell.views) == 1
    assert "├─ power  (PowerClient)" in cell.text
    assert "   └─ aux  (PowerClient)" in cell.text
    assert kernel.ok("dut.power.on(); print(dut.power.state())").text == "True\n"


def test_assigned_connect_returns_the_client_and_still_shows_the_panel(kernel, exporter):
    kernel.ok("%load_ext jumpstarter_jupyter")
    cell = kernel.ok(f"board = %jmp connect {exporter.address} --name board")
    assert len(cell.views) == 1
    assert (
        kernel.ok("print(board is globals().get('board'), 'dut' in globals(), board.power)").text
        == "True False <PowerClient board.power>\n"
    )


def test_tree_status_and_help(kernel, exporter):
    kernel.ok("%load_ext jumpstarter")
    assert "not connected" in kernel.ok("%jmp status").text
    kernel.ok(f"%jmp connect {exporter.address};")
    assert kernel.ok("%jmp tree").text.splitlines() == [
        "dut  (CompositeClient)",
        "├─ power  (PowerClient)",
        "└─ rack  (CompositeClient)  the bench supply",
        "   └─ aux  (PowerClient)",
    ]
    status = kernel.ok("%jmp status").text
    assert re.fullmatch(
        rf"dut: {re.escape(exporter.address)}, 3 drivers, exporter [0-9a-f]{{8}} reachable; "
        rf"free \(leases are optional here\)\n",
        status,
    )
    help_text = kernel.ok("%jmp --help").text
    for expected in ("connect", "disconnect", "--passphrase", "--name"):
        assert expected in help_text


def test_status_says_when_the_exporter_is_gone(kernel):
    kernel.ok("%load_ext jumpstarter")
    with serving(board()) as served:
        kernel.ok(f"%jmp connect {served.address};")
    assert "dut: " in (status := kernel.ok("%jmp status").text) and "UNREACHABLE" in status


def test_disconnect_unbinds_and_closes(kernel, exporter):
    kernel.ok("%load_ext jumpstarter")
    kernel.ok(f"%jmp connect {exporter.address};")
    kernel.ok("client = dut")
    assert kernel.ok("%jmp disconnect").text == "dut: disconnected\n"
    assert kernel.ok("print('dut' in globals())").text == "False\n"
    cell = kernel.run("client.power.on()")
    assert cell.status == "error" and "closed channel" in cell.text
    assert "not connected" in kernel.ok("%jmp status").text
    assert "no connection named 'dut'" in kernel.run("%jmp disconnect").text


def test_unload_disconnects_and_removes_the_magic(kernel, exporter):
    kernel.ok("%load_ext jumpstarter")
    kernel.ok(f"%jmp connect {exporter.address};")
    kernel.ok("client = dut")
    kernel.ok("%unload_ext jumpstarter")
    assert kernel.ok("print('dut' in globals())").text == "False\n"
    assert kernel.run("client.power.on()").status == "error"
    assert "not found" in kernel.run("%jmp status").text
    kernel.ok("%load_ext jumpstarter")  # loads again after unloading
    assert "not connected" in kernel.ok("%jmp status").text


def test_errors_are_one_line_usage_errors(kernel, tmp_path):
    kernel.ok("%load_ext jumpstarter")
    missing = tmp_path / "nothing.sock"
    cell = kernel.run(f"%jmp connect unix:{missing}")
    assert cell.status == "error" and cell.text.startswith("UsageError: ")
    assert f"%jmp connect: dut.connect: exporter at unix:{missing} is not reachable" in cell.text
    assert "Traceback" not in cell.text
    assert "invalid choice: 'conect'" in kernel.run("%jmp conect").text
    assert "--name must be a Python identifier" in kernel.run("%jmp connect --name 2dut").text


def test_a_failed_connect_keeps_the_old_connection(kernel, exporter, tmp_path):
    kernel.ok("%load_ext jumpstarter")
    kernel.ok(f"%jmp connect {exporter.address};")
    assert kernel.run(f"%jmp connect unix:{tmp_path / 'nothing.sock'}").status == "error"
    assert kernel.ok("dut.power.off(); print(dut.power.state())").text == "False\n"


def test_passphrase(kernel):
    kernel.ok("%load_ext jumpstarter")
    with serving(board(), tcp=True, passphrase="s3cret") as served:
        wrong = kernel.run(f"%jmp connect {served.address} --passphrase nope")
        assert wrong.status == "error" and wrong.text.startswith("UsageError: ")
        assert "passphrase" in wrong.text
        kernel.ok(f"%jmp connect {served.address} --passphrase s3cret;")
        assert kernel.ok("print(dut.power.state())").text == "False\n"


def test_endpoint_from_jumpstarter_host(start_kernel, exporter):
    kernel = start_kernel(JUMPSTARTER_HOST=exporter.address)
    kernel.ok("%load_ext jumpstarter")
    kernel.ok("%jmp connect;")
    assert f"dut: {exporter.address}, 3 drivers" in kernel.ok("%jmp status").text


def test_private_board_lives_and_dies_with_the_kernel(kernel):
    kernel.ok("%load_ext jumpstarter")
    kernel.ok("%jmp connect;")
    assert "dut: private virtual board, 7 drivers" in kernel.ok("%jmp status").text
    pid = int(kernel.ok("print(dut.private_board.process.pid)").text)
    kernel.ok("dut.power.on()\ndut.serial.expect('login: ', timeout=60)")
    kernel.shutdown()
    assert not _alive(pid)


def test_a_restarted_kernel_reconnects_to_a_board_that_kept_its_state(start_kernel, demo):
    first = start_kernel()
    first.ok(f"%load_ext jumpstarter\n%jmp connect {demo};")
    first.ok("dut.power.on()\ndut.serial.expect('login: ', timeout=60)")
    first.shutdown()
    second = start_kernel()
    second.ok(f"%load_ext jumpstarter\n%jmp connect {demo};")
    assert second.ok("print(dut.power.state(), 'login: ' in dut.serial.log())").text == "True True\n"


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ")[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_jmp_pool_lists_each_board_with_its_state(start_kernel, exporter, tmp_path):
    config = tmp_path / "jupyter-config"
    config.mkdir()
    (config / "jumpstarter-pool.yaml").write_text(
        f"exporters:\n  bench-1: {{endpoint: '{exporter.address}', description: the bench}}\n"
        f"  gone: {{endpoint: 'unix:{tmp_path}/gone.sock'}}\n"
    )
    kernel = start_kernel(JUPYTER_CONFIG_DIR=str(config))
    kernel.ok("%load_ext jumpstarter")
    lines = kernel.ok("%jmp pool").text.splitlines()
    assert lines == [
        f"bench-1  {exporter.address}: 3 drivers, free (leases optional)  the bench",
        f"gone     unix:{tmp_path}/gone.sock: not reachable",
    ]
    kernel.ok("%jmp connect bench-1;")  # a pool name works wherever an endpoint does
    assert "dut: " + exporter.address in kernel.ok("%jmp status").text


def test_connect_with_a_selector_takes_a_matching_board_of_the_pool(start_kernel, tmp_path):
    from jumpstarter_jupyter.exporter.leases import LeasePolicy

    config = tmp_path / "jupyter-config"
    config.mkdir()
    with (
        serving(board(), lease=LeasePolicy(required=True), labels={"soc": "imx8mp"}) as imx,
        serving(board(), lease=LeasePolicy(required=True), labels={"soc": "am62"}) as am,
    ):
        (config / "jumpstarter-pool.yaml").write_text(
            f"exporters:\n  imx: {{endpoint: '{imx.address}'}}\n  am: {{endpoint: '{am.address}'}}\n"
        )
        kernel = start_kernel(JUPYTER_CONFIG_DIR=str(config), JUPYTER_CONFIG_PATH=str(tmp_path / "none"))
        kernel.ok("%load_ext jumpstarter")
        connected = kernel.ok("%jmp connect --selector 'soc in (am62,rk3588)';").text
        assert "dut is am (matches soc in (am62,rk3588))" in connected
        listed = dict(line.split(None, 1) for line in kernel.ok("%jmp pool").text.splitlines())
        assert "held by" in listed["am"] and listed["am"].endswith("[soc=am62]")
        assert "free" in listed["imx"] and listed["imx"].endswith("[soc=imx8mp]")
        assert am.leases.current is not None and imx.leases.current is None
        refused = kernel.run("%jmp connect --selector 'soc=imx8mp site'")
        assert "%jmp connect: bad label selector 'soc=imx8mp site' at column 12" in refused.text
        kernel.ok("%jmp disconnect")


def test_connect_with_a_controller_names_the_selector_it_cannot_satisfy(start_kernel, controller, tmp_path):
    from controller import client_config, new_client

    name, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", name, token)
    kernel = start_kernel(
        JMP_CLIENT_CONFIG_HOME=str(tmp_path),
        JUPYTER_CONFIG_DIR=str(tmp_path),
        JUPYTER_CONFIG_PATH=str(tmp_path / "none"),
    )
    kernel.ok("%load_ext jumpstarter")
    assert "--controller needs a --selector" in kernel.run("%jmp connect --controller lab").text
    refused = kernel.run("%jmp connect --controller lab --selector board=nowhere").text
    assert "%jmp connect: controller lab (127.0.0.1:" in refused and "'board=nowhere'" in refused, refused
    unknown = kernel.run("%jmp connect --controller nope --selector board=nowhere").text
    assert "no client config named 'nope'" in unknown and "configs there: lab" in unknown, unknown
    assert len(controller.leases_of(name)) == 1
    (tmp_path / "jumpstarter-pool.yaml").write_text(
        "exporters:\n  lab-rpi: {controller: lab, selector: board=rpi4, description: any Pi 4}\n"
    )
    assert (
        kernel.ok("%jmp pool").text == "lab-rpi  controller lab: any exporter matching board=rpi4  any Pi 4\n"
    )
