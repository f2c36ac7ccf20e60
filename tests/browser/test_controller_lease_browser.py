"""A controller's lease, seen in JupyterLab: ``%jmp connect --controller`` draws the lease (the wait
widget, then the panel's lease bar) with the Client object, the exporter and a countdown; the bar's
"release" deletes it and both views say it ended. Our exporter (its own process) is joined to the
session's test controller (tests/controller)."""

from __future__ import annotations

import pytest

from controller import client_config, joined_exporter, new_client
from support import wait_for

pytestmark = pytest.mark.browser
DEADLINE = 60


def test_the_lease_bar_shows_a_controller_lease_and_releases_it(controller, open_notebook, tmp_path):
    client, token = new_client(controller)
    client_config(controller, tmp_path / "clients" / "lab.yaml", client, token)
    with joined_exporter(
        controller,
        tmp_path,
        {"board": "browser-ui"},
        {"power": {"type": "MockPower"}},
        lease={"required": True},
    ) as board:
        notebook = open_notebook(
            "controller.ipynb",
            [
                f"import os\nos.environ['JMP_CLIENT_CONFIG_HOME'] = {str(tmp_path)!r}\n%load_ext jumpstarter\n"
                "%jmp connect --controller lab --selector board=browser-ui --duration 20m"
            ],
        )
        notebook.run_cell(0)
        bars = notebook.cell(0).locator(".jmp-lease")  # the wait widget, then the panel's bar

        def modes() -> list[str]:
            return [bars.nth(i).get_attribute("data-mode") for i in range(bars.count())]

        wait_for(lambda: modes() == ["ready", "ready"], DEADLINE, "both views to show the granted lease")
        (lease,) = controller.leases_of(client)
        for index in range(2):
            text = bars.nth(index).inner_text()
            assert f"client {client} holds {board}" in text and f"lease {lease.id} at controller lab" in text
        left = bars.nth(1).locator(".jmp-left")
        assert 19 * 60 < int(left.get_attribute("data-seconds")) <= 20 * 60 and "left" in left.inner_text()

        bars.nth(1).get_by_role("button", name="release").click()
        wait_for(lambda: lease.ended, DEADLINE, "the controller to end the lease")
        assert lease.conditions["Ready"].reason == "Released"
        wait_for(lambda: modes() == ["ended", "ended"], DEADLINE, "both views to show the end")
        text = bars.nth(1).inner_text()
        assert "the lease ended (Released)" in text and "connect again for a new lease" in text, text
        assert not [line for line in notebook.console if line.startswith("error")], notebook.console
