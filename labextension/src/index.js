// The JupyterLab extension (JupyterLab 4, Notebook 7): a normal lab plugin that serves the
// widget front ends. Each widget's `_esm` is a small loader (src/loader.js); this module puts
// a registry on `globalThis.jumpstarterJupyter` when JupyterLab loads the extension, before
// any notebook renders, and the loaders import their front end from it. A global rather than
// a URL: the extension's static files move with base URLs, hub prefixes and hashed chunk
// names, while a global is found the same way everywhere.
import pkg from "../package.json";

const REGISTRY = "jumpstarterJupyter";

globalThis[REGISTRY] = {
  version: pkg.version,
  /** The front-end module of widget `name` (src/widgets/<name>.js), one lazy chunk each. */
  widget: (name) => import(`./widgets/${name}.js`),
};

const plugin = {
  id: "jumpstarter-jupyter:widgets",
  description: "Serves the front ends of jumpstarter-jupyter's widgets",
  autoStart: true,
  activate: () => console.log(`[jumpstarter] widget front ends ${pkg.version} registered`),
};

export default plugin;
