// Lease bar: who holds the board, a countdown, the expiry warning and hand-over requests for
// the holder; "request hand-over" and "take the lease" for a watcher. Its buttons never lock:
// they are how a watcher becomes the holder. A board leased from an upstream controller shows
// the controller's lease instead (the `controller` trait): why it waits, then the Client object
// holding it, the exporter and the time left, then why it ended; the same view draws the
// notebook's wait for such a lease (ControllerLeaseWidget), before there is a board.
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-lease { display: none; }
.jmp-lease.jmp-shown { display: block; }
.jmp-lease .jmp-title { display: none; }
.jmp-lease .jmp-who { font-weight: 600; }
.jmp-lease .jmp-left { font-variant-numeric: tabular-nums; margin-left: 6px; }
.jmp-lease .jmp-line { color: var(--jp-ui-font-color2, #666); margin-top: 2px; }
.jmp-lease .jmp-warning { color: var(--jp-warn-color0, #750); background: var(--jp-warn-color3, #ffe9b3);
  padding: 2px 6px; border-radius: 3px; margin-top: 4px; }
.jmp-lease .jmp-notice { background: var(--jp-info-color3, #e3f2fd); color: var(--jp-info-color0, #0d47a1);
  padding: 2px 6px; border-radius: 3px; margin-top: 4px; display: flex; gap: 8px; align-items: center; }
.jmp-lease .jmp-notice button { margin-left: auto; }
.jmp-lease[data-mode="pending"] .jmp-who { color: var(--jp-warn-color0, #750); }
`;
const EXTEND = ["15m", "1h", "4h"];

/** `1:02:03` / `4:05`: the time left, to the second. */
function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  return hours ? `${hours}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${Math.floor(s / 60)}:${two(s % 60)}`;
}

const timeOfDay = (unixSeconds) => new Date(unixSeconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function render({ model, el }) {
  style("jmp-lease-style", CSS);
  const v = view(model, el, "lease");
  const who = h("span", { class: "jmp-who" });
  const left = h("span", { class: "jmp-left" });
  const buttons = h("span", { class: "jmp-toolbar" });
  const line = h("div", { class: "jmp-line" });
  const warning = h("div", { class: "jmp-warning" });
  const notices = h("div");
  v.root.append(h("div", { class: "jmp-toolbar" }, who, left, buttons), line, warning, notices);

  // the countdown runs here, from `remaining` and when it arrived: no kernel message per second
  let received = performance.now();
  const tick = () => {
    const controller = model.get("controller") || {};
    const counting = controller.state ? controller.state === "ready" : Boolean(model.get("holder"));
    const seconds = (controller.state ? controller.remaining : model.get("remaining")) - (performance.now() - received) / 1000;
    left.textContent = counting ? `${clock(seconds)} left` : "";
    left.dataset.seconds = counting ? String(Math.max(0, Math.round(seconds))) : "";
  };
  const timer = setInterval(tick, 1000);
  v.onCleanup(() => clearInterval(timer));

  const button = (label, name, ...args) => h("button", { class: "jmp-btn", "data-view-only": true,
    "data-action": name, onclick: () => action(model, name, ...args) }, label);
  // a controller's lease: its own words, not the exporter's view of it
  const drawController = (lease) => {
    v.root.classList.add("jmp-shown");
    v.root.dataset.mode = lease.state;
    const why = lease.message ? `${lease.reason}: ${lease.message}` : lease.reason;
    who.textContent = lease.state === "ready" ? `client ${lease.holder} holds ${lease.exporter}`
      : lease.state === "pending" ? `waiting for an exporter matching ${lease.selector}`
      : `the lease ended (${lease.reason})`;
    buttons.replaceChildren(...(lease.state === "ready" ? [button("release", "release")] : []));
    const until = lease.state === "ready" && lease.end ? `until ${timeOfDay(lease.end)}` : "";
    line.textContent = [lease.name ? `lease ${lease.name} at ${lease.controller}` : lease.controller, until,
      lease.state === "pending" ? why || "asking the controller" : "", model.get("info")].filter(Boolean).join(" · ");
    warning.textContent = lease.state === "ended" ? `${why}: connect again for a new lease` : "";
    warning.style.display = warning.textContent ? "" : "none";
    notices.replaceChildren();
    tick();
  };
  const draw = () => {
    const controller = model.get("controller") || {};
    if (controller.state) return drawController(controller);
    const [holder, mine, purpose] = [model.get("holder"), model.get("mine"), model.get("purpose")];
    v.root.classList.toggle("jmp-shown", model.get("supported") && (model.get("required") || Boolean(holder)));
    v.root.dataset.mode = mine ? "holder" : holder ? "watcher" : "free";
    who.textContent = !holder ? "free: nobody holds the board"
      : `${mine ? "you hold the board" : `held by ${holder}`}${purpose ? ` (${purpose})` : ""}`;
    const extend = h("select", { class: "jmp-extend", "data-view-only": true }, ...EXTEND.map((d) => h("option", { value: d }, d)));
    buttons.replaceChildren(...(mine
      ? [h("button", { class: "jmp-btn", "data-view-only": true, "data-action": "extend",
          onclick: () => action(model, "extend", extend.value) }, "extend by"), extend, button("release", "release")]
      : holder ? [button("request hand-over", "request_handover")] : [button("take the lease", "take")]));
    const queue = model.get("queue");
    const since = holder ? `since ${timeOfDay(model.get("since"))}` : "";
    const waiting = queue.length ? `${queue.length} waiting: ${queue.join(", ")}` : "";
    line.textContent = [since, waiting, model.get("info")].filter(Boolean).join(" · ");
    warning.textContent = model.get("warning");
    warning.style.display = model.get("warning") ? "" : "none";
    notices.replaceChildren(...model.get("notices").map((notice) => h("div", { class: "jmp-notice" },
      `${notice.text} (${timeOfDay(notice.at)})`,
      h("button", { class: "jmp-btn", "data-view-only": true, onclick: () => action(model, "dismiss", notice.at) }, "dismiss"))));
    tick();
  };
  v.listen("change:remaining", () => { received = performance.now(); tick(); });
  v.listen("change:controller", () => { received = performance.now(); draw(); });
  for (const name of ["supported", "required", "holder", "purpose", "since", "mine", "queue", "warning", "notices", "info"]) {
    v.listen(`change:${name}`, draw);
  }
  draw();
  return v.cleanup;
}

export default { render };
