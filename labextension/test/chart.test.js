// The chart's scales and ticks (src/widgets/chart.js): node --test, no browser.
import assert from "node:assert/strict";
import { test } from "node:test";

import { nearest, paddedRange, ticks, tickStep, timeRange } from "../src/widgets/chart.js";

test("tick steps are 1, 2 or 5 times a power of ten, about five per span", () => {
  assert.equal(tickStep(10), 2);
  assert.equal(tickStep(1), 0.2);
  assert.equal(tickStep(100), 20);
  assert.equal(tickStep(37), 10);
  assert.equal(tickStep(0.003), 0.0005);
  assert.equal(tickStep(7, 1), 5);
});

test("ticks fall inside the range, on multiples of the step, with the decimals the step needs", () => {
  assert.deepEqual(ticks(0, 10), { values: [0, 2, 4, 6, 8, 10], decimals: 0 });
  const { values, decimals } = ticks(4.5, 5.5);
  assert.equal(decimals, 1);
  assert.deepEqual(values.map((v) => v.toFixed(decimals)), ["4.6", "4.8", "5.0", "5.2", "5.4"]);
  assert.ok(ticks(-1.3, 1.3).values.includes(0)); // zero is exactly 0, not -2.7e-17
  assert.ok(!ticks(-1.3, 1.3).values.some((v) => Object.is(v, -0)));
});

test("a steady reading sits in the middle of its axis; nothing measured starts at zero", () => {
  const { min, max } = paddedRange([5, 5, 5]);
  assert.ok(min < 5 && 5 < max);
  assert.ok(Math.abs((min + max) / 2 - 5) < 1e-12);
  assert.ok(max - min < 1.5, `a tenth of the value as span, padded: ${min}..${max}`);
  assert.deepEqual(paddedRange([]), { min: 0, max: 1 });
  const off = paddedRange([0, 0]);
  assert.ok(off.min <= 0 && off.min > -0.2 && off.max >= 1);
});

test("the range pads the data's span by a tenth on both sides", () => {
  const { min, max } = paddedRange([0, 10, 3]);
  assert.ok(Math.abs(min + 1) < 1e-12 && Math.abs(max - 11) < 1e-12);
});

test("a long trace is scaled without spreading it into Math.min's arguments", () => {
  const values = Array.from({ length: 500_000 }, (_, i) => i % 1000);
  const { min, max } = paddedRange(values);
  assert.ok(min < 0 && max > 999);
});

test("nearest finds the point closest in time; the window follows the newest point", () => {
  const points = [[0, 1], [1, 2], [2, 3], [10, 4]];
  assert.equal(nearest(points, 1.4), 1);
  assert.equal(nearest(points, 1.6), 2);
  assert.equal(nearest(points, 7), 3);
  assert.equal(nearest(points, -5), 0);
  assert.deepEqual(timeRange([], 60), { from: 0, to: 60 });
  assert.deepEqual(timeRange(points, 60), { from: 0, to: 60 }); // fewer seconds than the window
  assert.deepEqual(timeRange(points, 5), { from: 5, to: 10 });
});
