// CAN bus widget: a cansniffer-style table (one row per ID), a frame log with RX/TX, ID/mask
// filters, pause, a send form (once or periodic) and a live chart of one decoded signal.
//
// Kernel -> view: the traits `rows`, `recent` and `chart` (synced once a second: a new or
// reloaded view starts from them), then {type: "frames", seq, rows, log, chart, counts}
// messages carrying what changed since the previous one (at most ~25 a second).
// View -> kernel: the traits `filters`, `paused`, `chart_signal`; the actions send,
// send_periodic, stop_periodic and load_dbc.
import { inSequence } from "../protocol.js";
import { createChart } from "./chart.js";
import { action, h, style, view } from "./shared.js";

const MAX_LOG = 500; // lines kept in the frame log view
const WINDOW = 60; // seconds of the signal the chart shows at first (its menu changes it)
const KEEP = 300; // seconds of points kept for the chart (its longest window)

const CSS = `
.jmp-can .jmp-can-grid { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 8px; }
.jmp-can table { border-collapse: collapse; width: 100%; font-family: var(--jp-code-font-family, monospace); font-size: 12px; }
.jmp-can th { text-align: left; font-weight: 600; border-bottom: 1px solid var(--jp-border-color2, #ddd); padding: 1px 6px; }
.jmp-can td { padding: 1px 6px; white-space: nowrap; vertical-align: top; }
.jmp-can td.jmp-signals { white-space: normal; color: var(--jp-ui-font-color2, #555); }
.jmp-can .jmp-changed { background: var(--jp-warn-color3, #ffe9b3); color: var(--jp-warn-color0, #750); font-weight: 600; }
.jmp-can .jmp-tx { color: var(--jp-brand-color1, #1976d2); }
.jmp-can .jmp-table { max-height: 260px; overflow: auto; }
.jmp-can .jmp-log { height: 220px; overflow: auto; font-family: var(--jp-code-font-family, monospace); font-size: 11px;
  background: var(--jp-layout-color2, #f6f6f6); padding: 2px 4px; white-space: pre; }
.jmp-can .jmp-log .jmp-note { color: var(--jp-warn-color0, #750); }
.jmp-can input[type=text] { font: inherit; padding: 1px 4px; }
.jmp-can .jmp-form input[type=text] { width: 90px; }
.jmp-can .jmp-form input.jmp-data { width: 170px; }
.jmp-can .jmp-status { color: var(--jp-ui-font-color2, #666); font-size: 11px; margin-top: 4px; }
.jmp-can h4 { margin: 6px 0 2px; font-size: 12px; }
`;

/** "100" < "7FF" < "00000100": standard IDs first, then by value. */
function byId(a, b) {
  return a.length - b.length || a.localeCompare(b);
}

function sniffer() {
  const body = h("tbody");
  const node = h("div", { class: "jmp-table" }, h("table", {},
    h("thead", {}, h("tr", {}, ...["ID", "", "DLC", "data", "period ms", "count", "decoded"].map((t) => h("th", {}, t)))),
    body));
  const rows = new Map();
  const draw = (row) => {
    let tr = rows.get(row.id);
    if (!tr) {
      tr = h("tr", { "data-id": row.id });
      rows.set(row.id, tr);
      const after = [...rows.keys()].sort(byId).find((id) => byId(id, row.id) > 0);
      body.insertBefore(tr, after ? rows.get(after) : null);
    }
    const bytes = row.data === "remote request" ? [h("span", {}, row.data)]
      : row.data.split(" ").filter(Boolean).map((b, i) => h("span", { class: row.changed?.[i] ? "jmp-changed" : "" }, b));
    const data = h("td", { class: "jmp-data" });
    bytes.forEach((span, i) => data.append(...(i ? [" ", span] : [span])));
    tr.replaceChildren(h("td", {}, row.id), h("td", { class: row.dir === "TX" ? "jmp-tx" : "" }, row.dir),
      h("td", {}, String(row.dlc)), data, h("td", {}, row.period == null ? "" : row.period.toFixed(1)),
      h("td", { class: "jmp-count" }, String(row.count)),
      h("td", { class: "jmp-signals" }, row.message ? `${row.message}: ${row.signals}` : ""));
    tr.dataset.count = String(row.count);
  };
  return {
    node,
    update: (list) => list.forEach(draw),
    reset: (list) => { rows.clear(); body.replaceChildren(); list.forEach(draw); },
  };
}

