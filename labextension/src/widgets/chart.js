// Live time-series chart shared by the widgets (power readings, CAN signals): plumbing, not
// a widget of its own.
//
//   const chart = createChart(parent, { series: [{ label: "voltage", unit: "V" }, ...], window: 60 });
//   chart.setData([[t_seconds, v0, v1, ...], ...]);  // any order: the chart sorts by time
//   chart.setWindow(seconds); chart.destroy(); chart.element  // root element
//
// The lines are drawn on a canvas (a CAN signal may bring thousands of points); axes, tick
// labels, unit labels, the legend and the hover readout are SVG/HTML, so they are crisp, take
// their colours from JupyterLab's CSS variables and can be read from the DOM. Series with
// different units get separate y axes: the first unit on the left, the second on the right,
// further ones stacked outwards. Each axis scales to the visible data plus padding, so a steady
// reading is a flat line in the middle, not noise stretched over the whole height.
import { cssColor, formatValue, h, onThemeChange, perFrame, style } from "./shared.js";

const SVG = "http://www.w3.org/2000/svg";
const HEIGHT = 180; // px of the plot (axes included)
const AXIS_WIDTH = 52; // px per y axis
const TOP = 22; // px above the plot: the axes' unit labels
const BOTTOM = 34; // px below the plot: time ticks and the time axis label
const PADDING = 0.1; // fraction of the data's span added above and below it
const TICKS = 5; // about this many ticks per axis
const WINDOWS = [10, 30, 60, 120]; // seconds offered in the window menu, unless told
// series colours: JupyterLab's own accent colours, which each theme sets for its background
const COLOURS = [
  ["--jp-brand-color1", "#1976d2"],
  ["--jp-error-color1", "#d32f2f"],
  ["--jp-success-color1", "#388e3c"],
  ["--jp-warn-color1", "#f57c00"],
  ["--jp-info-color1", "#0097a7"],
];

const CSS = `
.jmp-chart-box { color: var(--jp-ui-font-color1, #222); font-size: var(--jp-ui-font-size0, 11px);
  max-width: 720px; }
.jmp-chart-box .jmp-chart-plot { position: relative; height: ${HEIGHT}px; }
.jmp-chart-box canvas.jmp-chart, .jmp-chart-box svg.jmp-chart-axes { position: absolute; left: 0; top: 0;
  width: 100%; height: 100%; }
.jmp-chart-box svg.jmp-chart-axes { overflow: visible; }
.jmp-chart-box .jmp-chart-frame { fill: var(--jp-layout-color0, #fff); stroke: var(--jp-border-color1, #bbb); }
.jmp-chart-box .jmp-chart-grid { stroke: var(--jp-border-color3, #eee); }
.jmp-chart-box .jmp-chart-tick { fill: var(--jp-ui-font-color2, #666); }
.jmp-chart-box .jmp-chart-unit { fill: var(--jp-ui-font-color1, #222); font-weight: 600; }
.jmp-chart-box .jmp-chart-cursor { stroke: var(--jp-ui-font-color2, #666); stroke-dasharray: 3 3; }
.jmp-chart-box .jmp-legend { display: flex; flex-wrap: wrap; gap: 12px; align-items: center;
  color: var(--jp-ui-font-color1, #222); }
.jmp-chart-box .jmp-chart-swatch { display: inline-block; width: 14px; height: 3px; margin-right: 4px;
  vertical-align: middle; }
.jmp-chart-box .jmp-chart-count { color: var(--jp-ui-font-color2, #666); }
.jmp-chart-box .jmp-chart-readout { min-height: 1.4em; color: var(--jp-ui-font-color1, #222);
  font-family: var(--jp-code-font-family, monospace); }
`;

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

/** A "nice" tick step (1, 2 or 5 times a power of ten) giving about `count` ticks over `span`. */
export function tickStep(span, count = TICKS) {
  const raw = span / Math.max(count, 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const ratio = raw / power; // in [1, 10): the nearest of 1, 2, 5, 10 on a log scale
  return (ratio >= Math.sqrt(50) ? 10 : ratio >= Math.sqrt(10) ? 5 : ratio >= Math.sqrt(2) ? 2 : 1) * power;
}

/** Tick values of step `tickStep(max - min)` inside [min, max]. */
export function ticks(min, max) {
  const step = tickStep(max - min);
  const values = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) values.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { values, decimals: Math.max(0, -Math.floor(Math.log10(step))) };
}

