// The status bar: in a notebook whose kernel holds a board's lease, the board and the time
// left; a click extends the lease by an hour (the kernel holds it, so the kernel extends it).
import { Widget } from "@lumino/widgets";
import { clock, currentKernelId } from "./api.js";

const PERIOD = 10000; // ms between polls for the status bar alone (the sidebar asks for more)
const SOON = 300; // seconds: under five minutes the item turns to the warning colour
const EXTEND = "from jumpstarter_jupyter.jupyter.lease import extend_leases as _jmp_extend\n_jmp_extend(3600)";

const CSS = `
.jmp-lease-status { padding: 0 6px; cursor: pointer; font-variant-numeric: tabular-nums; }
.jmp-lease-status.jmp-soon { background: var(--jp-warn-color0); color: var(--jp-ui-inverse-font-color1); }
`;

export class LeaseStatus extends Widget {
  constructor(tracker, boards) {
    super();
    this.tracker = tracker;
    this.model = boards;
    this.addClass("jmp-lease-status");
    this.node.title = "the board's lease held by this notebook: click to extend it by an hour";
    if (!document.getElementById("jmp-status-style")) {
      const style = document.createElement("style");
      style.id = "jmp-status-style";
      style.textContent = CSS;
      document.head.append(style);
    }
    this.node.addEventListener("click", () => this.extend());
    boards.listeners.add(() => this.draw());
    tracker.currentChanged.connect(() => this.follow());
    setInterval(() => this.draw(), 1000);
    this.follow();
  }

  /** Poll while a notebook is in front (its kernel may hold a lease); not otherwise. */
  follow() {
    this.model.want("status", this.tracker.currentWidget ? PERIOD : 0);
    this.draw();
  }

  held() {
    const kernel = currentKernelId(this.tracker);
    return kernel ? this.model.boards.filter((board) => board.holder && board.kernel_id === kernel) : [];
  }

  draw() {
    const held = this.held();
    const left = held.map((board) => this.model.remaining(board));
    this.node.textContent = held.map((board, i) => `${board.name}: ${clock(left[i])}`).join(" · ");
    this.node.dataset.seconds = left.length ? String(Math.round(Math.min(...left))) : "";
    this.node.classList.toggle("jmp-soon", left.some((s) => s < SOON));
    this.node.style.display = held.length ? "" : "none";
  }

  async extend() {
    const kernel = this.tracker.currentWidget?.sessionContext?.session?.kernel;
    if (!kernel) return;
    await kernel.requestExecute({ code: EXTEND, silent: true, store_history: false }).done;
    this.model.schedule(0);
  }
}
