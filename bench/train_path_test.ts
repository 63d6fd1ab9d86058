import assert from "node:assert/strict";
import { stepSeconds } from "./train_path.ts";

Deno.test("stepSeconds: each step's time is its record's clock minus the previous record's", () => {
  // A 9-step run with --log-every 1: the clock after steps 1..9 (step 1 builds the kernels).
  const clock = new Map([[1, 1.4], [2, 2.2], [3, 2.95], [4, 3.7], [5, 4.5], [6, 5.2], [7, 6.0], [
    8,
    6.75,
  ], [9, 7.9]]);
  const s = stepSeconds(clock, 3, 8);
  const want = [0.75, 0.75, 0.8, 0.7, 0.8, 0.75];
  assert.equal(s.length, want.length);
  s.forEach((x, i) => assert.ok(Math.abs(x - want[i]) < 1e-9, `step ${i + 3}: ${x}`));
});

Deno.test("stepSeconds: a missing record (a run logged every 2 steps) names the step", () => {
  const clock = new Map([[2, 2.2], [4, 3.7], [6, 5.2], [8, 6.75]]);
  assert.throws(() => stepSeconds(clock, 3, 8), /no step record for step 3 .*--log-every 1/);
  assert.throws(() => stepSeconds(new Map([[2, 1], [3, 2]]), 3, 4), /for step 4/);
});
