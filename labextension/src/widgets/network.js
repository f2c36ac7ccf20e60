// Network widget: the service's address (as the exporter sees it), a button opening a local
// forward, and the open forwards with links and close buttons. A forward listens on the
// kernel's loopback, which a browser elsewhere (JupyterHub, a remote server) cannot reach: with
// jupyter-server-proxy >= 4.1.1 on the server, each forward also gets a link through the
// user's own server, `{base_url}proxy/PORT/`, authenticated like the rest of Jupyter.
import { action, h, style, view } from "./shared.js";

let proxySupport = null; // one question to the server per page

/** {available, why} from the server extension, or why there is no one to ask. */
function proxy() {
  const registry = globalThis.jumpstarterJupyter;
  if (!registry?.api) return Promise.resolve({ available: false, why: "no JupyterLab extension here to ask the server" });
  return (proxySupport ??= registry.api("proxy").catch((error) => ({ available: false, why: error.message })));
}

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

  let through = { available: false, why: "" };
  const proxied = (local) => through.available
    ? h("a", { class: "jmp-proxied", href: `${globalThis.jumpstarterJupyter.baseUrl}proxy/${local.split(":").pop()}/`,
      target: "_blank", rel: "noopener" }, "open through the server")
    : h("span", { class: "jmp-no-proxy", title: through.why }, through.why ? "(no link through the server)" : "");
  const draw = () => {
    address.textContent = model.get("address") || "…";
    list.replaceChildren(...model.get("forwards").map((local) => h("div", { class: "jmp-forward" },
      "forwarding", h("code", {}, local),
      h("a", { href: `http://${local}/`, target: "_blank", rel: "noopener" }, "open in browser"),
      proxied(local),
      h("button", { class: "jmp-btn", onclick: () => action(model, "close", local) }, "close"))));
  };
  proxy().then((answer) => { through = answer; draw(); });
  listen("change:address", draw);
  listen("change:forwards", draw);
  draw();
  return cleanup;
}

export default { render };
