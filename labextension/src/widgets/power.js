// Power widget: on/off/cycle buttons showing the actual state, and a live voltage/current
// chart drawn on a canvas from the `readings` trait ([[seconds, volts, amperes], ...]).
import { action, h, perFrame, style, view } from "./shared.js";

const CSS = `
.jmp-power .jmp-state { font-weight: 600; margin-left: 8px; }
.jmp-power .jmp-state.jmp-on { color: var(--jp-success-color1, #2e7d32); }
.jmp-power .jmp-state.jmp-off { color: var(--jp-ui-font-color2, #777); }
.jmp-power canvas { width: 100%; max-width: 560px; height: 140px; display: block; }
.jmp-power .jmp-legend { font-size: 11px; color: var(--jp-ui-font-color2, #666); }
`;
const VOLT = "#1f77b4";
const AMP = "#d62728";

function drawChart(canvas, readings) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 560;
  const height = canvas.clientHeight || 140;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  canvas.dataset.samples = String(readings.length);
  if (readings.length < 2) return;
  const t0 = readings[0][0];
  const span = Math.max(readings[readings.length - 1][0] - t0, 1e-6);
  const line = (column, color) => {
    const top = Math.max(...readings.map((r) => r[column]), 1e-6) * 1.1;
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    readings.forEach((r, i) => {
      const x = ((r[0] - t0) / span) * (width - 4) + 2;
      const y = height - 2 - (r[column] / top) * (height - 4);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.stroke();
  };
  line(1, VOLT);
  line(2, AMP);
}

function render({ model, el }) {
  style("jmp-power-style", CSS);
  const { root, listen, onCleanup, cleanup } = view(model, el, "power");
  const buttons = {
    on: h("button", { class: "jmp-btn", onclick: () => action(model, "on") }, "on"),
    off: h("button", { class: "jmp-btn", onclick: () => action(model, "off") }, "off"),
    cycle: h("button", { class: "jmp-btn", onclick: () => action(model, "cycle", 2) }, "cycle"),
  };
  const state = h("span", { class: "jmp-state" });
  const legend = h("div", { class: "jmp-legend" });
  const canvas = h("canvas", { class: "jmp-chart" });
  root.append(h("div", { class: "jmp-toolbar" }, buttons.on, buttons.off, buttons.cycle, state), canvas, legend);

  const drawState = () => {
    const value = model.get("state");
    state.textContent = `power ${value}`;
    state.className = `jmp-state jmp-${value}`;
    buttons.on.classList.toggle("jmp-on", value === "on");
    buttons.off.classList.toggle("jmp-on", value === "off");
    root.dataset.state = value;
  };
  const redraw = perFrame(() => {
    const readings = model.get("readings") || [];
    drawChart(canvas, readings);
    const last = readings[readings.length - 1];
    legend.innerHTML = "";
    legend.append(
      h("span", { style: `color:${VOLT}` }, last ? `${last[1].toFixed(2)} V` : "– V"),
      "  ",
      h("span", { style: `color:${AMP}` }, last ? `${last[2].toFixed(3)} A` : "– A"),
      `  (${readings.length} samples)`,
    );
  });
  onCleanup(redraw.cancel);
  listen("change:state", drawState);
  listen("change:readings", redraw);
  drawState();
  redraw();
  return cleanup;
}

export default { render };
