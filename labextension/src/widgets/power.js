// Power widget: on/off/cycle buttons showing the actual state, and a live voltage/current
// chart (chart.js) of the `readings` trait ([[elapsed seconds, volts, amperes], ...]). A switch
// without a meter (`metered` false) shows its state and a note instead of the chart: a chart of
// no readings would be a flat line that looks like a dead board.
import { createChart } from "./chart.js";
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-power .jmp-state { font-weight: 600; margin-left: 8px; }
.jmp-power .jmp-state.jmp-on { color: var(--jp-success-color1, #2e7d32); }
.jmp-power .jmp-state.jmp-off { color: var(--jp-ui-font-color2, #777); }
.jmp-power .jmp-no-meter { color: var(--jp-ui-font-color2, #777); margin-top: 4px; }
`;
const SERIES = [{ label: "voltage", unit: "V" }, { label: "current", unit: "A" }];
const WINDOW = 60; // seconds shown at first

function render({ model, el }) {
  style("jmp-power-style", CSS);
  const { root, listen, onCleanup, cleanup } = view(model, el, "power");
  const buttons = {
    on: h("button", { class: "jmp-btn", onclick: () => action(model, "on") }, "on"),
    off: h("button", { class: "jmp-btn", onclick: () => action(model, "off") }, "off"),
    cycle: h("button", { class: "jmp-btn", title: "off, 2 s, on", onclick: () => action(model, "cycle", 2) }, "cycle"),
  };
  const state = h("span", { class: "jmp-state" });
  root.append(h("div", { class: "jmp-toolbar" }, buttons.on, buttons.off, buttons.cycle, state));
  const chart = createChart(root, { series: SERIES, window: WINDOW });
  onCleanup(chart.destroy);
  const noMeter = h("div", { class: "jmp-no-meter" }, "no readings: this switch has no meter");
  root.append(noMeter);

  const drawState = () => {
    const value = model.get("state");
    state.textContent = `power ${value}`;
    state.className = `jmp-state jmp-${value}`;
    buttons.on.classList.toggle("jmp-on", value === "on");
    buttons.off.classList.toggle("jmp-on", value === "off");
    root.dataset.state = value;
  };
  const drawReadings = () => chart.setData(model.get("readings") || []);
  const drawMetered = () => {
    const metered = model.get("metered") !== false;
    chart.element.hidden = !metered;
    noMeter.hidden = metered;
    root.dataset.metered = String(metered);
  };
  listen("change:state", drawState);
  listen("change:readings", drawReadings);
  listen("change:metered", drawMetered);
  drawState();
  drawReadings();
  drawMetered();
  return cleanup;
}

export default { render };
