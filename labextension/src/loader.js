// The `_esm` of every widget: a few KB saved in the notebook instead of the front end itself.
// build.mjs makes one per widget with WIDGET (the src/widgets/<name>.js it stands for) and
// VERSION filled in. It draws the text fallback at once, then swaps in the real front end
// from, in order:
//   1. the JupyterLab extension's registry (JupyterLab, Notebook 7), when its version matches;
//   2. the kernel: {type: "bundle"} asks the widget for the bundled module, which the kernel
//      sends back as {type: "bundle", name, version, source} (VS Code, the extension disabled).
// With neither (a saved notebook without kernel or extension), the text fallback stays.
import { fallback } from "./fallback.js";
import { bundleRequest, bundleSource } from "./protocol.js";

const NAME = WIDGET;
const REGISTRY = "jumpstarterJupyter";
// front ends fetched from kernels, per page: one import however many views ask
const fetched = (globalThis.jumpstarterFetched ??= new Map());

function fromExtension() {
  const registry = globalThis[REGISTRY];
  return registry?.version === VERSION ? registry.widget(NAME) : null;
}

function fromKernel(model, note) {
  const key = `${VERSION}/${NAME}`;
  if (!fetched.has(key)) {
    let resolve;
    const source = new Promise((r) => { resolve = r; });
    const url = source.then((text) => URL.createObjectURL(new Blob([text], { type: "text/javascript" })));
    fetched.set(key, { resolve, module: url.then((u) => import(/* webpackIgnore: true */ u)) });
  }
  const entry = fetched.get(key);
  const onReply = (msg) => {
    const source = bundleSource(msg, NAME, VERSION);
    if (source !== null) entry.resolve(source);
  };
  model.on("msg:custom", onReply);
  try {
    model.send(bundleRequest());
  } catch (error) { // no kernel behind this view: the text is all there is
    note(`no kernel to load the live view from (${error})`);
  }
  return { module: entry.module, stop: () => model.off("msg:custom", onReply) };
}

function render({ model, el }) {
  const text = fallback(NAME, model, el);
  let cleanup = null;
  let closed = false;
  let stop = () => {};
  const start = (module) => {
    stop();
    if (closed) return;
    text.remove();
    cleanup = module.default.render({ model, el });
  };
  const fail = (error) => text.note(`the live view of ${NAME} failed to load: ${error}`);
  const local = fromExtension();
  if (local) {
    local.then(start, fail);
  } else {
    const remote = fromKernel(model, text.note);
    stop = remote.stop;
    remote.module.then(start, fail);
  }
  return () => {
    closed = true;
    stop();
    if (typeof cleanup === "function") cleanup();
    text.remove();
  };
}

export default { render };
