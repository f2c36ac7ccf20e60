// The board's screen: live frames on a canvas scaled to the cell, and its keyboard while focused.
//
// Kernel -> view: {type: "frame", seq, width, height, format} with the encoded picture in
// buffers[0] (binary, never base64); the `still` trait (a recent picture) on first render.
// View -> kernel: {type: "ack", seq} once a frame is drawn (the kernel fetches the next one only
// then: frames this view cannot draw are never sent), {type: "hello"} when rendered,
// {type: "text", data} and {type: "key", combo} for keys, and the snapshot action.
import { action, h, log, style, view, warn } from "./shared.js";

const FPS_WINDOW = 2000; // ms of drawn frames the shown rate is measured over
const CAPS = [1, 5, 10, 15, 25]; // frame-rate caps offered (frames/s)
// KeyboardEvent.key -> the screen's key names (QEMU's QKeyCode names)
const KEYS = {
  Enter: "ret", Backspace: "backspace", Tab: "tab", Escape: "esc", Delete: "delete", Insert: "insert",
  Home: "home", End: "end", PageUp: "pgup", PageDown: "pgdn", ArrowUp: "up", ArrowDown: "down",
  ArrowLeft: "left", ArrowRight: "right", " ": "spc",
  ...Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`F${i + 1}`, `f${i + 1}`])),
};
const MODIFIERS = new Set(["Control", "Alt", "Shift", "Meta", "AltGraph", "CapsLock"]);

const CSS = `
.jmp-screen .jmp-surface { position: relative; background: #000; line-height: 0; max-width: 100%;
  border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #ddd); border-radius: var(--jp-border-radius, 2px); }
.jmp-screen .jmp-surface.jmp-focused { outline: 2px solid var(--jp-brand-color1, #1976d2); }
.jmp-screen canvas { width: 100%; height: auto; display: block; cursor: text; }
.jmp-screen .jmp-keys { position: absolute; left: 0; top: 0; width: 1px; height: 1px; opacity: 0; border: 0; padding: 0;
  resize: none; }
.jmp-screen .jmp-status { color: var(--jp-ui-font-color2, #666); font-size: 11px; margin-top: 4px; }
.jmp-screen .jmp-notice { color: var(--jp-warn-color0, #750); }
`;

/** The bytes of a message buffer (DataView, ArrayBuffer or typed array). */
function bytesOf(value) {
  if (!value) return new Uint8Array(0);
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  return new Uint8Array(0);
}

/** What a key press sends: {type: "text", data} for a plain character, {type: "key", combo} otherwise. */
function keyMessage(event) {
  if (MODIFIERS.has(event.key)) return null;
  const chord = event.ctrlKey || event.altKey || event.metaKey;
  if (event.key.length === 1 && !chord) return { type: "text", data: event.key };
  const base = KEYS[event.key] ?? (event.key.length === 1 ? event.key.toLowerCase() : null);
  if (!base) return null;
  const mods = [event.ctrlKey && "ctrl", event.altKey && "alt", event.metaKey && "meta",
    event.shiftKey && base.length > 1 && "shift"].filter(Boolean);
  return { type: "key", combo: [...mods, base].join("-") };
}