function frameLog() {
  const node = h("div", { class: "jmp-log", "data-lines": "0" });
  const line = ([t, id, dir, dlc, data, decoded]) => h("div", { class: dir === "TX" ? "jmp-tx" : "" },
    `${t.toFixed(3).padStart(10)}  ${dir}  ${id.padStart(8)}  [${dlc}]  ${data}${decoded ? `   ${decoded}` : ""}`);
  const append = (nodes) => {
    const atBottom = node.scrollTop + node.clientHeight >= node.scrollHeight - 4;
    node.append(...nodes);
    while (node.childElementCount > MAX_LOG) node.firstElementChild.remove();
    node.dataset.lines = String(node.childElementCount);
    if (atBottom) node.scrollTop = node.scrollHeight;
  };
  return {
    node,
    add(entries, notShown) {
      const notes = notShown > 0
        ? [h("div", { class: "jmp-note" }, `… ${notShown} frames not shown here (the log file has every frame)`)] : [];
      append([...notes, ...entries.map(line)]);
    },
    reset(entries) { node.replaceChildren(); append(entries.map(line)); },
    clear() { node.replaceChildren(); node.dataset.lines = "0"; },
  };
}

/** The chosen decoded signal, charted live by the shared chart (recreated when the signal changes). */
function signalChart(model, listen) {
  const select = h("select", { class: "jmp-signal", title: "decoded signal to chart", "data-view-only": true });
  const holder = h("div", { class: "jmp-signal-chart" });
  let points = [...(model.get("chart") || [])];
  let chart = null;
  const make = () => {
    chart?.destroy();
    const name = model.get("chart_signal");
    holder.dataset.signal = name;
    chart = name ? createChart(holder, { series: [{ label: name, unit: model.get("chart_unit") }], window: WINDOW }) : null;
    chart?.setData(points);
  };
  const options = () => {
    const chosen = model.get("chart_signal");
    const entries = (model.get("signals") || []).flatMap((m) => m.signals.map((s) => [`${m.name}.${s.name}`, s.unit]));
    select.replaceChildren(h("option", { value: "" }, entries.length ? "(no signal)" : "(load a DBC to chart signals)"),
      ...entries.map(([name, unit]) => h("option", { value: name, selected: name === chosen }, unit ? `${name} [${unit}]` : name)));
    select.value = chosen;
  };
  select.addEventListener("change", () => { model.set("chart_signal", select.value); model.save_changes(); });
  listen("change:signals", options);
  listen("change:chart_signal", () => { points = []; options(); make(); });
  listen("change:chart_unit", make);
  listen("change:chart", () => { points = [...(model.get("chart") || [])]; chart?.setData(points); });
  options();
  make();
  return {
    node: h("div", {}, h("h4", {}, "signal ", select), holder),
    add(newPoints) {
      if (!newPoints.length) return;
      points.push(...newPoints);
      const end = points[points.length - 1][0];
      const first = points.findIndex((p) => p[0] >= end - KEEP);
      if (first > 0) points.splice(0, first);
      chart?.setData(points);
    },
    destroy: () => chart?.destroy(),
  };
}

