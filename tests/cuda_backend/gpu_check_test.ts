/**
 * Pieces of `deno task gpu-check` that can be checked without a GPU: reading `deno test` output,
 * the final table, and the benchmark's configuration (the shape the issue names: ResNet-18 CIFAR
 * stem, width 64, 3x32x32, batch 256, K 4096, fp32, plain BN, no shuffle). The whole script is
 * rehearsed on the emulated device with `bash scripts/gpu_run.sh --emulated` (docs/gpu.md).
 *
 * @module
 */

import assert from "node:assert/strict";
import { benchConfig, FULL_BENCH, SMALL_BENCH } from "../../tasks/gpu_check_bench.ts";
import { parseTestOutput, table } from "../../tasks/gpu_check_report.ts";

Deno.test("gpu-check: counts and failed names from deno test output (several files)", () => {
  const text = [
    "conformance cuda: gemm ... ok (80ms)",
    "conformance cuda: conv2dForward / BackwardData ... FAILED (200ms)",
    "ok | 19 passed | 0 failed | 2 ignored (19s)",
    "cuda backend: fill ... FAILED (3ms)",
    "FAILED | 7 passed | 1 failed (1s)",
  ].join("\n");
  assert.deepEqual(parseTestOutput(text), {
    passed: 26,
    failed: 1,
    ignored: 2,
    failures: ["conformance cuda: conv2dForward / BackwardData", "cuda backend: fill"],
  });
  assert.deepEqual(parseTestOutput("error: Module not found"), {
    passed: 0,
    failed: 0,
    ignored: 0,
    failures: [],
  });
});

Deno.test("gpu-check: the table marks failures and leaves information unmarked", () => {
  assert.equal(
    table([
      { check: "device", value: "H200", ok: null },
      { check: "loss, 3 steps", value: "2e-6", ok: true },
      { check: "ours / PyTorch", value: "0.8x", ok: false },
    ]),
    [
      "| check | result | |",
      "|---|---|---|",
      "| device | H200 |  |",
      "| loss, 3 steps | 2e-6 | ok |",
      "| ours / PyTorch | 0.8x | FAIL |",
    ].join("\n"),
  );
});

Deno.test("gpu-check: the benchmark runs the issue's shape, in fp32 with plain BN", () => {
  const c = benchConfig(FULL_BENCH);
  assert.equal(c.model.depth, 18);
  assert.equal(c.model.stem, "cifar");
  assert.equal(c.model.width, 64);
  assert.equal(c.model.inChannels, 3);
  assert.equal(c.image.size, 32);
  assert.equal(c.batchSize, 256);
  assert.equal(c.ressl.queueSize, 4096);
  assert.equal(c.ressl.bnSplits, 1);
  assert.equal(c.ressl.shuffleTeacher, false);
  assert.equal(benchConfig(SMALL_BENCH).batchSize, 16);
});
