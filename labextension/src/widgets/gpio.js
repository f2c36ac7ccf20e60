// GPIO widget: a switch for an output pin, a live indicator for an input pin. The `value`
// trait is the pin's actual level read from the exporter (1, 0, or -1 before the first read).
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-gpio .jmp-row { display: flex; align-items: center; gap: 8px; }
.jmp-gpio .jmp-lamp { width: 14px; height: 14px; border-radius: 50%; border: 1px solid var(--jp-border-color1, #888);
  background: var(--jp-layout-color3, #ccc); }
.jmp-gpio .jmp-lamp.jmp-active { background: var(--jp-warn-color1, #f57c00); box-shadow: 0 0 6px var(--jp-warn-color1, #f57c00);
  border-color: var(--jp-warn-color0, #e65100); }
.jmp-gpio .jmp-switch { position: relative; width: 34px; height: 18px; border-radius: 9px; cursor: pointer;
  background: var(--jp-layout-color3, #bbb); border: none; padding: 0; }
.jmp-gpio .jmp-switch::after { content: ""; position: absolute; top: 2px; left: 2px; width: 14px; height: 14px;
  border-radius: 50%; background: var(--jp-layout-color0, #fff); transition: left 0.1s; }
.jmp-gpio .jmp-switch.jmp-active { background: var(--jp-brand-color1, #1976d2); }
.jmp-gpio .jmp-switch.jmp-active::after { left: 18px; }
`;

const LEVEL = { 1: "active", 0: "inactive", [-1]: "unknown" };

function render({ model, el }) {
  style("jmp-gpio-style", CSS);
  const { root, listen, cleanup } = view(model, el, "gpio");
  const output = model.get("kind") === "output";
  const indicator = output
    ? h("button", { class: "jmp-switch", role: "switch", title: "drive the pin",
        onclick: () => action(model, "set", model.get("value") !== 1) })
    : h("span", { class: "jmp-lamp", role: "img" });
  const label = h("span", { class: "jmp-level" });
  root.append(h("div", { class: "jmp-row" }, indicator, label));

  const draw = () => {
    const value = model.get("value");
    const level = LEVEL[value] ?? "unknown";
    indicator.classList.toggle("jmp-active", value === 1);
    indicator.setAttribute(output ? "aria-checked" : "aria-label", String(value === 1));
    label.textContent = level;
    root.dataset.value = String(value);
  };
  listen("change:value", draw);
  draw();
  return cleanup;
}

export default { render };
