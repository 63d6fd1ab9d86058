/**
 * `deno task gpu-check`: the one prepared run for a machine with an NVIDIA GPU (docs/gpu.md says
 * how to ship the tree and Deno there and the exact call). In order, each printed as it finishes
 * and logged under the output folder (`$OUT`, `--out`, or `runs/gpu-check-<time>`):
 *
 * 1. the device, driver, cuBLAS and cuDNN versions and where each library was found;
 * 2. the backend conformance suite on the device (`RESSL_TEST_BACKENDS=cuda`: every kernel against
 *    the reference backend) and the cuda backend's own tests, in a child `deno test`;
 * 3. training steps cuda vs cpu (the reference where oneDNN is not installed) from the same
 *    start: 3 steps within 1e-4 relative, 20 within 1e-2;
 * 4. the step benchmark, ours vs PyTorch on the same GPU (ResNet-18 CIFAR stem, batch 256,
 *    K 4096, fp32, `cudnn.benchmark`): images/s and the ratio;
 *
 * then a short table, last. Exit status 0 when every check passed, 1 otherwise.
 *
 * `--emulated` (or `RESSL_CUDA_EMULATION=1`) rehearses the whole run on the emulated device: the
 * benchmark then uses a small shape and PyTorch runs on the CPU when it has no CUDA (timings are
 * meaningless there; the point is that every part runs).
 *
 * Usage: deno task gpu-check [--out DIR] [--emulated] [--steps N] [--skip-torch]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import type { Backend } from "../src/backend/backend.ts";
import { createCpuBackend } from "../src/backend/cpu/backend.ts";
import { createCudaBackend, type CudaBackend } from "../src/backend/cuda/backend.ts";
import { createReferenceBackend } from "../src/backend/reference/backend.ts";
import { CudaUnavailableError } from "../ffi/cuda/errors.ts";
import { DnnlUnavailableError } from "../ffi/dnnl/mod.ts";
import { parityConfig, stepParity } from "./gpu_check_parity.ts";
import {
  benchConfig,
  benchOurs,
  benchTorch,
  findTorchPython,
  FULL_BENCH,
  SMALL_BENCH,
} from "./gpu_check_bench.ts";
import { Log, type Row, runTests, table } from "./gpu_check_report.ts";

const { values: args } = parseArgs({
  options: {
    out: { type: "string" },
    emulated: { type: "boolean", default: false },
    steps: { type: "string" },
    "skip-torch": { type: "boolean", default: false },
  },
});

const emulated = args.emulated || Deno.env.get("RESSL_CUDA_EMULATION") === "1";
const env = { ...Deno.env.toObject(), RESSL_CUDA_EMULATION: emulated ? "1" : "0" };
const stamp = new Date().toISOString().replace(/[:.]/g, "-").slice(0, 19);
const outDir = args.out ?? Deno.env.get("OUT") ?? join("runs", `gpu-check-${stamp}`);
const log = new Log(outDir);
const rows: Row[] = [];
const cuda = (opts = {}): CudaBackend => createCudaBackend({ env, ...opts });

function fmt(x: number, digits = 3): string {
  return Number.isFinite(x) ? x.toPrecision(digits) : String(x);
}

/** 1: what runs where. */
function deviceInfo(): boolean {
  log.section(`1/4 device and libraries${emulated ? " (EMULATED device: a rehearsal)" : ""}`);
  log.line(`deno ${Deno.version.deno}, v8 ${Deno.version.v8}; output in ${outDir}`);
  let be: CudaBackend;
  try {
    be = cuda();
  } catch (e) {
    if (!(e instanceof CudaUnavailableError)) throw e;
    log.line(`CUDA is not available: ${e.message}`);
    rows.push({ check: "CUDA device", value: e.message.slice(0, 120), ok: false });
    return false;
  }
  try {
    const rt = be.rt;
    for (const [k, v] of Object.entries(be.versions)) log.line(`${k}: ${v}`);
    log.line(
      `device memory: ${(Number(rt.dev.totalMemory) / 2 ** 30).toFixed(1)} GiB, ` +
        `${rt.dev.multiprocessors} SMs`,
    );
    log.line(`libcuda: ${rt.drv.location.path} (${rt.drv.location.source})`);
    log.line(`cuBLAS: ${rt.cublasLib.location.path} (${rt.cublasLib.location.source})`);
    log.line(`cuDNN: ${rt.cudnnLib.location.path} (${rt.cudnnLib.location.source})`);
    if (rt.cudnnLib.missingOptional.length > 0) {
      log.line(`cuDNN optional sub-libraries missing: ${rt.cudnnLib.missingOptional.join(", ")}`);
    }
    const v = be.versions;
    rows.push({
      check: "device",
      value: `${v.device}, driver CUDA ${v.cudaDriver}, cuBLAS ${v.cublas}, cuDNN ${v.cudnn}`,
      ok: null,
    });
  } finally {
    be.dispose();
  }
  try {
    const smi = new Deno.Command("nvidia-smi", {
      args: ["--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (smi.success) log.line(`nvidia-smi: ${new TextDecoder().decode(smi.stdout).trim()}`);
  } catch {
    log.line("nvidia-smi: not installed");
  }
  return true;
}

/** 2: the conformance suite and the backend's tests on the device. */
async function conformance(): Promise<void> {
  log.section("2/4 conformance suite on the device (cuda vs the reference backend)");
  const files = ["tests/backend/conformance_test.ts", "tests/cuda_backend/backend_test.ts"];
  const r = await runTests(
    log,
    "conformance",
    files,
    { ...env, RESSL_TEST_BACKENDS: "cuda" },
    240e3,
  );
  log.line(
    `${r.passed} passed, ${r.failed} failed, ${r.ignored} ignored in ` +
      `${r.seconds.toFixed(1)} s${r.timedOut ? " (TIMED OUT: partial)" : ""}; log conformance.log`,
  );
  for (const f of r.failures) log.line(`  FAILED: ${f}`);
  rows.push({
    check: "conformance + backend tests",
    value: `${r.passed} passed, ${r.failed} failed${r.timedOut ? ", timed out" : ""}`,
    ok: r.failed === 0 && !r.timedOut && r.passed > 0,
  });
}

/** 3: training steps against cpu (or the reference). */
function parity(): void {
  log.section("3/4 training steps: cuda vs cpu from the same start");
  let other: () => Backend = () => createCpuBackend({ threads: 1 });
  let otherName = "cpu";
  try {
    other().dispose();
  } catch (e) {
    if (!(e instanceof DnnlUnavailableError)) throw e;
    other = createReferenceBackend;
    otherName = "reference";
    log.line(
      `the cpu backend is not installed here (${e.message.split(":")[0]}): ` +
        `comparing with the reference backend`,
    );
  }
  // Batch 32 of 16x16: BN statistics over enough values that f32 differences grow slowly (with
  // 8x8 views, layer4's BN sees 8 values per split and amplifies them ~10x every few steps).
  const config = parityConfig({ width: 16, batch: 32, size: 16, queue: 128 });
  const t0 = performance.now();
  const r = stepParity(() => cuda(), other, config, 20);
  const rel = r.a.map((l, i) => Math.abs(l - r.b[i]) / Math.abs(r.b[i]));
  rel.forEach((d, i) =>
    log.line(
      `step ${i + 1}: cuda ${r.a[i].toFixed(6)} ${otherName} ${r.b[i].toFixed(6)} ` +
        `rel ${d.toExponential(2)}`,
    )
  );
  log.save("parity.json", { other: otherName, ...r, rel });
  const max3 = Math.max(...rel.slice(0, 3)), max20 = Math.max(...rel);
  const ok3 = max3 <= 1e-4, ok20 = max20 <= 1e-2 && rel.length === 20;
  log.line(
    `max rel diff: 3 steps ${max3.toExponential(2)} (<= 1e-4 ${ok3 ? "ok" : "FAIL"}), ` +
      `20 steps ${max20.toExponential(2)} (<= 1e-2 ${ok20 ? "ok" : "FAIL"}); leaks ` +
      `cuda ${r.leftA} ${otherName} ${r.leftB}; ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  );
  rows.push({ check: `loss vs ${otherName}, 3 steps`, value: max3.toExponential(2), ok: ok3 });
  rows.push({ check: `loss vs ${otherName}, 20 steps`, value: max20.toExponential(2), ok: ok20 });
  rows.push({ check: "device leaks", value: String(r.leftA), ok: r.leftA === 0 });
}

/** 4: ours vs PyTorch. */
async function benchmark(): Promise<void> {
  const shape = emulated ? SMALL_BENCH : FULL_BENCH;
  const config = benchConfig(shape);
  const steps = Number(args.steps ?? (emulated ? 3 : 30));
  const warmup = emulated ? 1 : 5;
  const what = `ResNet-18 CIFAR stem width ${shape.width}, 3x${shape.size}x${shape.size}, batch ` +
    `${shape.batch}, K ${shape.queue}, fp32`;
  log.section(`4/4 step benchmark: ${what}${emulated ? " (small shape: emulated device)" : ""}`);
  const be = cuda();
  let ours;
  try {
    ours = benchOurs(be, config, warmup, steps);
    const st = be.stats();
    log.line(
      `ours: ${fmt(ours.imagesPerSecond, 4)} images/s (${fmt(ours.secondsPerStep * 1e3)} ` +
        `ms/step over ${steps} steps; warm-up ${fmt(ours.warmupSeconds)} s incl. algorithm ` +
        `search), loss ${fmt(ours.loss, 5)}; ${st.convPlans} conv plans, ` +
        `${(st.allocator.deviceBytes / 2 ** 20).toFixed(0)} MiB held, ${st.launches} launches`,
    );
    log.save("bench_ours.json", {
      shape,
      steps,
      warmup,
      ...ours,
      versions: be.versions,
      stats: st,
    });
  } finally {
    be.dispose();
  }
  rows.push({ check: "ours images/s", value: fmt(ours.imagesPerSecond, 4), ok: null });
  if (args["skip-torch"]) {
    log.line("PyTorch: skipped (--skip-torch)");
    return;
  }
  const py = await findTorchPython();
  if (py === null) {
    log.line("PyTorch: skipped (no python with torch; set RESSL_GPU_CHECK_PYTHON)");
    rows.push({ check: "PyTorch images/s", value: "not run (no torch)", ok: null });
    return;
  }
  const device = py.cuda && !emulated ? "cuda" : "cpu";
  if (device === "cpu") {
    log.line(
      `PyTorch (${py.python}) runs on the CPU: ${emulated ? "a rehearsal" : "torch has no CUDA"}`,
    );
  }
  try {
    const t = await benchTorch(py.python, config, { warmup, steps, device, timeoutMs: 180e3 });
    log.line(
      `PyTorch ${t.torch} on ${t.gpu} (cuDNN ${t.cudnn}): ${fmt(t.imagesPerSecond, 4)} ` +
        `images/s (${fmt(t.secondsPerStep * 1e3)} ms/step; warm-up ${fmt(t.warmupSeconds)} s), ` +
        `loss ${fmt(t.loss, 5)}`,
    );
    log.save("bench_torch.json", { shape, steps, warmup, ...t });
    const ratio = ours.imagesPerSecond / t.imagesPerSecond;
    log.line(`ours / PyTorch: ${ratio.toFixed(2)}x`);
    rows.push({
      check: `PyTorch ${t.torch} images/s (${device})`,
      value: fmt(t.imagesPerSecond, 4),
      ok: null,
    });
    rows.push({
      check: "ours / PyTorch (target >= 1)",
      value: `${ratio.toFixed(2)}x`,
      ok: device === "cuda" ? ratio >= 1 : null,
    });
  } catch (e) {
    log.line(`PyTorch failed: ${(e as Error).message}`);
    rows.push({ check: "PyTorch images/s", value: "failed (see log)", ok: false });
  }
}

async function main(): Promise<number> {
  const phases: [string, () => unknown][] = [
    ["conformance", conformance],
    ["parity", parity],
    ["benchmark", benchmark],
  ];
  if (deviceInfo()) {
    for (const [name, phase] of phases) {
      try {
        await phase();
      } catch (e) {
        log.line(`${name} failed: ${(e as Error).stack ?? e}`);
        rows.push({
          check: name,
          value: `error: ${(e as Error).message.slice(0, 100)}`,
          ok: false,
        });
      }
    }
  }
  const summary = table(rows);
  log.section(`summary${emulated ? " (EMULATED device: timings are not GPU timings)" : ""}`);
  log.line(summary);
  log.save("summary.md", summary + "\n");
  const ok = rows.every((r) => r.ok !== false);
  log.line(`gpu-check ${ok ? "passed" : "FAILED"} in ${log.seconds.toFixed(0)} s`);
  log.close();
  return ok ? 0 : 1;
}

Deno.exit(await main());
