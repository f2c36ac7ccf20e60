// Network widget: the service's address (as the exporter sees it), a button opening a local
// forward, and the open forwards with links and close buttons.
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-network input.jmp-port { width: 70px; }
.jmp-network .jmp-forward { display: flex; gap: 8px; align-items: center; margin: 2px 0; }
.jmp-network code { font-family: var(--jp-code-font-family, monospace); }
`;

function render({ model, el }) {
  style("jmp-network-style", CSS);
  const { root, listen, cleanup } = view(model, el, "network");
  const address = h("code", {});
  const port = h("input", { class: "jmp-port", type: "number", min: 0, max: 65535, value: 0, title: "local port (0: any)" });
  const open = h("button", { class: "jmp-btn", onclick: () => action(model, "open", Number(port.value) || 0) },
    "open forward");
  const list = h("div", {});
  root.append(h("div", { class: "jmp-toolbar" }, "service:", address), h("div", { class: "jmp-toolbar" }, "local port", port, open), list);

  const draw = () => {
    address.textContent = model.get("address") || "…";
    list.replaceChildren(...model.get("forwards").map((local) => h("div", { class: "jmp-forward" },
      "forwarding", h("code", {}, local),
      h("a", { href: `http://${local}/`, target: "_blank", rel: "noopener" }, "open in browser"),
      h("button", { class: "jmp-btn", onclick: () => action(model, "close", local) }, "close"))));
  };
  listen("change:address", draw);
  listen("change:forwards", draw);
  draw();
  return cleanup;
}

export default { render };
