"""The front ends' own checks, in `make test`: eslint over labextension/ (its flat config,
eslint.config.js), the node unit tests of the chart's scales and the kernel/front-end message
protocol (labextension/test, node's built-in runner), and that protocol against the kernel
side of a real widget. About 10 s on an idle machine."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from support import wait_for

LABEXTENSION = Path(__file__).resolve().parents[1] / "labextension"
ESLINT = LABEXTENSION / "node_modules" / "eslint" / "bin" / "eslint.js"


def node(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("node") or "node", *args],
        cwd=LABEXTENSION,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )


def test_the_front_end_sources_pass_eslint():
    result = node(str(ESLINT), ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_eslint_catches_a_violation():
    """The config really checks the widget sources (a misspelt name is an error, not a pass)."""
    bad = 'import { h } from "./shared.js";\nexport function render() { return h("div", {}, lable); }\n'
    result = node(str(ESLINT), "--stdin", "--stdin-filename", "src/widgets/bad.js", stdin=bad)
    assert result.returncode == 1 and "'lable' is not defined" in result.stdout, result.stdout + result.stderr


def test_the_front_end_unit_tests_pass():
    result = node("--test", "test/")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout


def protocol(expression: str, **values: object) -> object:
    """Evaluate ``expression`` with labextension/src/protocol.js imported as ``p`` (and ``values``)."""
    script = (
        f"const p = await import('./src/protocol.js'); const v = {json.dumps(values)};\n"
        f"console.log(JSON.stringify({expression}));"
    )
    result = node("--input-type=module", "-e", script)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_kernel_and_front_end_speak_the_same_messages(serve_driver):
    """What protocol.js builds, the widget's kernel side acts on; what the kernel answers, it accepts."""
    from jumpstarter_jupyter import __version__
    from jumpstarter_jupyter.drivers.power.driver import MockPower
    from jumpstarter_jupyter.drivers.power.widget import PowerWidget

    action, request = protocol("[p.actionMessage('on'), p.bundleRequest()]")
    with serve_driver(MockPower(), name="power") as power:
        widget = PowerWidget.for_client(power)
        sent = []
        widget.send = lambda content, buffers=None: sent.append(content)
        for content in (action, request):  # as the comm delivers a front end's model.send
            widget._handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})
        wait_for(lambda: power.state() is True, what="the front end's action to switch power on")
        widget.close()
    assert [reply["type"] for reply in sent] == ["bundle"]
    check = "p.bundleSource(v.reply, 'power', v.version) !== null"
    assert protocol(check, reply=sent[0], version=__version__) is True
