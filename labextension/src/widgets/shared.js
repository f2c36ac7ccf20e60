// Plumbing shared by every widget front end (bundled into each module by esbuild).
//
// A widget module exports `default { render({ model, el }) { ...; return cleanup } }`.
// `view(model, el, name)` gives it a root element with the error/connection banner already
// wired, a `listen()` that remembers every listener, and `cleanup()` that removes them all.
import { actionMessage } from "../protocol.js";

/** Console output of our front ends, prefixed so it can be told apart from JupyterLab's. */
export function log(...args) {
  console.log("[jumpstarter]", ...args);
}

/** Console warning with the same prefix. */
export function warn(...args) {
  console.warn("[jumpstarter]", ...args);
}

/** Create an element: h("button", { class: "jmp-btn", onclick }, "on"). */
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (value === true) node.setAttribute(key, "");
    else if (value !== false && value != null) node.setAttribute(key, String(value));
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

/** Coalesce calls into at most one `fn()` per animation frame (trait bursts redraw once). */
export function perFrame(fn) {
  let pending = 0;
  const schedule = () => {
    if (!pending) pending = requestAnimationFrame(() => { pending = 0; fn(); });
  };
  schedule.cancel = () => { if (pending) cancelAnimationFrame(pending); pending = 0; };
  return schedule;
}

/** Ask the kernel side to run `action_<name>(...args)` on a worker thread. */
export function action(model, name, ...args) {
  model.send(actionMessage(name, args));
}

/** A number with its unit and three significant digits: "5.00 V", "0.250 A", "12.3 s", "230 V". */
export function formatValue(value, unit = "") {
  if (!Number.isFinite(value)) return `– ${unit}`.trim();
  const magnitude = value === 0 ? 0 : Math.floor(Math.log10(Math.abs(value)));
  const decimals = Math.min(Math.max(2 - magnitude, 0), 6);
  return `${value.toFixed(decimals)} ${unit}`.trim();
}

/** The present value of CSS colour variable `name` where `element` is (`fallback` outside JupyterLab). */
export function cssColor(element, name, fallback) {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback;
}

/**
 * Call `fn` whenever the page's theme changes (JupyterLab marks it on <body> once the new
 * theme's stylesheet is in; VS Code swaps <body>'s classes). Returns the unsubscribe function.
 * For what CSS cannot colour itself: canvas drawings, xterm.js.
 */
export function onThemeChange(fn) {
  const observer = new MutationObserver(fn);
  observer.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-name", "data-jp-theme-light", "class"] });
  return () => observer.disconnect();
}

const STYLE = `
.jmp-widget { font-family: var(--jp-ui-font-family, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #222); background: var(--jp-layout-color1, #fff);
  border: var(--jp-border-width, 1px) solid var(--jp-border-color2, #ddd);
  border-radius: var(--jp-border-radius, 2px); padding: 6px; margin: 2px 0; }
.jmp-title { font-weight: 600; margin-bottom: 4px; }
.jmp-banner { display: none; padding: 4px 8px; margin-bottom: 6px; border-radius: 3px;
  background: var(--jp-error-color3, #fdd); color: var(--jp-error-color0, #900); white-space: pre-wrap; }
.jmp-banner.jmp-shown { display: block; }
.jmp-banner.jmp-offline { background: var(--jp-warn-color3, #ffe9b3); color: var(--jp-warn-color0, #750); }
.jmp-toolbar { display: flex; flex-wrap: wrap; gap: 4px; align-items: center; margin-bottom: 4px; }
.jmp-btn { padding: 2px 10px; border: var(--jp-border-width, 1px) solid var(--jp-border-color1, #bbb);
  border-radius: var(--jp-border-radius, 2px);
  background: var(--jp-layout-color2, #eee); color: inherit; cursor: pointer; font: inherit; }
.jmp-btn:hover { background: var(--jp-layout-color3, #ddd); }
.jmp-btn.jmp-on { background: var(--jp-brand-color1, #1976d2); color: var(--jp-ui-inverse-font-color0, #fff);
  border-color: var(--jp-brand-color1, #1976d2); }
.jmp-widget input, .jmp-widget select { font: inherit; color: var(--jp-ui-font-color1, #222);
  background: var(--jp-input-background, #fff); border: var(--jp-border-width, 1px) solid var(--jp-input-border-color, #bbb);
  border-radius: var(--jp-border-radius, 2px); padding: 1px 4px; }
.jmp-widget input:focus, .jmp-widget select:focus { outline: 1px solid var(--jp-input-active-border-color, #1976d2); }
.jmp-widget progress { accent-color: var(--jp-brand-color1, #1976d2); }
.jmp-btn.jmp-unknown { border-style: dashed; color: var(--jp-ui-font-color2, #666); }
`;

