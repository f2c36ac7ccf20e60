// What a widget shows as text until (or unless) its live front end loads: its title, the
// summary of its state the kernel saved with it (the `summary` trait, made by the widget's
// Python side), and a note saying why it is only text. This is what a saved notebook opened
// without its kernel and without the JupyterLab extension shows. It knows no widget.

/** Draw widget `name`'s text form into `el`; returns { note(text), remove() }. */
export function fallback(name, model, el) {
  const root = document.createElement("div");
  root.className = `jmp-fallback jmp-fallback-${name}`;
  root.style.cssText = "font-family: var(--jp-code-font-family, monospace); font-size: 12px;";
  const title = document.createElement("div");
  title.textContent = `${model.get("path") || name} (text view)`;
  title.style.fontWeight = "600";
  const body = document.createElement("pre");
  body.style.cssText = "margin: 2px 0; white-space: pre-wrap;";
  body.textContent = [model.get("error") && `error: ${model.get("error")}`, model.get("summary")]
    .filter(Boolean).join("\n");
  const note = document.createElement("div");
  note.style.opacity = "0.7";
  note.textContent = "live view: needs the running kernel or the jumpstarter-jupyter JupyterLab extension";
  root.append(title, body, note);
  el.append(root);
  return { note: (text) => { note.textContent = text; }, remove: () => root.remove() };
}
