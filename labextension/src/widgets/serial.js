// The serial console: an xterm.js terminal fed by the kernel's SerialWidget.
//
// Kernel -> view: the `scrollback` trait (last bytes, ending at absolute offset
// `scrollback_end` of console `epoch`) on first render, then custom messages
// {type: "output", seq, epoch, offset, events} with the bytes in buffers[0]. Offsets are the
// exporter console's absolute byte offsets, so a view drops what it already shows and draws
// "N bytes skipped" for a gap; a new epoch (the exporter restarted) starts the offsets over.
// View -> kernel: {type: "input", data}, {type: "catchup", offset, epoch}, and actions.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
// a side-effect import: the bundlers put the stylesheet into the page when the module loads
import "@xterm/xterm/css/xterm.css";
import { action, cssColor, h, log, onThemeChange, style, view, warn } from "./shared.js";

const ROWS = 24;
const HOLD_LIMIT = 1 << 20; // bytes kept while paused; older ones become a "skipped" marker
const encoder = new TextEncoder();

const CSS = `
.jmp-serial .jmp-term { padding: 4px; background: var(--jp-layout-color0, #fff); border-radius: var(--jp-border-radius, 2px);
  border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #ddd); }
.jmp-serial .jmp-status { color: var(--jp-ui-font-color2, #666); font-size: 11px; margin-top: 4px; }
`;

// xterm.js colours from JupyterLab's variables, [variable, fallback] each: the terminal looks
// like the notebook around it in every theme (xterm.js draws on a canvas, so CSS cannot reach it)
const TERMINAL_COLOURS = {
  background: ["--jp-layout-color0", "#fff"],
  foreground: ["--jp-ui-font-color0", "#000"],
  cursor: ["--jp-ui-font-color1", "#222"],
  cursorAccent: ["--jp-layout-color0", "#fff"],
  selectionBackground: ["--jp-brand-color3", "#bbdefb"],
  red: ["--jp-error-color1", "#d32f2f"],
  green: ["--jp-success-color1", "#388e3c"],
  yellow: ["--jp-warn-color1", "#f57c00"],
  blue: ["--jp-brand-color1", "#1976d2"],
  cyan: ["--jp-info-color1", "#0097a7"],
};

/** The xterm.js theme for where `element` is in the page, now. */
function terminalTheme(element) {
  return Object.fromEntries(Object.entries(TERMINAL_COLOURS).map(([key, [name, fallback]]) => [key, cssColor(element, name, fallback)]));
}

/** The bytes of a trait value or message buffer (DataView, ArrayBuffer or typed array). */
function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(0);
}

function note(text, color = 33) {
  return encoder.encode(`\r\n\x1b[${color}m[jumpstarter] ${text}\x1b[0m\r\n`);
}

function stamp() {
  const now = new Date();
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return encoder.encode(`\x1b[2m[${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${pad(now.getMilliseconds(), 3)}]\x1b[0m `);
}

/** Writes bytes into the terminal, optionally prefixing each line with the time it arrived. */
function writer(term, model) {
  let lineStart = true;
  return (data) => {
    if (!model.get("timestamps")) {
      if (data.length) lineStart = data[data.length - 1] === 0x0a;
      term.write(data);
      return;
    }
    let from = 0;
    for (let i = 0; i < data.length; i++) {
      if (lineStart) { term.write(data.subarray(from, i)); term.write(stamp()); from = i; }
      lineStart = data[i] === 0x0a;
    }
    term.write(data.subarray(from));
  };
}

function toolbar(model, term, state) {
  const toggle = (label, title, isOn, onclick) => {
    const button = h("button", { class: "jmp-btn", title, onclick }, label);
    const draw = () => button.classList.toggle("jmp-on", Boolean(isOn()));
    return { button, draw };
  };
  const follow = toggle("follow", "pause/resume live output", () => !state.paused, () => state.setPaused(!state.paused));
  const stamps = toggle("timestamps", "prefix lines with their arrival time", () => model.get("timestamps"),
    () => { model.set("timestamps", !model.get("timestamps")); model.save_changes(); });
  const dtr = line(model, "dtr", "DTR");
  const rts = line(model, "rts", "RTS");
  const clear = h("button", { class: "jmp-btn", title: "clear this view", onclick: () => term.clear() }, "clear");
  const save = h("button", { class: "jmp-btn", title: "download what this view shows", onclick: () => saveLog(model, term) }, "save log");
  const brk = h("button", { class: "jmp-btn", title: "send a serial break", onclick: () => action(model, "send_break") }, "break");
  const toggles = [follow, stamps, dtr, rts];
  for (const node of [follow.button, stamps.button, clear, save]) node.dataset.viewOnly = ""; // a watcher's too
  const draw = () => toggles.forEach((t) => t.draw());
  draw();
  return { node: h("div", { class: "jmp-toolbar" }, ...toggles.map((t) => t.button), clear, save, brk), draw };
}

/** A modem line's button: "DTR on", "DTR off", or "DTR unknown" until this widget has set it.
 * Its accessible name stays "DTR"; the state is `aria-pressed` ("mixed" while unknown). */
function line(model, trait, name) {
  const button = h("button", { class: "jmp-btn", title: `toggle the ${name} line`, "aria-label": name, "aria-pressed": "mixed",
    onclick: () => action(model, `set_${trait}`, !model.get(trait)) }, name);
  const draw = () => {
    const value = model.get(trait);
    const known = typeof value === "boolean";
    button.textContent = `${name} ${known ? (value ? "on" : "off") : "unknown"}`;
    button.classList.toggle("jmp-on", value === true);
    button.classList.toggle("jmp-unknown", !known);
    button.setAttribute("aria-pressed", known ? String(value) : "mixed");
  };
  return { button, draw };
}