function installStyle() {
  if (document.getElementById("jmp-shared-style")) return;
  document.head.append(h("style", { id: "jmp-shared-style" }, STYLE));
}

/** Inject a widget's own CSS once per page (keyed by `id`). */
export function style(id, css) {
  if (document.getElementById(id)) return;
  document.head.append(h("style", { id }, css));
}

const LOCK_CSS = `
.jmp-widget[data-locked] :disabled { cursor: not-allowed; opacity: 0.55; }
`;
const CONTROLS = "button, input, select, textarea";

/**
 * Follow the `locked` trait (why this kernel may not control the board, "" when it may):
 * every control in the view is disabled, with the reason as its tooltip, except those marked
 * `data-view-only` (a chart's pause). Controls drawn later are caught as they appear.
 */
function watchLock(model, root, listen, onCleanup) {
  style("jmp-lock-style", LOCK_CSS);
  const apply = () => {
    const reason = model.get("locked") || "";
    if (reason) root.dataset.locked = reason;
    else delete root.dataset.locked;
    for (const control of root.querySelectorAll(CONTROLS)) {
      if (control.hasAttribute("data-view-only")) continue;
      if (reason) {
        if (!control.disabled) control.dataset.lockDisabled = "";
        control.disabled = true;
        control.title = `only the lease holder can do this: ${reason}`;
      } else if ("lockDisabled" in control.dataset) {
        control.disabled = false;
        control.removeAttribute("title");
        delete control.dataset.lockDisabled;
      }
    }
  };
  const observer = new MutationObserver(() => { if (model.get("locked")) apply(); });
  observer.observe(root, { childList: true, subtree: true });
  onCleanup(() => observer.disconnect());
  listen("change:locked", apply);
  apply();
}

/**
 * Set up a widget view: root element, banner for the `error` trait and for a lost kernel
 * connection, controls locked while another holds the board, and listener bookkeeping. Returns { root, listen, onCleanup, cleanup }.
 */
export function view(model, el, name) {
  installStyle();
  const cleanups = [];
  const listen = (event, fn) => {
    model.on(event, fn);
    cleanups.push(() => model.off(event, fn));
  };
  const banner = h("div", { class: "jmp-banner", role: "alert" });
  const title = h("div", { class: "jmp-title" }, model.get("path") || name);
  const root = h("div", { class: `jmp-widget jmp-${name}` }, title, banner);
  el.append(root);

  let offline = false;
  const drawBanner = () => {
    const text = offline ? "kernel connection lost: re-run the cell (or %jmp connect) to reconnect" : model.get("error");
    banner.textContent = text || "";
    banner.classList.toggle("jmp-shown", Boolean(text));
    banner.classList.toggle("jmp-offline", offline);
  };
  listen("change:error", drawBanner);
  watchLock(model, root, listen, (fn) => cleanups.push(fn));
  // ipywidgets fires these when the kernel dies or restarts: the view keeps its last state
  listen("comm:close", () => { offline = true; drawBanner(); warn(`${name}: kernel connection closed`); });
  drawBanner();

  return {
    root,
    listen,
    onCleanup: (fn) => cleanups.push(fn),
    cleanup: () => { for (const fn of cleanups.splice(0).reverse()) fn(); root.remove(); },
  };
}
