"""The widgets in JupyterLab's light and dark themes, and the live power chart, in real Chromium.

Colours are read as the browser computed them and compared with what JupyterLab's own
variables resolve to in the same place, before and after a live theme switch. The chart's axes,
unit labels, y ranges and hover readout are read from its DOM; the y ranges are checked against
the readings the kernel sent (read back in a cell).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import wait_for

pytestmark = pytest.mark.browser

LIGHT, DARK = "JupyterLab Light", "JupyterLab Dark"
# (what, selector in the cell's output, CSS property, JupyterLab variable it must equal)
STYLES = [
    ("widget background", ".jmp-power.jmp-widget", "background-color", "--jp-layout-color1"),
    ("widget text", ".jmp-power.jmp-widget", "color", "--jp-ui-font-color1"),
    ("button background", ".jmp-power .jmp-btn:not(.jmp-on)", "background-color", "--jp-layout-color2"),
    ("chart frame", ".jmp-power .jmp-chart-frame", "fill", "--jp-layout-color0"),
    ("chart tick labels", ".jmp-power .jmp-chart-tick", "fill", "--jp-ui-font-color2"),
    (
        "terminal background",
        ".jmp-serial .xterm-scrollable-element",
        "background-color",
        "--jp-layout-color0",
    ),
    ("gpio switch", ".jmp-gpio .jmp-switch:not(.jmp-active)", "background-color", "--jp-layout-color3"),
]
# [[what, actual, expected], ...]: each expected is the variable resolved by a probe element
# placed next to the styled one (so it sees the same variables), as the same CSS property
READ_STYLES = """([root, styles]) => styles.map(([what, selector, property, variable]) => {
    const node = document.querySelectorAll(".jp-Notebook .jp-Cell")[root].querySelector(selector);
    if (!node) return [what, null, `no ${selector}`];
    const probe = document.createElementNS(node.namespaceURI, node.tagName);
    probe.style.setProperty(property, `var(${variable})`);
    node.parentNode.append(probe);
    const expected = getComputedStyle(probe).getPropertyValue(property);
    probe.remove();
    return [what, getComputedStyle(node).getPropertyValue(property), expected];
})"""
# how many canvas pixels of the power chart have the colour `variable` resolves to
COUNT_PIXELS = """([root, variable]) => {
    const cell = document.querySelectorAll(".jp-Notebook .jp-Cell")[root];
    const canvas = cell.querySelector(".jmp-power canvas.jmp-chart");
    const probe = document.createElement("span");
    probe.style.color = `var(${variable})`;
    canvas.parentNode.append(probe);
    const [r, g, b] = getComputedStyle(probe).color.match(/\\d+/g).map(Number);
    probe.remove();
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    // an anti-aliased line's pixels keep its colour at partial opacity (the canvas is transparent)
    const near = (i) => Math.abs(data[i] - r) <= 4 && Math.abs(data[i + 1] - g) <= 4 && Math.abs(data[i + 2] - b) <= 4;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] >= 128 && near(i)) count++;
    return { colour: [r, g, b], count };
}"""
READINGS = (
    "import json\nfrom jumpstarter_jupyter.client.display import widget_for\n"
    "print(json.dumps(widget_for(dut.power).readings))"
)


def screenshot(notebook, name: str) -> None:
    """Save the panel's picture to $JMP_SCREENSHOTS (how the README's descriptions were made)."""
    if os.environ.get("JMP_SCREENSHOTS"):
        notebook.cell(0).screenshot(path=str(Path(os.environ["JMP_SCREENSHOTS"]) / f"{name}.png"))


@contextlib.contextmanager
def theme(notebook, name: str, light: bool) -> Iterator[None]:
    """Switch JupyterLab to theme ``name`` as its menu does; back to the light theme after
    (the choice is a saved setting of the session's server, which later tests share)."""

    def switch(to: str, is_light: bool) -> None:
        notebook.page.evaluate(
            "(to) => window.jupyterapp.commands.execute('apputils:change-theme', { theme: to })", to
        )
        notebook.page.wait_for_function(
            "(light) => document.body.dataset.jpThemeLight === String(light)", arg=is_light, timeout=30_000
        )

    switch(name, light)
    try:
        yield
    finally:
        switch(LIGHT, True)


def styles(notebook) -> list[list[str]]:
    return notebook.page.evaluate(READ_STYLES, [0, STYLES])


def styles_follow_the_theme(notebook) -> bool:
    return all(actual == expected for _, actual, expected in styles(notebook))


def pixels(notebook, variable: str) -> dict:
    return notebook.page.evaluate(COUNT_PIXELS, [0, variable])


def open_panel(board, open_notebook, name: str, *cells: str):
    """A notebook whose cell 0 shows the board's panel (cell 1 prints the power readings, then ``cells``)."""
    endpoint, _dut = board
    notebook = open_notebook(name, [f"%load_ext jumpstarter\n%jmp connect {endpoint}", READINGS, *cells])
    notebook.run_cell(0)
    panel = notebook.cell(0)
    panel.locator(".jmp-serial .xterm-scrollable-element").wait_for(timeout=60_000)
    chart = panel.locator(".jmp-power canvas.jmp-chart")
    wait_for(lambda: int(chart.get_attribute("data-samples") or 0) >= 2, 30, "the chart's first readings")
    return notebook, panel


def test_widgets_take_the_theme_colours_and_follow_a_live_switch(board, open_notebook):
    notebook, panel = open_panel(board, open_notebook, "theme.ipynb")
    light = styles(notebook)
    assert all(actual == expected for _, actual, expected in light), light
    # the board is off: both lines lie at 0, the current line (second series) drawn last
    wait_for(
        lambda: pixels(notebook, "--jp-error-color1")["count"] >= 20,
        30,
        "the current line in the light theme's colour",
    )
    light_line = pixels(notebook, "--jp-error-color1")["colour"]
    screenshot(notebook, "panel-light")

    with theme(notebook, DARK, light=False):
        wait_for(
            lambda: styles_follow_the_theme(notebook), 30, "every widget colour to follow the dark theme"
        )
        dark = styles(notebook)
        changed = [
            what for (what, before, _), (_, after, _) in zip(light, dark, strict=False) if before != after
        ]
        assert {"widget background", "widget text", "terminal background", "chart frame"} <= set(changed), (
            light,
            dark,
        )
        dark_line = pixels(notebook, "--jp-error-color1")
        assert dark_line["colour"] != light_line
        wait_for(
            lambda: pixels(notebook, "--jp-error-color1")["count"] >= 20,
            30,
            "the current line in the dark theme's colour",
        )
        screenshot(notebook, "panel-dark")
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console


def axis(power, unit: str) -> dict[str, float]:
    node = power.locator(f".jmp-chart-axis[data-unit='{unit}']")
    return {"min": float(node.get_attribute("data-min")), "max": float(node.get_attribute("data-max"))}


def test_power_chart_axes_units_padding_hover_and_pause(board, open_notebook):
    endpoint, dut = board
    notebook, panel = open_panel(board, open_notebook, "power-chart.ipynb")
    power = panel.locator(".jmp-power")
    # axes: elapsed time in seconds below, volts left, amperes right, each labelled with its unit
    assert power.locator(".jmp-chart-time .jmp-chart-unit").text_content() == "time (s)"
    for unit, side in (("V", "left"), ("A", "right")):
        y = power.locator(f".jmp-chart-y[data-unit='{unit}']")
        assert y.get_attribute("data-side") == side
        assert y.locator(".jmp-chart-unit").text_content() == unit
        assert y.locator(".jmp-chart-tick").count() >= 3
    assert axis(power, "s")["max"] - axis(power, "s")["min"] == 60  # the default window

    power.locator("select.jmp-chart-window").select_option("10")
    wait_for(lambda: axis(power, "s")["max"] - axis(power, "s")["min"] == 10, 10, "the 10 s window")
    dut.power.on()
    # once the off readings have left the 10 s window, the current axis shows a steady ~0.25 A
    wait_for(lambda: axis(power, "A")["min"] > 0, 60, "a window of readings taken while on")

    power.get_by_role("button", name="pause").click()
    wait_for(lambda: "paused" in power.locator(".jmp-legend").inner_text(), 10, "the chart to pause")
    shown = {unit: axis(power, unit) for unit in ("s", "V", "A")}
    readings = json.loads(notebook.run_cell(1)[0]["text"])  # what the kernel sent, up to now
    visible = [r for r in readings if shown["s"]["min"] <= r[0] <= shown["s"]["max"]]
    assert len(visible) >= 5, (shown, readings[-5:])
    for unit, column in (("V", 1), ("A", 2)):
        low, high = min(r[column] for r in visible), max(r[column] for r in visible)
        span = shown[unit]["max"] - shown[unit]["min"]
        assert shown[unit]["min"] + 0.05 * span < low and high < shown[unit]["max"] - 0.05 * span, (
            unit,
            low,
            high,
            shown,
        )

    power.locator(".jmp-chart-plot").hover()  # scrolled into view, the pointer at its middle
    readout = power.locator(".jmp-chart-readout")
    wait_for(lambda: readout.inner_text() != "", 10, "the hover readout")
    match = re.fullmatch(r"t ([\d.]+) s · voltage ([\d.]+) V · current ([\d.]+) A", readout.inner_text())
    assert match, readout.inner_text()
    t, volts, amps = map(float, match.groups())
    assert shown["s"]["min"] <= t <= shown["s"]["max"] and 4.9 < volts < 5.1 and 0 < amps < 1, (
        readout.inner_text()
    )
    assert power.locator(".jmp-chart-cursor").count() == 1
    notebook.page.mouse.move(0, 0)
    wait_for(lambda: readout.inner_text() == "", 10, "the readout to clear when the pointer leaves")

    frozen = int(power.locator("canvas.jmp-chart").get_attribute("data-samples"))
    power.get_by_role("button", name="resume").click()
    wait_for(
        lambda: int(power.locator("canvas.jmp-chart").get_attribute("data-samples")) > frozen,
        30,
        "new readings after resume",
    )
    screenshot(notebook, "chart-light")
    dut.power.off()
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console


def test_modem_line_buttons_say_unknown_until_known(board, open_notebook):
    notebook, panel = open_panel(
        board,
        open_notebook,
        "modem-lines.ipynb",
        "from jumpstarter_jupyter.client.display import widget_for\nwidget_for(dut.serial).rts = False",
    )
    serial = panel.locator(".jmp-serial")
    dtr = serial.get_by_role("button", name="DTR", exact=True)
    rts = serial.get_by_role("button", name="RTS", exact=True)
    assert (dtr.inner_text(), rts.inner_text()) == ("DTR unknown", "RTS unknown")
    assert dtr.get_attribute("aria-pressed") == "mixed"
    # the demo board's console is a pty: no modem lines, so the set fails and the state stays unknown
    dtr.click()
    banner = serial.locator(".jmp-banner")
    wait_for(lambda: "no modem lines" in banner.inner_text(), 30, "the failed set_dtr in the banner")
    assert "set_dtr" in banner.inner_text() and dtr.inner_text() == "DTR unknown", banner.inner_text()
    notebook.run_cell(2)  # a state the widget knows (as after a set that worked) is shown as such
    wait_for(lambda: rts.inner_text() == "RTS off", 30, "RTS to show off")
    assert rts.get_attribute("aria-pressed") == "false" and dtr.inner_text() == "DTR unknown"
    assert not [line for line in notebook.console if line.startswith("error")], notebook.console
