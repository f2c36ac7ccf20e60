// The JupyterLab extension (JupyterLab 4, Notebook 7). Three plugins:
//   * widgets: serves the widget front ends. Each widget's `_esm` is a small loader
//     (src/loader.js); this module puts a registry on `globalThis.jumpstarterJupyter` when
//     JupyterLab loads the extension, before any notebook renders, and the loaders import
//     their front end from it. A global rather than a URL: the extension's static files move
//     with base URLs, hub prefixes and hashed chunk names, while a global is found the same
//     way everywhere. The registry also lends the widgets the server's API (proxy links).
//   * devices: the sidebar of the pool's boards (src/devices.js);
//   * lease status: the status bar's countdown of a lease this notebook holds (src/statusbar.js).
// JupyterLab's own packages are imported as the shared modules of the running JupyterLab
// (the extension builder maps them; none is bundled).
import { ILayoutRestorer, ILabShell } from "@jupyterlab/application";
import { INotebookTracker } from "@jupyterlab/notebook";
import { IStatusBar } from "@jupyterlab/statusbar";
import pkg from "../package.json";
import { api, Boards } from "./api.js";
import { DevicesPanel } from "./devices.js";
import { LeaseStatus } from "./statusbar.js";

const REGISTRY = "jumpstarterJupyter";

globalThis[REGISTRY] = {
  version: pkg.version,
  /** The front-end module of widget `name` (src/widgets/<name>.js), one lazy chunk each. */
  widget: (name) => import(`./widgets/${name}.js`),
  /** GET `{base_url}jumpstarter/<path>` of the server, and its base URL (set once the app is up). */
  api: null,
  baseUrl: "",
};

const widgets = {
  id: "jumpstarter-jupyter:widgets",
  description: "Serves the front ends of jumpstarter-jupyter's widgets",
  autoStart: true,
  activate: (app) => {
    globalThis[REGISTRY].api = (path) => api(app.serviceManager.serverSettings, path);
    globalThis[REGISTRY].baseUrl = app.serviceManager.serverSettings.baseUrl;
    console.log(`[jumpstarter] widget front ends ${pkg.version} registered`);
  },
};

let boards = null; // one poller for the sidebar and the status bar
const boardsOf = (app) => (boards ??= new Boards(app.serviceManager.serverSettings));

const devices = {
  id: "jumpstarter-jupyter:devices",
  description: "The devices sidebar: the pool's boards, who holds them, connect and watch",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ILayoutRestorer],
  activate: (app, tracker, labShell, restorer) => {
    const panel = new DevicesPanel(app, tracker, boardsOf(app));
    app.shell.add(panel, "left", { rank: 700 });
    restorer?.add(panel, panel.id);
    tracker.currentChanged.connect(() => panel.draw());
  },
};

const leaseStatus = {
  id: "jumpstarter-jupyter:lease-status",
  description: "The status bar's countdown of the board's lease this notebook holds",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar],
  activate: (app, tracker, statusBar) => {
    if (!statusBar) return;
    statusBar.registerStatusItem("jumpstarter-jupyter:lease-status", {
      item: new LeaseStatus(tracker, boardsOf(app)),
      align: "left",
      rank: 5,
    });
  },
};

export default [widgets, devices, leaseStatus];
