// What a widget shows as text until (or unless) its live front end loads: its title, the
// state its saved traits hold, and a note saying why it is only text. This is what a saved
// notebook opened without its kernel and without the JupyterLab extension shows.

const TAIL_LINES = 40; // console lines kept from the terminal's scrollback
const LEVEL = { 1: "active", 0: "inactive", [-1]: "not read yet" };
// ANSI escape sequences (colours, cursor moves) and other control characters but \n and \t
const CONTROL = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f]/g;

function bytesOf(value) {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(0);
}

function consoleTail(model) {
  const text = new TextDecoder().decode(bytesOf(model.get("scrollback"))).replace(/\r\n?/g, "\n");
  const lines = text.replace(CONTROL, "").split("\n");
  return lines.slice(-TAIL_LINES).join("\n");
}

function powerText(model) {
  if (model.get("metered") === false) return `power ${model.get("state")} (no meter: no readings)`;
  const readings = model.get("readings") || [];
  const last = readings[readings.length - 1];
  const reading = last ? `, last reading ${last[1].toFixed(2)} V ${last[2].toFixed(3)} A` : "";
  return `power ${model.get("state")}${reading} (${readings.length} samples)`;
}

const TEXTS = {
  power: powerText,
  serial: consoleTail,
  gpio: (model) => `${model.get("kind")} pin: ${LEVEL[model.get("value")] ?? "unknown"}`,
  network: (model) => [`service at ${model.get("address") || "(unknown)"}`,
    ...(model.get("forwards") || []).map((f) => `forwarded to ${f}`)].join("\n"),
  storage: (model) => `storage connected to: ${model.get("state")}` + (model.get("image")
    ? `\nlast image: ${model.get("image")} (${model.get("sent")} of ${model.get("total")} bytes)` : ""),
  lease: (model) => !model.get("supported") ? ""
    : model.get("holder") ? `lease: held by ${model.get("holder")}${model.get("purpose") ? ` (${model.get("purpose")})` : ""}`
    : "lease: nobody holds the board",
  can: (model) => [`${model.get("counts")?.frames ?? 0} frames`, ...(model.get("rows") || []).map((row) =>
    `${row.id}  ${row.dir}  [${row.dlc}]  ${row.data}  x${row.count}${row.message ? `  ${row.message}: ${row.signals}` : ""}`)]
    .join("\n"),
  generic: (model) => (model.get("methods") || []).map((m) => {
    const result = (model.get("results") || {})[m.name];
    return result ? `${m.name}(): ${result}` : `${m.name}()`;
  }).join("\n"),
};

/** Draw widget `name`'s text form into `el`; returns { note(text), remove() }. */
export function fallback(name, model, el) {
  const root = document.createElement("div");
  root.className = `jmp-fallback jmp-fallback-${name}`;
  root.style.cssText = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;";
  const title = document.createElement("div");
  title.textContent = `${model.get("path") || name} (text view)`;
  title.style.fontWeight = "600";
  const body = document.createElement("pre");
  body.style.cssText = "margin: 2px 0; white-space: pre-wrap;";
  body.textContent = [model.get("error") && `error: ${model.get("error")}`, (TEXTS[name] ?? (() => ""))(model)]
    .filter(Boolean).join("\n");
  const note = document.createElement("div");
  note.style.opacity = "0.7";
  note.textContent = "live view: needs the running kernel or the jumpstarter-jupyter JupyterLab extension";
  root.append(title, body, note);
  el.append(root);
  return { note: (text) => { note.textContent = text; }, remove: () => root.remove() };
}
