// Generic widget: a row per exported method (button, a field per argument, its last result).
// Field text is sent as JSON when it parses (numbers, true/false/null, lists), else as a string.
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-generic .jmp-method { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin: 3px 0; }
.jmp-generic input { width: 110px; font: inherit; padding: 1px 4px; }
.jmp-generic .jmp-result { white-space: pre-wrap; font-family: var(--jp-code-font-family, monospace);
  font-size: 12px; color: var(--jp-ui-font-color2, #555); margin-left: 8px; }
`;

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function methodRow(model, method) {
  const fields = method.params.map((p) => h("input", {
    type: "text", name: p.name, placeholder: p.name + (p.type ? `: ${p.type}` : "")
      + ("default" in p ? ` = ${JSON.stringify(p.default)}` : ""),
  }));
  const call = () => {
    // trailing empty fields fall back to the method's defaults
    const values = fields.map((f) => f.value);
    while (values.length && values[values.length - 1] === "") values.pop();
    action(model, "call", method.name, values.map(parse));
  };
  const button = h("button", { class: "jmp-btn", title: method.doc || "", onclick: call }, method.name);
  const result = h("span", { class: "jmp-result" });
  return { node: h("div", { class: "jmp-method", "data-method": method.name }, button, ...fields, result), button, result };
}

function freeRow(model) {
  const name = h("input", { type: "text", placeholder: "method" });
  const args = h("input", { type: "text", placeholder: "[arguments as JSON]" });
  const result = h("span", { class: "jmp-result" });
  const call = () => action(model, "call", name.value, args.value ? [].concat(parse(args.value)) : []);
  return { node: h("div", { class: "jmp-method" }, name, args, h("button", { class: "jmp-btn", onclick: call }, "call"), result),
    result, name };
}

function render({ model, el }) {
  style("jmp-generic-style", CSS);
  const { root, listen, cleanup } = view(model, el, "generic");
  const rows = new Map(model.get("methods").map((m) => [m.name, methodRow(model, m)]));
  const free = model.get("described") ? null : freeRow(model);
  if (free) root.append(h("div", {}, "this exporter publishes no method list: call by name"), free.node);
  for (const row of rows.values()) root.append(row.node);

  const draw = () => {
    const results = model.get("results");
    const running = new Set(model.get("running"));
    for (const [name, row] of rows) {
      row.button.disabled = running.has(name);
      // a streaming method's results show as they arrive, "running…" under them until it ends
      const sofar = results[name] ?? "";
      row.result.textContent = running.has(name) ? (sofar ? `${sofar}\nrunning…` : "running…") : sofar;
    }
    if (free) free.result.textContent = results[free.name.value] ?? "";
  };
  listen("change:results", draw);
  listen("change:running", draw);
  draw();
  return cleanup;
}

export default { render };