function render({ model, el }) {
  style("jmp-screen-style", CSS);
  const v = view(model, el, "screen");
  const canvas = h("canvas", { class: "jmp-canvas", width: 720, height: 400, "aria-label": "the board's screen" });
  const keys = h("textarea", { class: "jmp-keys", "aria-label": "keyboard of the board's screen", "data-view-only": true,
    autocomplete: "off", autocorrect: "off", autocapitalize: "off", spellcheck: "false" });
  const surface = h("div", { class: "jmp-surface" }, canvas, keys);
  const status = h("div", { class: "jmp-status" });
  const notice = h("span", { class: "jmp-notice" });
  const context = canvas.getContext("2d");

  const send = (message) => {
    try {
      model.send(message);
    } catch (error) { // a saved notebook without its kernel: the view shows the still picture only
      warn(`screen view of ${model.get("path")}: ${error}`);
    }
  };

  // drawing: one decode at a time; a frame arriving meanwhile replaces the waiting one
  const drawn = [];
  let busy = false;
  let waiting = null;
  let format = "";
  const draw = async (data, type, seq) => {
    if (busy) {
      if (waiting && waiting[2] !== null) send({ type: "ack", seq: waiting[2] }); // dropped: its room is free again
      waiting = [data, type, seq];
      return;
    }
    busy = true;
    try {
      const bitmap = await createImageBitmap(new Blob([data], { type: `image/${type}` }));
      if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
        canvas.width = bitmap.width;
        canvas.height = bitmap.height;
      }
      context.drawImage(bitmap, 0, 0);
      bitmap.close();
      format = type;
      if (seq !== null) {
        const now = performance.now();
        drawn.push(now);
        while (drawn.length && drawn[0] < now - FPS_WINDOW) drawn.shift();
        surface.dataset.frames = String(Number(surface.dataset.frames || 0) + 1);
        surface.dataset.seq = String(seq);
      }
    } catch (error) {
      warn(`screen view of ${model.get("path")}: a frame could not be drawn: ${error}`);
    } finally {
      busy = false;
      if (seq !== null) send({ type: "ack", seq });
      drawStatus();
      if (waiting) { const next = waiting; waiting = null; draw(...next); }
    }
  };

  const fpsShown = () => {
    const now = performance.now();
    return drawn.filter((t) => t >= now - FPS_WINDOW).length / (FPS_WINDOW / 1000);
  };
  const drawStatus = () => {
    const fps = fpsShown();
    surface.dataset.fps = fps.toFixed(1);
    const parts = [`${canvas.width}×${canvas.height}`, `${fps.toFixed(1)} fps`, format,
      model.get("paused") && "paused", model.get("source"),
      model.get("saved") && `snapshot: ${model.get("saved")}`];
    status.textContent = parts.filter(Boolean).join(" · ") + " ";
    status.append(notice);
  };
  const ticker = setInterval(drawStatus, 1000);
  v.onCleanup(() => clearInterval(ticker));

  // toolbar: pause and the cap only change this view's pace; the snapshot goes to a kernel-side file
  const pause = h("button", { class: "jmp-btn", title: "pause/resume the live picture", "data-view-only": true,
    onclick: () => { model.set("paused", !model.get("paused")); model.save_changes(); } }, "pause");
  const drawPause = () => { pause.textContent = model.get("paused") ? "resume" : "pause"; pause.classList.toggle("jmp-on", model.get("paused")); };
  const cap = h("select", { title: "frame-rate cap (frames per second)", "data-view-only": true,
    onchange: () => { model.set("max_fps", Number(cap.value)); model.save_changes(); } },
    ...CAPS.map((n) => h("option", { value: n }, `≤ ${n} fps`)));
  const drawCap = () => { cap.value = String(CAPS.reduce((a, b) => (Math.abs(b - model.get("max_fps")) < Math.abs(a - model.get("max_fps")) ? b : a))); };
  const snap = h("button", { class: "jmp-btn", title: "save the present picture to a file (kernel side)", "data-view-only": true,
    onclick: () => action(model, "snapshot") }, "snapshot");
  v.root.append(h("div", { class: "jmp-toolbar" }, pause, cap, snap), surface, status);

  // keyboard: only while the picture has focus, only for the lease holder
  let toldWatcher = false;
  const focus = () => keys.focus({ preventScroll: true });
  canvas.addEventListener("mousedown", (event) => { event.preventDefault(); focus(); });
  keys.addEventListener("focus", () => surface.classList.add("jmp-focused"));
  keys.addEventListener("blur", () => surface.classList.remove("jmp-focused"));
  keys.addEventListener("keydown", (event) => {
    const message = keyMessage(event);
    if (!message) return;
    event.preventDefault();
    event.stopPropagation();
    const locked = model.get("locked");
    if (locked) {
      if (!toldWatcher) notice.textContent = `watching, keys not sent: ${locked}`;
      toldWatcher = true;
      return;
    }
    if (!model.get("keyboard")) {
      notice.textContent = "this source takes no keyboard input";
      return;
    }
    send(message);
  });
  v.listen("change:locked", () => { toldWatcher = false; notice.textContent = ""; });

  v.listen("msg:custom", (msg, buffers) => {
    if (msg?.type !== "frame") return;
    draw(bytesOf(buffers?.[0]), msg.format, msg.seq);
  });
  v.listen("change:paused", () => { drawPause(); drawStatus(); });
  v.listen("change:max_fps", drawCap);
  v.listen("change:saved", drawStatus);
  v.listen("change:source", drawStatus);
  drawPause();
  drawCap();
  const still = bytesOf(model.get("still"));
  if (still.length) draw(still, model.get("still_format"), null);
  drawStatus();
  send({ type: "hello" });
  log(`screen view of ${model.get("path")} rendered`);
  return v.cleanup;
}

export default { render };
