// Build the widget front ends, twice over:
//   * the JupyterLab extension (src/index.js, every src/widgets/<name>.js a lazy chunk) into
//     dist/, with JupyterLab's own extension builder (@jupyter/builder);
//   * for the Python package, jumpstarter_jupyter/jupyter/static/:
//     - widgets/<name>.js: each front end as one self-contained ES module, which the kernel
//       sends to a loader that finds no extension (VS Code, the extension disabled);
//     - loaders/<name>.js: the few-KB `_esm` of each widget (src/loader.js), all a saved
//       notebook carries.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const { version } = JSON.parse(readFileSync(join(here, "package.json"), "utf-8"));
const sources = join(here, "src", "widgets");
const outdir = join(here, "..", "jumpstarter_jupyter", "jupyter", "static");
// plumbing imported by the widgets (bundled into each), not widgets of their own
const PLUMBING = new Set(["shared.js", "chart.js"]);
const names = readdirSync(sources).filter((f) => f.endsWith(".js") && !PLUMBING.has(f)).map((f) => f.slice(0, -3));

/** esbuild: a CSS import puts the stylesheet into the page, as JupyterLab's style-loader does. */
const injectCss = {
  name: "inject-css",
  setup(builder) {
    builder.onLoad({ filter: /\.css$/ }, (args) => ({
      contents: `const style = document.createElement("style");
style.textContent = ${JSON.stringify(readFileSync(args.path, "utf-8"))};
document.head.append(style);`,
      loader: "js",
    }));
  },
};

const common = { bundle: true, format: "esm", minify: true, target: "es2020", logLevel: "warning" };

rmSync(outdir, { recursive: true, force: true }); // no stale module of a removed widget
mkdirSync(outdir, { recursive: true });
await build({ ...common, entryPoints: names.map((n) => join(sources, `${n}.js`)), outdir: join(outdir, "widgets"),
  plugins: [injectCss] });
for (const name of names) {
  await build({ ...common, entryPoints: [join(here, "src", "loader.js")], outfile: join(outdir, "loaders", `${name}.js`),
    define: { WIDGET: JSON.stringify(name), VERSION: JSON.stringify(version) } });
}
console.log(`[jumpstarter] built ${names.length} widget modules and their loaders into ${outdir}`);

const builder = join(here, "node_modules", "@jupyter", "builder", "lib", "build-labextension.js");
const core = join(here, "node_modules", "@jupyterlab", "core-meta", "core.package.json");
execFileSync(process.execPath, [builder, "--core-package-file", core, here], { stdio: ["ignore", "ignore", "inherit"] });
console.log(`[jumpstarter] built the JupyterLab extension into ${join(here, "dist")}`);
