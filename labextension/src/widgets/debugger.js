// Debugger widget: the target's state with halt / continue / step, the registers (changed ones
// marked), the disassembly around the program counter, a memory view (hex and ASCII) at an
// address or symbol, and the breakpoints. Everything is drawn from traits the kernel side
// fills once per stop, so every viewer of the board shows the same stop.
import { action, h, perFrame, style, view } from "./shared.js";

const CSS = `
.jmp-debugger .jmp-state { font-weight: 600; padding: 1px 8px; border-radius: 9px;
  background: var(--jp-layout-color3, #ccc); }
.jmp-debugger .jmp-state[data-state="halted"] { background: var(--jp-warn-color2, #ffb74d); color: var(--jp-ui-font-color0, #000); }
.jmp-debugger .jmp-state[data-state="running"] { background: var(--jp-success-color2, #81c784); color: var(--jp-ui-font-color0, #000); }
.jmp-debugger .jmp-note { color: var(--jp-ui-font-color2, #666); margin: 2px 0; }
.jmp-debugger .jmp-panes { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.jmp-debugger .jmp-pane { min-width: 220px; }
.jmp-debugger .jmp-pane h4 { margin: 4px 0; font-size: var(--jp-ui-font-size1, 13px); }
.jmp-debugger table, .jmp-debugger pre { font-family: var(--jp-code-font-family, monospace);
  font-size: var(--jp-code-font-size, 12px); border-collapse: collapse; margin: 0; }
.jmp-debugger td { padding: 0 6px; }
.jmp-debugger .jmp-registers { max-height: 320px; overflow-y: auto; }
.jmp-debugger tr.jmp-changed td { color: var(--jp-error-color1, #d32f2f); font-weight: 600;
  background: var(--jp-error-color3, #fdecea); }
.jmp-debugger tr.jmp-pc td { background: var(--jp-brand-color3, #bbdefb); font-weight: 600; }
.jmp-debugger .jmp-sym { color: var(--jp-ui-font-color2, #666); }
.jmp-debugger input.jmp-where { width: 160px; }
`;

function cell(text, cls) {
  return h("td", cls ? { class: cls } : {}, text);
}

function render({ model, el }) {
  style("jmp-debugger-style", CSS);
  const { root, listen, cleanup } = view(model, el, "debugger");
  const badge = h("span", { class: "jmp-state" });
  const reason = h("span", { class: "jmp-reason" });
  const halt = h("button", { class: "jmp-btn", onclick: () => action(model, "halt") }, "halt");
  const resume = h("button", { class: "jmp-btn", onclick: () => action(model, "resume") }, "continue");
  const step = h("button", { class: "jmp-btn", onclick: () => action(model, "step", 1) }, "step");
  const notice = h("div", { class: "jmp-note" });
  const registers = h("table", { class: "jmp-registers-table" });
  const code = h("table", { class: "jmp-code" });
  const where = h("input", { class: "jmp-where", placeholder: "address or symbol", title: "memory view at" });
  const show = h("button", { class: "jmp-btn", onclick: () => where.value && action(model, "view", where.value, 0) }, "view");
  const memory = h("table", { class: "jmp-memory" });
  const memoryNote = h("div", { class: "jmp-note" });
  const target = h("input", { class: "jmp-where", placeholder: "address or symbol", title: "breakpoint at" });
  const add = h("button", { class: "jmp-btn", onclick: () => target.value && action(model, "breakpoint", target.value) },
    "break");
  const points = h("table", { class: "jmp-breakpoints" });
  root.append(
    h("div", { class: "jmp-toolbar" }, badge, reason, halt, resume, step), notice,
    h("div", { class: "jmp-panes" },
      h("div", { class: "jmp-pane" }, h("h4", {}, "registers"), h("div", { class: "jmp-registers" }, registers)),
      h("div", { class: "jmp-pane" }, h("h4", {}, "code"), code),
      h("div", { class: "jmp-pane" }, h("h4", {}, "memory"), h("div", { class: "jmp-toolbar" }, where, show),
        memoryNote, memory),
      h("div", { class: "jmp-pane" }, h("h4", {}, "breakpoints"), h("div", { class: "jmp-toolbar" }, target, add),
        points)));

  const drawStatus = () => {
    const status = model.get("status") || {};
    const state = status.state || "unknown";
    badge.textContent = state;
    badge.dataset.state = state;
    root.dataset.state = state;
    reason.textContent = status.reason ? `${status.reason}${status.pc && state === "halted" ? ` at ${status.pc}` : ""}` : "";
    notice.textContent = [status.gdb, status.notice].filter(Boolean).join(" · ");
    halt.hidden = state === "halted";
    resume.hidden = step.hidden = state !== "halted";
  };
  const drawRegisters = () => registers.replaceChildren(...(model.get("registers") || []).map(([name, value, changed]) =>
    h("tr", { class: changed ? "jmp-changed" : "", "data-register": name }, cell(name), cell(value))));
  const drawCode = () => code.replaceChildren(...(model.get("code") || []).map(([address, symbol, raw, text, atPc]) =>
    h("tr", { class: atPc ? "jmp-pc" : "" }, cell(atPc ? "▶" : ""), cell(address), cell(symbol, "jmp-sym"), h("td", { title: raw }, text))));
  const drawMemory = () => {
    const view = model.get("memory") || {};
    memoryNote.textContent = view.address ? `${view.label ? `${view.label} = ` : ""}${view.address}${view.error ? `: ${view.error}` : ""}` : "";
    memory.replaceChildren(...(view.rows || []).map(([address, hex, ascii]) =>
      h("tr", {}, cell(address, "jmp-sym"), cell(hex), cell(ascii))));
  };
  const drawPoints = () => points.replaceChildren(...(model.get("breakpoints") || []).map((point) =>
    h("tr", { "data-id": point.id }, cell(point.kind), cell(point.address), cell(point.label, "jmp-sym"),
      h("td", {}, h("button", { class: "jmp-btn", onclick: () => action(model, "remove", point.id) }, "remove")))));
  const draw = perFrame(() => { drawStatus(); drawRegisters(); drawCode(); drawMemory(); drawPoints(); });
  for (const name of ["status", "registers", "code", "memory", "breakpoints"]) listen(`change:${name}`, draw);
  drawStatus(); drawRegisters(); drawCode(); drawMemory(); drawPoints();
  return () => { draw.cancel(); cleanup(); };
}

export default { render };