function saveLog(model, term) {
  const buffer = term.buffer.active;
  const lines = [];
  for (let i = 0; i < buffer.length; i++) lines.push(buffer.getLine(i)?.translateToString(true) ?? "");
  const url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], { type: "text/plain" }));
  h("a", { href: url, download: `${model.get("path") || "serial"}.log` }).click();
  setTimeout(() => URL.revokeObjectURL(url), 0);
}

export default {
  render({ model, el }) {
    style("jmp-serial-style", CSS);
    const v = view(model, el, "serial");
    const term = new Terminal({ rows: ROWS, scrollback: 5000, fontSize: 13, cursorBlink: true });
    // The board's terminal queries (cursor position, device attributes) get no automatic
    // answer: every viewer's xterm.js would type its reply into the board's shell (busybox
    // asks for the cursor position after each prompt). Only what a person types is sent.
    for (const query of [{ final: "n" }, { prefix: "?", final: "n" }, { final: "c" }, { prefix: ">", final: "c" }]) {
      term.parser.registerCsiHandler(query, () => true);
    }
    const fit = new FitAddon();
    term.loadAddon(fit);
    const write = writer(term, model);

    // `end`: absolute console offset just past the last byte this view has; null = nothing yet.
    // `epoch` counts consoles: a restarted exporter's console counts offsets from 0 again.
    let end = null;
    let epoch = model.get("epoch");
    const held = [];
    let heldBytes = 0;
    let heldSkipped = 0;
    const state = {
      paused: false,
      setPaused(paused) {
        state.paused = paused;
        if (!paused) {
          if (heldSkipped) write(note(`${heldSkipped} bytes skipped while paused`));
          held.splice(0).forEach(write);
          heldBytes = heldSkipped = 0;
        }
        bar.draw();
      },
    };
    const show = (data) => {
      if (!state.paused) return write(data);
      held.push(data);
      heldBytes += data.length;
      while (heldBytes > HOLD_LIMIT && held.length > 1) {
        const dropped = held.shift();
        heldBytes -= dropped.length;
        heldSkipped += dropped.length;
      }
    };
    const receive = (offset, data) => {
      if (end !== null && offset > end) show(note(`${offset - end} bytes skipped (the browser fell behind)`));
      if (end !== null && offset + data.length <= end) return;
      show(end !== null && offset < end ? data.subarray(end - offset) : data);
      end = offset + data.length;
      const reached = end;
      // how far this view has written (tests compare it with the console), once xterm parsed it
      term.write("", () => { screen.dataset.offset = String(reached); });
    };

    const bar = toolbar(model, term, state);
    const screen = h("div", { class: "jmp-term" });
    const status = h("div", { class: "jmp-status" });
    const drawStatus = () => { status.textContent = [model.get("status"), model.get("log_path") && `log: ${model.get("log_path")}`].filter(Boolean).join(" · "); };
    v.root.append(bar.node, screen, status);
    term.open(screen);
    // xterm.js takes keys through its own textarea: never locked, so a watcher's typing reaches
    // the notice below instead of vanishing
    screen.querySelector("textarea")?.setAttribute("data-view-only", "");
    const drawTheme = () => { term.options.theme = terminalTheme(screen); };
    drawTheme();
    const stopTheme = onThemeChange(drawTheme);
    const resize = () => {
      const size = fit.proposeDimensions();
      if (size && size.cols > 0 && size.cols !== term.cols) term.resize(size.cols, ROWS);
    };
    const observer = new ResizeObserver(resize);
    observer.observe(screen);

    const scrollback = bytesOf(model.get("scrollback"));
    if (scrollback.length) receive(model.get("scrollback_end") - scrollback.length, scrollback);
    v.listen("msg:custom", (msg, buffers) => {
      if (msg?.type !== "output") return;
      if (msg.epoch !== epoch) {
        epoch = msg.epoch;
        end = null;
        show(note("the console started over (the exporter restarted)"));
      }
      for (const event of msg.events ?? []) show(note(event, 36));
      receive(msg.offset, bytesOf(buffers?.[0]));
    });
    v.listen("change:dtr", bar.draw);
    v.listen("change:rts", bar.draw);
    v.listen("change:timestamps", bar.draw);
    v.listen("change:status", drawStatus);
    v.listen("change:log_path", drawStatus);
    drawStatus();
    const send = (message) => {
      try {
        model.send(message);
      } catch (error) { // a saved notebook shown without its kernel: the view stays read-only
        warn(`serial view of ${model.get("path")}: ${error}`);
      }
    };
    // a watcher's keys never leave the browser: one notice on the first key, not one per key
    let toldWatcher = false;
    v.listen("change:locked", () => { toldWatcher = false; });
    const input = term.onData((data) => {
      const locked = model.get("locked");
      if (!locked) return send({ type: "input", data });
      if (!toldWatcher) write(note(`watching, keys not sent: ${locked}`));
      toldWatcher = true;
    });
    // custom messages sent before this view existed are lost: ask for what came after the trait
    send({ type: "catchup", offset: end ?? -1, epoch });
    log(`serial view of ${model.get("path")} rendered at offset ${end}`);

    return () => {
      input.dispose();
      observer.disconnect();
      stopTheme();
      term.dispose();
      v.cleanup();
    };
  },
};