/** The y range shown for `values`: their span plus PADDING above and below; never empty. */
export function paddedRange(values) {
  if (!values.length) return { min: 0, max: 1 };
  // a loop, not Math.min(...values): a long CAN trace exceeds the engine's argument limit
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === 0 && hi === 0) hi = 1; // nothing measured (power off): 0 near the bottom, no negative volts
  // a steady value gets a tenth of its size as span, so small noise stays small
  const span = Math.max(hi - lo, Math.abs(hi) * PADDING, Math.abs(lo) * PADDING);
  const middle = (lo + hi) / 2;
  if (hi - lo < span) { lo = middle - span / 2; hi = middle + span / 2; }
  return { min: lo - span * PADDING, max: hi + span * PADDING };
}

/** The index in time-sorted `points` of the point nearest to time `t`. */
export function nearest(points, t) {
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && t - points[lo - 1][0] < points[lo][0] - t ? lo - 1 : lo;
}

/** The newest finite value of `column` in time-sorted `points` (NaN if none): CAN signals come and go. */
function latest(points, column) {
  for (let i = points.length - 1; i >= 0; i--) if (Number.isFinite(points[i][column])) return points[i][column];
  return NaN;
}

/** Axes by unit, in order of first appearance: [{ unit, columns: [series index + 1, ...] }]. */
function axesOf(series) {
  const axes = [];
  series.forEach((s, i) => {
    const axis = axes.find((a) => a.unit === s.unit) ?? axes[axes.push({ unit: s.unit ?? "", columns: [] }) - 1];
    axis.columns.push(i + 1);
  });
  return axes;
}

/** The visible time range: the last `window` seconds, or from the first point while fewer. */
export function timeRange(points, window) {
  if (!points.length) return { from: 0, to: window };
  const first = points[0][0];
  const last = points[points.length - 1][0];
  return last - first < window ? { from: first, to: first + window } : { from: last - window, to: last };
}

/**
 * A live chart in `parent`. `series`: [{ label, unit }] for the value columns of each point;
 * `window`: seconds shown (the user can change it); `windows`: the seconds the window menu
 * offers (no more than the data kept); `height`: px of the plot.
 */
