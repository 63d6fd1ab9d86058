import assert from "node:assert/strict";
import { createReferenceBackend } from "../src/backend/reference/backend.ts";
import { createContext } from "../src/tensor/mod.ts";
import { add, conv2d, relu } from "../src/ops/mod.ts";
import { callSite, describeShape, kernelClass, KernelTimer } from "./kernel_timer.ts";

function net(ctx: ReturnType<typeof createContext>) {
  const x = ctx.fromArray(Float32Array.from({ length: 2 * 3 * 5 * 5 }, (_, i) => Math.sin(i)), [
    2,
    3,
    5,
    5,
  ]);
  const w = ctx.fromArray(Float32Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => Math.cos(i)), [
    4,
    3,
    3,
    3,
  ]);
  const y = relu(conv2d(x, w, { padding: 1 }));
  return add(y, y).toFloat32();
}

Deno.test("KernelTimer forwards every call unchanged and times kernels by name, shape and site", () => {
  const plain = net(createContext(createReferenceBackend()));
  const real = createReferenceBackend();
  const timer = new KernelTimer(real);
  const ctx = createContext(timer.backend);
  timer.start({ labelSites: true });
  const timed = net(ctx);
  timer.stop();
  assert.deepEqual(timed, plain);
  const recs = timer.records();
  const conv = recs.find((r) => r.kernel === "conv2dForward");
  assert.ok(conv, "conv2dForward was recorded");
  assert.equal(conv.calls, 1);
  assert.equal(conv.shape, "n2 3x5x5 -> 4x5x5 k3x3 s1");
  assert.equal(conv.site, "ops/conv.ts");
  assert.ok(recs.some((r) => r.kernel === "relu" && r.shape === "x200"));
  assert.ok(recs.some((r) => r.kernel === "axpby" && r.site !== "?"));
  assert.ok(recs.every((r) => r.ms >= 0));
  const total = recs.reduce((a, r) => a + r.ms, 0);
  assert.ok(Math.abs(total - timer.totalMs()) < 1e-6);
  assert.equal(real.liveAllocations(), timer.backend.liveAllocations());
});

Deno.test("KernelTimer reuses the labelled step's call sites by call index and records only when started", () => {
  const timer = new KernelTimer(createReferenceBackend());
  const ctx = createContext(timer.backend);
  net(ctx); // not started: nothing recorded
  assert.equal(timer.records().length, 0);
  timer.start({ labelSites: true });
  net(ctx);
  timer.stop();
  const labelled = timer.records().map((r) => `${r.kernel}|${r.site}`).sort();
  timer.reset();
  timer.start();
  net(ctx);
  timer.stop();
  assert.deepEqual(timer.records().map((r) => `${r.kernel}|${r.site}`).sort(), labelled);
});

Deno.test("describeShape(), callSite() and kernelClass() name what the profile groups by", () => {
  assert.equal(
    describeShape("gemm", [{ m: 2, n: 3, k: 4, transA: false, transB: true }]),
    "m2 n3 k4 tB",
  );
  assert.equal(describeShape("axpby", [{ n: 7 }]), "x7");
  assert.equal(describeShape("softmax", [{ rows: 2, cols: 9 }]), "2x9");
  const stack = "Error\n    at KernelTimer.#add (file:///r/bench/kernel_timer.ts:10:3)\n" +
    "    at Proxy.axpby (file:///r/src/tensor/tensor.ts:5:1)\n" +
    "    at emaUpdate (file:///r/src/ressl/ema.ts:86:25)\n";
  assert.equal(callSite(stack), "ressl/ema.ts");
  assert.equal(kernelClass("axpby", "ressl/ema.ts"), "EMA (axpby per tensor)");
  assert.equal(kernelClass("axpby", "tensor/autodiff.ts"), "gradient accumulation (axpby)");
  assert.equal(kernelClass("conv2dBackwardData", "ops/conv.ts"), "conv backward-data");
  assert.equal(kernelClass("sgdUpdate", "optim/sgd.ts"), "optimizer (SGD update)");
  assert.equal(kernelClass("sgdUpdateMulti", "optim/sgd.ts"), "optimizer (SGD update)");
  assert.equal(kernelClass("emaUpdateMulti", "ressl/ema.ts"), "EMA (axpby per tensor)");
});
