// Storage mux widget: host / dut / off selector showing the mux position, and a flash control
// (image path on the kernel's machine) with a progress bar fed by the `sent`/`total` traits.
import { action, h, style, view } from "./shared.js";

const CSS = `
.jmp-storage progress { width: 240px; vertical-align: middle; }
.jmp-storage input.jmp-path { width: 280px; }
.jmp-storage .jmp-note { color: var(--jp-ui-font-color2, #666); margin-left: 6px; }
`;

/** Bytes with a binary unit: "512 B", "12.0 KiB", "64.0 MiB", "29.7 GiB" (under 1 KiB was "0 KiB"). */
function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GiB`;
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The card line: its device and size, and what the last flash did. */
function card(model) {
  const [device, capacity, last] = [model.get("device"), model.get("size"), model.get("last_flash") || {}];
  if (!device) return "";
  const flashed = last.device ? ` · last flash: ${size(last.written)}${last.bmap ? ` of ${size(last.image_size)} (bmap)` : ""}`
    + ` in ${last.seconds.toFixed(1)} s, ${last.mb_per_s.toFixed(1)} MB/s${last.verified ? ", verified" : ""}` : "";
  return `card ${device}${capacity ? ` (${size(capacity)})` : ""}${flashed}`;
}

function render({ model, el }) {
  style("jmp-storage-style", CSS);
  const { root, listen, cleanup } = view(model, el, "storage");
  const positions = ["host", "dut", "off"];
  const buttons = Object.fromEntries(positions.map((p) => [p,
    h("button", { class: "jmp-btn", onclick: () => action(model, p) }, p)]));
  const path = h("input", { class: "jmp-path", type: "text", placeholder: "image file on the kernel's machine" });
  const flash = h("button", { class: "jmp-btn", onclick: () => path.value.trim() && action(model, "flash", path.value) },
    "flash");
  const bar = h("progress", { max: 1, value: 0 });
  const note = h("span", { class: "jmp-note" });
  const device = h("div", { class: "jmp-note jmp-card" });
  root.append(
    h("div", { class: "jmp-toolbar" }, "storage to:", ...positions.map((p) => buttons[p])),
    h("div", { class: "jmp-toolbar" }, path, flash),
    h("div", {}, bar, note),
    device,
  );

  const draw = () => {
    const state = model.get("state");
    for (const p of positions) buttons[p].classList.toggle("jmp-on", p === state);
    root.dataset.state = state;
    const [sent, total, flashing] = [model.get("sent"), model.get("total"), model.get("flashing")];
    bar.max = Math.max(total, 1);
    bar.value = sent;
    flash.disabled = flashing;
    const image = model.get("image");
    note.textContent = !total ? "" : `${flashing ? "flashing" : "flashed"} ${image.split("/").pop()}: `
      + `${size(sent)} of ${size(total)} (${Math.floor((100 * sent) / total)} %)`
      + (flashing && model.get("rate") ? `, ${model.get("rate").toFixed(0)} MB/s` : "");
    device.textContent = card(model);
  };
  for (const name of ["state", "sent", "total", "flashing", "image", "rate", "device", "size", "last_flash"]) {
    listen(`change:${name}`, draw);
  }
  draw();
  return cleanup;
}

export default { render };
