"""A saved notebook opened with neither kernel nor JupyterLab extension shows each widget's
text fallback with its saved traits.

JupyterLab restores no widget state without a kernel, so the saved notebook is rendered the
way static viewers render one: nbconvert's HTML export, whose page draws the saved widget
state with the ipywidgets HTML manager. Every file the page needs (require.js, the HTML
manager, anywidget's front end) is served from a local HTTP server; a request for anything
else fails the test, so the page cannot have fetched a front end from anywhere.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import anywidget
import nbformat
import pytest
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from browser.conftest import isolated_env
from support import start_exporter

pytestmark = pytest.mark.browser

NODE_MODULES = Path(__file__).resolve().parents[2] / "labextension" / "node_modules"
HTML_MANAGER = NODE_MODULES / "@jupyter-widgets" / "html-manager" / "dist"
REQUIRE_JS = NODE_MODULES / "requirejs" / "require.js"
# anywidget's front end as an AMD module: what the HTML manager's require.js loader asks for
ANYWIDGET_AMD = Path(anywidget.__file__).parent / "nbextension" / "index.js"
DRIVERS = {"dut.power", "dut.serial", "dut.storage", "dut.network", "dut.button", "dut.led", "dut.can"}
RENDERED = 60_000  # ms for the page to draw every widget
# what each widget's text view must show once the board has booted (the test's checks below)
SHOWS = {
    "power": "power on, last reading",
    "serial": "login:",
    "network": "service at tcp://",
    "storage": "storage connected to:",
    "led": "pin:",
    "button": "pin:",
    "can": " frames",
}
NOTE = "live view: needs the running kernel or the jumpstarter-jupyter JupyterLab extension"


def saved_notebook(endpoint: str, home: Path) -> nbformat.NotebookNode:
    """Connect to the board, boot it to its login prompt, and keep the widget state, as a saved
    notebook does."""
    cells = [
        "%load_ext jumpstarter",
        f"%jmp connect {endpoint}",
        "dut.power.on()\ndut.serial.expect('login:', timeout=60)",
        # traits are refreshed by the widgets' flushers: wait until every widget's summary (its
        # saved text view) shows what the test reads, polling with a deadline
        "import time\n"
        "from jumpstarter_jupyter.client.display import widget_for\n"
        f"shows = {SHOWS!r}\n"
        "widgets = {name: widget_for(getattr(dut, name)) for name in shows}\n"
        "deadline = time.monotonic() + 60\n"
        "missing = lambda: [n for n, text in shows.items() if text not in widgets[n].summary]\n"
        "while missing() and time.monotonic() < deadline:\n"
        "    time.sleep(0.1)\n"
        "assert not missing(), f'the widgets never showed the boot: {missing()}'",
        # the flushers send their updates on their own thread, which a loaded machine may not run
        # for a while: send every widget's state from this cell, so the kernel publishes it before
        # the cell ends and nbclient saves it
        "for widget in widgets.values():\n    widget.send_state()\nprint('synced')",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code) for code in cells])
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=180,
        store_widget_state=True,
        resources={"metadata": {"path": str(home)}},
    ).execute(env=isolated_env(home))
    return nb


@pytest.fixture
def site(tmp_path):
    """``(directory, origin)``: a local HTTP server for the static page and the files it loads."""
    directory = tmp_path / "site"
    directory.mkdir()
    for item in HTML_MANAGER.iterdir():  # embed-amd.js and the fonts its styles name
        shutil.copy(item, directory)
    shutil.copy(REQUIRE_JS, directory / "require.js")
    # require.js resolves a module name next to the page first: no CDN fallback is ever needed
    shutil.copy(ANYWIDGET_AMD, directory / "anywidget.js")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield directory, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def static_page(nb: nbformat.NotebookNode, origin: str) -> str:
    """nbconvert's HTML export of ``nb`` (widget state embedded), loading its scripts from ``origin``."""
    exporter = HTMLExporter(
        template_name="lab",
        require_js_url=f"{origin}/require.js",
        widget_renderer_url=f"{origin}/embed-amd.js",
        mathjax_url=f"{origin}/no-mathjax.js",
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def test_a_saved_notebook_without_kernel_and_extension_shows_the_text_fallback(chromium, site, tmp_path):
    directory, origin = site
    socket_path = tmp_path / "board.sock"
    board = start_exporter("demo", "--socket", socket_path)
    try:
        nb = saved_notebook(f"unix:{socket_path}", tmp_path)
    finally:
        board.kill()
        board.wait()
    (directory / "notebook.html").write_text(static_page(nb, origin))

    page = chromium.new_page()
    elsewhere, errors = [], []
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(origin)
            else (elsewhere.append(route.request.url), route.abort())
        ),
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(f"{origin}/notebook.html")
        fallbacks = page.locator(".jmp-fallback")
        page.wait_for_function(
            f"document.querySelectorAll('.jmp-fallback').length >= {len(DRIVERS) + 1}", timeout=RENDERED
        )
        texts = {text.split(" (text view)")[0]: text for text in fallbacks.all_inner_texts()}
    finally:
        page.close()
    texts.pop("dut")  # the root's lease bar, as text too
    assert set(texts) == DRIVERS, texts
    assert all(NOTE in text or "no kernel to load the live view from" in text for text in texts.values()), (
        texts
    )
    for name, shown in SHOWS.items():
        assert shown in texts[f"dut.{name}"], (name, texts)
    assert "U-Boot" in texts["dut.serial"]  # the saved console tail
    assert elsewhere == [], f"the page asked for files from elsewhere: {elsewhere}"
    assert errors == [], errors