function sendForm(model, listen) {
  const field = (name, placeholder, cls = "") => h("input", { type: "text", name, placeholder, class: cls });
  const ident = field("id", "ID (hex)");
  const data = field("data", "data (hex)", "jmp-data");
  const extended = h("input", { type: "checkbox", name: "extended" });
  const remote = h("input", { type: "checkbox", name: "rtr" });
  const period = field("period", "period s");
  const frame = () => [ident.value, data.value, extended.checked, remote.checked];
  const once = h("button", { class: "jmp-btn", onclick: () => action(model, "send", ...frame()) }, "send");
  const every = h("button", {
    class: "jmp-btn", title: "send every `period` seconds (on the exporter) until stopped",
    onclick: () => action(model, "send_periodic", ...frame(), Number(period.value)),
  }, "send periodically");
  const tasks = h("div", { class: "jmp-periodic" });
  const drawTasks = () => tasks.replaceChildren(...(model.get("periodic") || []).map((task) => h("div", {},
    `${task.text} `, h("button", { class: "jmp-btn", onclick: () => action(model, "stop_periodic", task.key) }, "stop"))));
  listen("change:periodic", drawTasks);
  drawTasks();
  return h("div", { class: "jmp-form" }, h("h4", {}, "send"),
    h("div", { class: "jmp-toolbar" }, ident, data, h("label", {}, extended, "extended"), h("label", {}, remote, "RTR"),
      once, period, every), tasks);
}

function toolbar(model, listen, log) {
  const pause = h("button", { class: "jmp-btn", title: "freeze the view (the log file goes on)", "data-view-only": true },
    "pause");
  const drawPause = () => pause.classList.toggle("jmp-on", Boolean(model.get("paused")));
  pause.addEventListener("click", () => { model.set("paused", !model.get("paused")); model.save_changes(); });
  const filters = h("input", { type: "text", class: "jmp-filters", placeholder: "filters ID:MASK …, e.g. 100:7F0",
    value: model.get("filters") || "", "data-view-only": true });
  filters.addEventListener("change", () => { model.set("filters", filters.value); model.save_changes(); });
  // viewing and decoding are this kernel's business: they stay usable while another holds the board
  const clear = h("button", { class: "jmp-btn", title: "clear the frame log view", onclick: () => log.clear(),
    "data-view-only": true }, "clear log");
  const dbc = h("input", { type: "text", class: "jmp-dbc", placeholder: "DBC file (kernel's path)", "data-view-only": true });
  const load = h("button", { class: "jmp-btn", onclick: () => action(model, "load_dbc", dbc.value), "data-view-only": true },
    "load DBC");
  listen("change:paused", drawPause);
  drawPause();
  return h("div", { class: "jmp-toolbar" }, pause, filters, clear, dbc, load);
}

function render({ model, el }) {
  style("jmp-can-style", CSS);
  const { root, listen, onCleanup, cleanup } = view(model, el, "can");
  const table = sniffer();
  const log = frameLog();
  const chart = signalChart(model, listen);
  onCleanup(chart.destroy);
  const status = h("div", { class: "jmp-status" });
  let counts = model.get("counts") || {};
  const drawStatus = () => {
    const c = counts;
    status.textContent = [`${c.frames ?? 0} frames, ${c.ids ?? 0} IDs`, c.missed ? `${c.missed} missed` : "",
      model.get("dbc_path") && `DBC: ${model.get("dbc_path")}`, model.get("log_path") && `log: ${model.get("log_path")}`]
      .filter(Boolean).join(" · ");
    root.dataset.frames = String(c.frames ?? 0);
  };
  root.append(toolbar(model, listen, log),
    table.node, h("div", { class: "jmp-can-grid" }, h("div", {}, h("h4", {}, "frames"), log.node), chart.node),
    sendForm(model, listen), status);

  table.reset(model.get("rows") || []);
  log.reset(model.get("recent") || []);
  const fresh = inSequence("frames");
  listen("msg:custom", (msg) => {
    if (!fresh(msg)) return;
    const notShown = (msg.counts.not_shown ?? 0) - (counts.not_shown ?? 0);
    table.update(msg.rows);
    log.add(msg.log, notShown);
    chart.add(msg.chart);
    counts = msg.counts;
    drawStatus();
  });
  listen("change:rows", () => table.reset(model.get("rows") || []));
  listen("change:counts", () => { counts = model.get("counts") || {}; drawStatus(); });
  listen("change:dbc_path", drawStatus);
  listen("change:log_path", drawStatus);
  drawStatus();
  return cleanup;
}

export default { render };
