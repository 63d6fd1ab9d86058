/**
 * The step benchmark of `deno task gpu-check`: our ReSSL training step on the cuda backend against
 * PyTorch's (`gpu_check_torch.py`) on the same GPU in the same run: ResNet-18 with the CIFAR stem,
 * 3x32x32 views, batch 256, K = 4096, float32 (TF32 off on both sides), plain BatchNorm, no
 * teacher shuffle, random views made once on the device. Each side runs warm-up steps (ours:
 * cuDNN's measured algorithm search per shape; PyTorch: `cudnn.benchmark`), then `steps` steps
 * timed with one synchronisation at the end.
 *
 * @module
 */

import type { Backend } from "../src/backend/backend.ts";
import { normalArray, rngKey } from "../src/random/philox.ts";
import {
  createTrainStep,
  disposeTrainState,
  initTrainState,
  mergeConfig,
  presetConfig,
  type TrainConfig,
  trainStepConfig,
  validateConfig,
} from "../src/ressl/mod.ts";
import { createContext } from "../src/tensor/mod.ts";

/** Shape of the benchmark (the full one on a GPU; `small` for a rehearsal on the emulator). */
export interface BenchShape {
  width: number;
  batch: number;
  size: number;
  queue: number;
  hidden: number;
  out: number;
}

/** ResNet-18 CIFAR, 3x32x32, batch 256, K 4096, head 2048 -> 128 (configs/cifar10.json). */
export const FULL_BENCH: BenchShape = {
  width: 64,
  batch: 256,
  size: 32,
  queue: 4096,
  hidden: 2048,
  out: 128,
};

/** A shape the emulated device runs in seconds (timings are then meaningless). */
export const SMALL_BENCH: BenchShape = {
  width: 8,
  batch: 16,
  size: 16,
  queue: 64,
  hidden: 64,
  out: 16,
};

/** The training configuration of a benchmark shape. */
export function benchConfig(s: BenchShape): TrainConfig {
  return validateConfig(mergeConfig(
    presetConfig("cifar10"),
    {
      batchSize: s.batch,
      model: { width: s.width },
      image: { size: s.size },
      head: { hidden: s.hidden, out: s.out },
      ressl: { queueSize: s.queue, bnSplits: 1, shuffleTeacher: false },
    },
    "gpu-check",
  ));
}

/** One side's result. */
export interface StepTiming {
  secondsPerStep: number;
  imagesPerSecond: number;
  loss: number;
  warmupSeconds: number;
}

/** Times our step on `backend`: `warmup` steps, then `steps` with one synchronisation. */
export function benchOurs(
  backend: Backend,
  config: TrainConfig,
  warmup: number,
  steps: number,
): StepTiming {
  const ctx = createContext(backend);
  const step = createTrainStep(trainStepConfig(config, 1000));
  const [n, c, s] = [config.batchSize, config.model.inChannels, config.image.size];
  let state = initTrainState(ctx, config);
  const weak = ctx.keep(ctx.fromArray(normalArray(rngKey(1), n * c * s * s), [n, c, s, s]));
  const strong = ctx.keep(ctx.fromArray(normalArray(rngKey(2), n * c * s * s), [n, c, s, s]));
  const run = (count: number): number => {
    let loss = NaN;
    for (let i = 0; i < count; i++) {
      const r = ctx.scope(() => step(state, { weak, strong }, rngKey(i)));
      disposeTrainState(state);
      state = r.state;
      if (i === count - 1) loss = r.metrics.loss.item(); // the one synchronisation
      r.metrics.loss.dispose();
    }
    return loss;
  };
  try {
    const t0 = performance.now();
    run(warmup);
    const t1 = performance.now();
    const loss = run(steps);
    const seconds = (performance.now() - t1) / 1000 / steps;
    return {
      secondsPerStep: seconds,
      imagesPerSecond: n / seconds,
      loss,
      warmupSeconds: (t1 - t0) / 1000,
    };
  } finally {
    disposeTrainState(state);
    weak.dispose();
    strong.dispose();
  }
}

/** PyTorch's result, with its versions. */
export interface TorchTiming extends StepTiming {
  torch: string;
  device: string;
  gpu: string;
  cudnn: string;
}

/** Runs `gpu_check_torch.py` with `python`; throws with its output when it fails. */
export async function benchTorch(
  python: string,
  config: TrainConfig,
  o: { warmup: number; steps: number; device: "cuda" | "cpu"; timeoutMs: number },
): Promise<TorchTiming> {
  const script = new URL("./gpu_check_torch.py", import.meta.url).pathname;
  const arg = JSON.stringify({
    width: config.model.width,
    inChannels: config.model.inChannels,
    size: config.image.size,
    batch: config.batchSize,
    hidden: config.head.hidden,
    out: config.head.out,
    queue: config.ressl.queueSize,
    m: config.ressl.emaMomentum,
    tauS: config.ressl.tauStudent,
    tauT: config.ressl.tauTeacher,
    lr: config.optim.lr,
    momentum: config.optim.momentum,
    weightDecay: config.optim.weightDecay,
    seed: 0,
    warmup: o.warmup,
    steps: o.steps,
    device: o.device,
    tf32: false,
  });
  const child = new Deno.Command(python, {
    args: [script, arg],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), o.timeoutMs);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    const text = dec.decode(out.stdout).trim();
    if (!out.success) {
      throw new Error(
        `${python} gpu_check_torch.py exited ${out.code}${out.signal ? ` (${out.signal})` : ""}: ` +
          `${dec.decode(out.stderr).trim().split("\n").slice(-5).join(" | ")}`,
      );
    }
    return JSON.parse(text.split("\n").at(-1)!) as TorchTiming;
  } finally {
    clearTimeout(timer);
  }
}

/** The python that has torch: `$RESSL_GPU_CHECK_PYTHON`, `python3`, then Debian's. */
export async function findTorchPython(): Promise<{ python: string; cuda: boolean } | null> {
  const candidates = [Deno.env.get("RESSL_GPU_CHECK_PYTHON"), "python3", "/usr/bin/python3"];
  for (const python of candidates) {
    if (!python) continue;
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import torch; print(int(torch.cuda.is_available()))"],
        stdout: "piped",
        stderr: "null",
      }).output();
      if (out.success) {
        return { python, cuda: new TextDecoder().decode(out.stdout).trim() === "1" };
      }
    } catch {
      // not installed
    }
  }
  return null;
}
