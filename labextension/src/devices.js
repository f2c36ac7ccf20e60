// The devices sidebar: every pool board (and the server's $JUMPSTARTER_HOST) with its state and
// labels, a label-selector filter, and what one can do about a board (or any matching one) from here.
import { NotebookActions } from "@jupyterlab/notebook";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";
import { api, clock, currentKernelId } from "./api.js";

const SHOWN_PERIOD = 2000; // ms between polls while the sidebar is visible
const ICON = new LabIcon({
  name: "jumpstarter-jupyter:devices",
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><g class="jp-icon3" fill="#616161">
<path d="M7 2h2v3h2V2h2v3h2V2h2v3h1a2 2 0 0 1 2 2v1h3v2h-3v2h3v2h-3v2h3v2h-3v1a2 2 0 0 1-2 2h-1v3h-2v-3h-2v3h-2v-3H9v3H7v-3H6a2 2 0 0 1-2-2v-1H1v-2h3v-2H1v-2h3V8H1V6h3V7a2 2 0 0 1 2-2h1zm-1 5v10h12V7zm3 3h6v4H9z"/></g></svg>`,
});

const CSS = `
.jmp-devices { padding: 8px; overflow-y: auto; font-family: var(--jp-ui-font-family); font-size: var(--jp-ui-font-size1);
  color: var(--jp-ui-font-color1); background: var(--jp-layout-color1); }
.jmp-devices h2 { font-size: var(--jp-ui-font-size2); margin: 0 0 8px; }
.jmp-devices .jmp-board { border: 1px solid var(--jp-border-color2); border-radius: 4px; padding: 6px; margin-bottom: 6px; }
.jmp-devices .jmp-name { font-weight: 600; }
.jmp-devices .jmp-about, .jmp-devices .jmp-where { color: var(--jp-ui-font-color2); }
.jmp-devices .jmp-state { margin: 4px 0; }
.jmp-devices .jmp-state[data-state="free"] { color: var(--jp-success-color1); }
.jmp-devices .jmp-state[data-state="unreachable"] { color: var(--jp-error-color1); }
.jmp-devices .jmp-mine { background: var(--jp-brand-color1); color: var(--jp-ui-inverse-font-color1); border-radius: 3px; padding: 0 4px; }
.jmp-devices .jmp-actions { display: flex; flex-wrap: wrap; gap: 4px; }
.jmp-devices button { font: inherit; padding: 1px 8px; border: 1px solid var(--jp-border-color1); border-radius: 3px;
  background: var(--jp-layout-color2); color: inherit; cursor: pointer; }
.jmp-devices .jmp-error, .jmp-devices .jmp-note { color: var(--jp-error-color1); white-space: pre-wrap; margin-bottom: 6px; }
.jmp-devices .jmp-note { color: var(--jp-ui-font-color2); }
.jmp-devices .jmp-selector { width: 100%; box-sizing: border-box; margin-bottom: 6px; font: inherit; padding: 2px 4px;
  border: 1px solid var(--jp-border-color1); background: var(--jp-layout-color0); color: inherit; }
.jmp-devices .jmp-labels { display: flex; flex-wrap: wrap; gap: 3px; margin: 2px 0; }
.jmp-devices .jmp-label { background: var(--jp-layout-color3); border-radius: 3px; padding: 0 4px; font-size: var(--jp-ui-font-size0); }
.jmp-devices .jmp-match { margin-bottom: 6px; display: flex; flex-wrap: wrap; gap: 4px; align-items: center; }
`;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c != null && c !== false));
  return node;
}

/** The code a button runs in the notebook: the board by name, or the server's $JUMPSTARTER_HOST. */
function connectCode(board, watch) {
  return `%load_ext jumpstarter\n%jmp connect ${board.name}${watch ? " --watch" : ""}`;
}

/** Connect to any free board the selector matches (else wait in line at all of them). */
function connectAnyCode(selector) {
  return `%load_ext jumpstarter\n%jmp connect --selector '${selector}'`;
}

/** Insert `code` as a new cell of the notebook in front (else a new notebook) and run it. */
async function runInNotebook(app, tracker, code) {
  let panel = tracker.currentWidget;
  if (!panel) panel = await app.commands.execute("notebook:create-new", { kernelName: "python3" });
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  const notebook = panel.content;
  const last = notebook.widgets[notebook.widgets.length - 1];
  if (last && last.model.sharedModel.getSource().trim() === "") notebook.activeCellIndex = notebook.widgets.length - 1;
  else {
    notebook.activeCellIndex = notebook.widgets.length - 1;
    NotebookActions.insertBelow(notebook);
  }
  notebook.activeCell.model.sharedModel.setSource(code);
  await NotebookActions.run(notebook, panel.sessionContext);
}

export class DevicesPanel extends Widget {
  constructor(app, tracker, boards) {
    super();
    this.app = app;
    this.tracker = tracker;
    this.model = boards;
    this.id = "jumpstarter-devices";
    this.title.icon = ICON;
    this.title.caption = "Devices (jumpstarter)";
    this.addClass("jmp-devices");
    this.note = "";
    if (!document.getElementById("jmp-devices-style")) document.head.append(h("style", { id: "jmp-devices-style" }, CSS));
    // the filter stays while the rest redraws (every second): typing keeps its focus
    let typing = 0;
    this.filter = h("input", { class: "jmp-selector", type: "search", placeholder: "label selector, e.g. soc=imx8mp,site!=lab2",
      "aria-label": "filter boards by label selector",
      oninput: () => { clearTimeout(typing); typing = setTimeout(() => boards.setSelector(this.filter.value), 300); } });
    this.body = h("div", { class: "jmp-body" });
    this.node.append(h("h2", {}, "Devices"), this.filter, this.body);
    this.redraw = () => this.draw();
    boards.listeners.add(this.redraw);
    this.ticker = 0;
  }

  onAfterShow() {
    this.model.want("sidebar", SHOWN_PERIOD);
    this.ticker = setInterval(this.redraw, 1000); // countdowns between polls
  }

  onBeforeHide() {
    this.model.want("sidebar", 0);
    clearInterval(this.ticker);
  }

  dispose() {
    this.model.listeners.delete(this.redraw);
    this.model.want("sidebar", 0);
    clearInterval(this.ticker);
    super.dispose();
  }

  async act(what, work) {
    this.note = `${what}…`;
    this.draw();
    try {
      const answer = await work();
      this.note = answer?.message ?? "";
    } catch (error) {
      this.note = `${what}: ${error.message}`;
    }
    this.model.schedule(0);
    this.draw();
  }

  draw() {
    const { boards, error, selector, selectorError } = this.model;
    const kernel = currentKernelId(this.tracker);
    const shown = boards.filter((board) => board.matches !== false);
    const cards = shown.map((board) => this.card(board, kernel));
    const empty = boards.length ? `No board matches ${selector}.` : "No boards: name them in jumpstarter-pool.yaml (see the README).";
    const parts = [
      error ? h("div", { class: "jmp-error" }, error) : null,
      selectorError ? h("div", { class: "jmp-error jmp-selector-error" }, selectorError) : null,
      selector && !selectorError && shown.length ? this.matching(shown) : null,
      this.note ? h("div", { class: "jmp-note" }, this.note) : null,
      ...(cards.length ? cards : [h("div", { class: "jmp-about" }, empty)]),
    ];
    this.body.replaceChildren(...parts.filter(Boolean));
  }

  /** "2 of 4 match, 1 free" and the button that takes any free one of them. */
  matching(shown) {
    const selector = this.model.selector;
    const free = shown.filter((board) => board.free).length;
    return h("div", { class: "jmp-match" },
      h("span", {}, `${shown.length} of ${this.model.boards.length} match, ${free} free`),
      h("button", { "data-action": "connect-any", onclick: () => this.act("connect any", () => runInNotebook(this.app, this.tracker, connectAnyCode(selector))) },
        `connect to any free ${selector}`));
  }

  card(board, kernel) {
    const mine = board.holder && kernel && board.kernel_id === kernel;
    const left = board.holder ? `, ${clock(this.model.remaining(board))} left` : "";
    const state = !board.reachable ? "unreachable" : board.holder ? "held" : "free";
    const text = !board.reachable ? `not reachable${board.error && board.error !== "not reachable" ? `: ${board.error}` : ""}`
      : !board.leases ? `${board.drivers} drivers, no leases`
      : board.holder ? `held by ${board.holder}${board.purpose ? ` (${board.purpose})` : ""}${left}`
      : `free, ${board.drivers} drivers`;
    const queue = board.queue.length ? ` · ${board.queue.length} waiting` : "";
    const settings = this.model.settings;
    const name = encodeURIComponent(board.name);
    const actions = [
      h("button", { "data-action": "connect", onclick: () => this.act("connect", () => runInNotebook(this.app, this.tracker, connectCode(board, false))) }, "connect in this notebook"),
      h("button", { "data-action": "watch", onclick: () => this.act("watch", () => runInNotebook(this.app, this.tracker, connectCode(board, true))) }, "watch"),
      board.holder && !mine ? h("button", { "data-action": "handover", onclick: () => this.act("request hand-over", () => api(settings, `boards/${name}/handover`, "POST")) }, "request hand-over") : null,
      board.holder && board.admin ? h("button", { "data-action": "force-release", onclick: () => this.act("force release", () => api(settings, `boards/${name}/force-release`, "POST")) }, "force release") : null,
    ];
    return h("div", { class: "jmp-board", "data-board": board.name, "data-state": state },
      h("div", {}, h("span", { class: "jmp-name" }, board.name), " ", mine ? h("span", { class: "jmp-mine" }, "held by this notebook") : null),
      board.description ? h("div", { class: "jmp-about" }, board.description) : null,
      Object.keys(board.labels || {}).length ? h("div", { class: "jmp-labels" },
        ...Object.entries(board.labels).sort().map(([key, value]) => h("span", { class: "jmp-label" }, `${key}=${value}`))) : null,
      h("div", { class: "jmp-where" }, board.endpoint),
      h("div", { class: "jmp-state", "data-state": state }, text + queue),
      h("div", { class: "jmp-actions" }, ...actions));
  }
}
