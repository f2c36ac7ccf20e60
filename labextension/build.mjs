// Bundle each widget front end src/widgets/<name>.js into the Python package's static/<name>.js.
// One self-contained ES module per widget: anywidget syncs a widget's module as a trait, so
// a library imported by one widget (xterm.js) never lands in another widget's saved state.
import { build } from "esbuild";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const sources = join(here, "src", "widgets");
const outdir = join(here, "..", "jumpstarter_jupyter", "jupyter", "static");
// shared.js is plumbing imported by the widgets, not a widget of its own
const entries = readdirSync(sources).filter((f) => f.endsWith(".js") && f !== "shared.js");

rmSync(outdir, { recursive: true, force: true }); // no stale bundle of a removed widget
mkdirSync(outdir, { recursive: true });
await build({
  entryPoints: entries.map((f) => join(sources, f)),
  outdir,
  bundle: true,
  format: "esm",
  minify: true,
  target: "es2020",
  loader: { ".css": "text" },
  logLevel: "warning",
});
console.log(`[jumpstarter] built ${entries.length} widget bundles into ${outdir}`);
