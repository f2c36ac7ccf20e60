// The lab's view of the pool: the server extension's REST API (under the server's base URL,
// authenticated like every Jupyter API), polled while someone looks, and shared by the
// devices sidebar and the status bar.
import { URLExt } from "@jupyterlab/coreutils";
import { ServerConnection } from "@jupyterlab/services";

/** JSON from `{base_url}jumpstarter/<path>`; a failure carries the server's message. */
export async function api(settings, path, method = "GET") {
  const response = await ServerConnection.makeRequest(URLExt.join(settings.baseUrl, "jumpstarter", path), { method }, settings);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.message || `${method} ${path}: HTTP ${response.status}`);
  return body;
}

/**
 * The boards and when they were fetched. `want(key, period)` says who needs updates how often
 * (the sidebar every 2 s while shown, the status bar more rarely); with no one wanting, no
 * requests are made at all.
 */
export class Boards {
  constructor(settings) {
    this.settings = settings;
    this.boards = [];
    this.error = "";
    this.selector = ""; // the sidebar's filter: the server marks which boards it matches
    this.selectorError = "";
    this.fetchedAt = 0; // performance.now() of the answer: countdowns run from it
    this.listeners = new Set();
    this.wants = new Map();
    this.timer = 0;
  }

  want(key, period) {
    if (period) this.wants.set(key, period);
    else this.wants.delete(key);
    this.schedule(0);
  }

  schedule(delay) {
    clearTimeout(this.timer);
    this.timer = 0;
    if (this.wants.size) this.timer = setTimeout(() => this.refresh(), delay);
  }

  async refresh() {
    try {
      const query = this.selector ? `boards?selector=${encodeURIComponent(this.selector)}` : "boards";
      const answer = await api(this.settings, query);
      this.boards = answer.boards;
      this.error = answer.error || "";
      this.selectorError = answer.selector_error || "";
    } catch (error) {
      this.error = `devices: ${error.message}`;
    }
    this.fetchedAt = performance.now();
    for (const listener of this.listeners) listener();
    this.schedule(Math.min(...this.wants.values()));
  }

  /** Filter by a label selector (Kubernetes syntax, parsed by the server); "" shows every board. */
  setSelector(selector) {
    this.selector = selector.trim();
    this.schedule(0);
  }

  /** Seconds left on `board`'s lease now, counting down from the last answer. */
  remaining(board) {
    return Math.max(0, board.remaining - (performance.now() - this.fetchedAt) / 1000);
  }
}

/** `1:02:03` / `4:05`. */
export function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(s / 3600);
  return hours ? `${hours}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}` : `${Math.floor(s / 60)}:${two(s % 60)}`;
}

/** The kernel id of the notebook in front, if any. */
export function currentKernelId(tracker) {
  return tracker?.currentWidget?.sessionContext?.session?.kernel?.id ?? "";
}
