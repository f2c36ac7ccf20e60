// The messages between a widget's kernel side and its front end (src/protocol.js): node --test.
import assert from "node:assert/strict";
import { test } from "node:test";

import { actionMessage, bundleRequest, bundleSource, inSequence } from "../src/protocol.js";

test("an action is {action, args}: what DriverWidget dispatches to action_<name>(*args)", () => {
  assert.deepEqual(actionMessage("cycle", [2]), { action: "cycle", args: [2] });
  assert.deepEqual(actionMessage("on"), { action: "on", args: [] });
  assert.deepEqual(JSON.parse(JSON.stringify(actionMessage("send", [0x123, "01 02"]))), { action: "send", args: [291, "01 02"] });
});

test("a loader asks for its module and takes only the answer for its widget and version", () => {
  assert.deepEqual(bundleRequest(), { type: "bundle" });
  const answer = { type: "bundle", name: "power", version: "0.1.0", source: "export default {}" };
  assert.equal(bundleSource(answer, "power", "0.1.0"), "export default {}");
  assert.equal(bundleSource(answer, "serial", "0.1.0"), null); // another widget's
  assert.equal(bundleSource(answer, "power", "0.2.0"), null); // another version's
  assert.equal(bundleSource({ type: "frames", seq: 1 }, "power", "0.1.0"), null);
  assert.equal(bundleSource(undefined, "power", "0.1.0"), null);
});

test("numbered messages pass once, in order; other kinds never", () => {
  const fresh = inSequence("frames");
  const seen = [1, 2, 2, 1, 5, 3, 6].map((seq) => fresh({ type: "frames", seq }));
  assert.deepEqual(seen, [true, true, false, false, true, false, true]);
  assert.equal(fresh({ type: "output", seq: 99 }), false);
  assert.equal(fresh({ type: "frames" }), false); // no seq: not a batch
  assert.equal(fresh(null), false);
});