export function createChart(parent, { series, window = 60, windows = WINDOWS, height = HEIGHT }) {
  style("jmp-chart-style", CSS);
  const axes = axesOf(series);
  const left = axes.filter((_, i) => i % 2 === 0).length * AXIS_WIDTH;
  const right = Math.max(axes.filter((_, i) => i % 2 === 1).length * AXIS_WIDTH, 12);
  let points = [];
  let shown = []; // the points drawn (frozen while paused)
  let paused = false;
  let span = window;
  let hoverT = null;

  const canvas = h("canvas", { class: "jmp-chart", "data-samples": "0" });
  const axesSvg = svg("svg", { class: "jmp-chart-axes" });
  const plot = h("div", { class: "jmp-chart-plot", style: `height:${height}px` }, axesSvg, canvas);
  const legend = h("div", { class: "jmp-legend" });
  const readout = h("div", { class: "jmp-chart-readout", "aria-live": "polite" });
  // view-only controls: they stay usable for a watcher while the board's controls are locked
  const pause = h("button", { class: "jmp-btn jmp-chart-pause", title: "freeze the chart (data keeps arriving)",
    "data-view-only": true, onclick: () => setPaused(!paused) }, "pause");
  const menu = h("select", { class: "jmp-chart-window", title: "seconds shown", "data-view-only": true,
    onchange: () => setWindow(Number(menu.value)) });
  const controls = h("div", { class: "jmp-toolbar" }, pause, h("label", {}, "window ", menu));
  const element = h("div", { class: "jmp-chart-box" }, controls, plot, legend, readout);
  parent.append(element);

  const colour = (i) => cssColor(element, ...COLOURS[i % COLOURS.length]);
  const swatches = series.map((s, i) => h("span", { class: "jmp-chart-swatch",
    style: `background: var(${COLOURS[i % COLOURS.length][0]}, ${COLOURS[i % COLOURS.length][1]})` }));
  const values = series.map(() => h("span", { class: "jmp-chart-value" }, "–"));
  const count = h("span", { class: "jmp-chart-count" });
  legend.append(...series.map((s, i) => h("span", { class: "jmp-chart-entry" }, swatches[i], `${s.label} `, values[i])), count);

  function drawMenu() {
    const choices = [...new Set([...windows, span])].sort((a, b) => a - b);
    menu.replaceChildren(...choices.map((s) => h("option", { value: s, selected: s === span }, `${s} s`)));
  }

  /** Geometry of the current frame: pixel mappings for time and each axis. */
  function layout() {
    const width = plot.clientWidth || 560;
    const inner = { x0: left, x1: width - right, y0: TOP, y1: height - BOTTOM };
    const time = timeRange(shown, span);
    const visible = shown.filter((p) => p[0] >= time.from && p[0] <= time.to);
    // the lines start at the point before the window (clipped at its edge), not with a gap
    const first = shown.findIndex((p) => p[0] >= time.from);
    const drawn = first > 0 ? [shown[first - 1], ...visible] : visible;
    const ranges = axes.map((a) => paddedRange(visible.flatMap((p) => a.columns.map((c) => p[c]).filter(Number.isFinite))));
    const x = (t) => inner.x0 + ((t - time.from) / (time.to - time.from)) * (inner.x1 - inner.x0);
    const ys = ranges.map((r) => (v) => inner.y1 - ((v - r.min) / (r.max - r.min)) * (inner.y1 - inner.y0));
    return { width, inner, time, drawn, ranges, x, ys };
  }

  function drawAxes(frame) {
    const { inner, time, ranges, x, ys } = frame;
    const nodes = [svg("rect", { class: "jmp-chart-frame", x: inner.x0, y: inner.y0, width: inner.x1 - inner.x0, height: inner.y1 - inner.y0 })];
    const timeTicks = ticks(time.from, time.to);
    const timeAxis = svg("g", { class: "jmp-chart-axis jmp-chart-time", "data-min": time.from, "data-max": time.to, "data-unit": "s" });
    for (const t of timeTicks.values) {
      nodes.push(svg("line", { class: "jmp-chart-grid", x1: x(t), x2: x(t), y1: inner.y0, y2: inner.y1 }));
      timeAxis.append(svg("text", { class: "jmp-chart-tick", x: x(t), y: inner.y1 + 14, "text-anchor": "middle" }, t.toFixed(timeTicks.decimals)));
    }
    timeAxis.append(svg("text", { class: "jmp-chart-unit", x: (inner.x0 + inner.x1) / 2, y: height - 4, "text-anchor": "middle" }, "time (s)"));
    nodes.push(timeAxis);
    axes.forEach((a, i) => {
      const onLeft = i % 2 === 0;
      const edge = onLeft ? inner.x0 - Math.floor(i / 2) * AXIS_WIDTH : inner.x1 + Math.floor(i / 2) * AXIS_WIDTH;
      const side = onLeft ? -1 : 1;
      const g = svg("g", { class: "jmp-chart-axis jmp-chart-y", "data-unit": a.unit, "data-min": ranges[i].min, "data-max": ranges[i].max,
        "data-side": onLeft ? "left" : "right" });
      g.append(svg("line", { class: "jmp-chart-grid", x1: edge, x2: edge, y1: inner.y0, y2: inner.y1 }));
      const yTicks = ticks(ranges[i].min, ranges[i].max);
      for (const v of yTicks.values) {
        if (i === 0) nodes.push(svg("line", { class: "jmp-chart-grid", x1: inner.x0, x2: inner.x1, y1: ys[i](v), y2: ys[i](v) }));
        g.append(svg("line", { class: "jmp-chart-grid", x1: edge, x2: edge + side * 4, y1: ys[i](v), y2: ys[i](v) }));
        g.append(svg("text", { class: "jmp-chart-tick", x: edge + side * 6, y: ys[i](v) + 4, "text-anchor": onLeft ? "end" : "start" },
          v.toFixed(yTicks.decimals)));
      }
      g.append(svg("text", { class: "jmp-chart-unit", x: edge, y: inner.y0 - 8, "text-anchor": onLeft ? "end" : "start" }, a.unit));
      nodes.push(g);
    });
    if (hoverT !== null && shown.length) {
      const t = shown[nearest(shown, hoverT)][0];
      nodes.push(svg("line", { class: "jmp-chart-cursor", x1: x(t), x2: x(t), y1: inner.y0, y2: inner.y1 }));
    }
    axesSvg.replaceChildren(...nodes);
  }

  function drawLines(frame) {
    const { width, inner, drawn, x, ys } = frame;
    const ratio = globalThis.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.beginPath();
    ctx.rect(inner.x0, inner.y0, inner.x1 - inner.x0, inner.y1 - inner.y0);
    ctx.clip();
    ctx.lineWidth = 2; // on whole pixels (below): a steady reading is a crisp line of its own colour
    ctx.lineJoin = "round";
    series.forEach((_, i) => {
      const y = ys[axes.findIndex((a) => a.columns.includes(i + 1))];
      ctx.strokeStyle = colour(i);
      ctx.beginPath();
      let drawing = false;
      for (const p of drawn) {
        if (!Number.isFinite(p[i + 1])) { drawing = false; continue; } // a gap, not a jump to 0
        const px = Math.round(x(p[0]));
        const py = Math.round(y(p[i + 1]));
        if (drawing) ctx.lineTo(px, py);
        else ctx.moveTo(px, py);
        drawing = true;
      }
      ctx.stroke();
    });
  }

  function drawText() {
    series.forEach((s, i) => { values[i].textContent = formatValue(latest(shown, i + 1), s.unit); });
    count.textContent = `${shown.length} samples${paused ? " · paused" : ""}`;
    if (hoverT === null || !shown.length) { readout.textContent = ""; return; }
    const p = shown[nearest(shown, hoverT)];
    readout.textContent = [`t ${formatValue(p[0], "s")}`, ...series.map((s, i) => `${s.label} ${formatValue(p[i + 1], s.unit)}`)].join(" · ");
  }

  const redraw = perFrame(() => {
    const frame = layout();
    drawAxes(frame);
    drawLines(frame);
    drawText();
    canvas.dataset.samples = String(shown.length);
  });

  function setData(data) {
    points = [...data].sort((a, b) => a[0] - b[0]);
    if (!paused) { shown = points; redraw(); }
  }

  function setWindow(seconds) {
    if (!(seconds > 0)) throw new Error(`chart window must be > 0 seconds, got ${seconds}`);
    span = seconds;
    drawMenu();
    redraw();
  }

  function setPaused(value) {
    paused = value;
    pause.textContent = paused ? "resume" : "pause";
    pause.classList.toggle("jmp-on", paused);
    if (!paused) shown = points;
    redraw();
  }

  plot.addEventListener("mousemove", (event) => {
    const frame = layout();
    const px = event.clientX - plot.getBoundingClientRect().left;
    hoverT = px < frame.inner.x0 || px > frame.inner.x1 ? null
      : frame.time.from + ((px - frame.inner.x0) / (frame.inner.x1 - frame.inner.x0)) * (frame.time.to - frame.time.from);
    redraw();
  });
  plot.addEventListener("mouseleave", () => { hoverT = null; redraw(); });
  const resize = new ResizeObserver(redraw);
  resize.observe(plot);
  const stopTheme = onThemeChange(redraw); // the canvas has no CSS: its colours are read per draw

  drawMenu();
  setPaused(false);
  return {
    element,
    setData,
    setWindow,
    destroy() {
      redraw.cancel();
      resize.disconnect();
      stopTheme();
      element.remove();
    },
  };
}
