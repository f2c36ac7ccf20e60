// The messages between a widget's kernel side (jupyter/widget.py, drivers/<interface>/widget.py)
// and its front end: built and recognised here only.
//
// Front end -> kernel (model.send):
//   {action, args}            run the widget's action_<action>(*args) on a worker thread
//   {type: "bundle"}          ask for the front end's module (a loader without the extension)
// Kernel -> front end ("msg:custom"):
//   {type: "bundle", name, version, source}              the module asked for
//   {type: "output", seq, epoch, offset, events}         serial bytes, in buffers[0]
//   {type: "frames", seq, rows, log, chart, counts}      a CAN batch
// State that outlives a message (and is saved with the notebook) travels in traits instead.

/** The message asking the kernel to run the widget's `action_<name>(...args)`. */
export function actionMessage(name, args = []) {
  return { action: name, args };
}

/** The message asking the kernel for the front end's module. */
export function bundleRequest() {
  return { type: "bundle" };
}

/** The module source `msg` carries when it answers a bundle request of widget `name` at `version`, else null. */
export function bundleSource(msg, name, version) {
  return msg?.type === "bundle" && msg.name === name && msg.version === version ? msg.source : null;
}

/**
 * A filter of `type` messages that passes each one once, in order: a message whose `seq` is not
 * above the last passed (a duplicate, or one overtaken) is dropped.
 */
export function inSequence(type) {
  let last = 0;
  return (msg) => {
    if (msg?.type !== type || !(msg.seq > last)) return false;
    last = msg.seq;
    return true;
  };
}
