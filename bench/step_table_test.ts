import assert from "node:assert/strict";
import { overall, roundSpread, speedup, stepTable } from "./step_table.ts";
import { resnet18ConvMacs, resnet18ConvShapes } from "./step_flops.ts";
import { parseGc } from "./profile_children.ts";
import type { PeerSpec } from "./peers.ts";

const sides = {
  ours: [[1.0, 1.2], [2.0, 2.0]],
  t2: [[3.0, 3.0], [4.0, 4.0]],
  t2cl: [[2.0, 2.2], [3.0, 3.0]],
};

Deno.test("speedup() compares with the faster peer overall and gives the per-round range", () => {
  const s = speedup(sides, ["t2", "t2cl"])!;
  assert.equal(s.best, "t2cl");
  assert.equal(overall(sides.ours), 1.6);
  assert.ok(Math.abs(s.ratio - 2.6 / 1.6) < 1e-12);
  // round 1: min(3, 2.1) / 1.1; round 2: min(4, 3) / 2
  assert.ok(Math.abs(s.min - 1.5) < 1e-12);
  assert.ok(Math.abs(s.max - 2.1 / 1.1) < 1e-12);
  assert.equal(speedup(sides, ["t113"]), undefined);
});

Deno.test("roundSpread() is the range of the round medians over their median", () => {
  assert.ok(Math.abs(roundSpread([[1, 1], [2, 2], [1.5]]) - 100 * (1 / 1.5)) < 1e-9);
});

Deno.test("stepTable() prints one row per case with both speed-ups and the robust views", () => {
  const peer = (id: "t2" | "t2cl", cl: boolean): PeerSpec => ({
    id,
    label: `torch 2.14.1 ${cl ? "channels_last" : "NCHW"}`,
    python: "p",
    torch: "2.14.1",
    onednn: "3.12.0",
    channelsLast: cl,
    current: true,
  });
  const md = stepTable(
    [{ case: { label: "(x) case", target: 1.5 }, batch: 64, gflop: 100, sides, cpu: sides }],
    [peer("t2", false), peer("t2cl", true)],
    2,
    440,
  );
  assert.match(md, /\| \(x\) case \| 1600 \| 3500 \| 2600 \| 1\.63x \(1\.50-1\.91\) \| - \|/);
  assert.match(md, /\| \(x\) case \| 1000 \/ 3000 \/ 2000 \| 2\.00x \| - \|/);
});

Deno.test("resnet18ConvShapes() lists 20 convolutions whose work equals resnet18ConvMacs()", () => {
  for (const [w, c, s] of [[64, 1, 28], [16, 1, 28], [64, 3, 32]]) {
    const shapes = resnet18ConvShapes(w, c, s);
    assert.equal(shapes.reduce((a, x) => a + x.count, 0), 20);
    const macs = shapes.reduce((a, x) => a + x.count * x.c * x.k * x.out * x.out * x.r * x.r, 0);
    const [stem, rest] = resnet18ConvMacs(w, c, s);
    assert.equal(macs, stem + rest);
  }
});

Deno.test("parseGc() sums the main isolate's pauses between the markers", () => {
  const lines = [
    "[1:0xaa]       5 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, pooled: 0.0 MB, 9.00 / 0.00 ms (x) allocation failure;",
    "@@begin 10",
    "[1:0xaa]      12 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, pooled: 0.0 MB, 1.50 / 0.00 ms (x) allocation failure;",
    "[1:0xbb]      13 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, 7.00 / 0.00 ms (x) allocation failure;",
    "[1:0xaa]      20 ms: Mark-Compact 30.2 (40.2) -> 20.1 (41.2) MB, 2.25 / 0.10 ms (x) finalize;",
    "@@end 30",
    "[1:0xaa]      40 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, 5.00 / 0.00 ms (x) allocation failure;",
  ];
  assert.deepEqual(parseGc(lines), { scavenges: 1, markCompacts: 1, pauseMs: 3.75 });
  assert.equal(parseGc(["no markers"]), undefined);
});

Deno.test("parseGc() finds markers and GC lines that V8's buffered output split mid-line", () => {
  const lines = [
    "[1:0xaa]       5 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, pooled: 0.0 MB, 1.00 / 0.00 ms (x);",
    "[1:0xaa]      12 ms: Scave@@begin 10",
    "nge 3.2 (4.2) -> 3.1 (5.2) MB, pooled: 0.0 MB, 2.00 / 0.00 ms (x) allocation failure;",
    "@@end 30[1:0xaa]      20 ms: Scavenge 3.2 (4.2) -> 3.1 (5.2) MB, 4.00 / 0.00 ms (x);",
  ];
  assert.deepEqual(parseGc(lines), { scavenges: 2, markCompacts: 0, pauseMs: 6 });
});
