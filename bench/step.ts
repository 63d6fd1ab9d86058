/**
 * Benchmark of one ReSSL training step (EMA update, teacher forward on the weak view, student
 * forward/backward on the strong view, relation loss against a K=4096 queue, SGD with momentum and
 * weight decay, enqueue) on random data: our cpu backend (the project's `createTrainStep`, the real
 * training path) and PyTorch 1.13 (`bench/step_torch.py`, same thread count) side by side in one
 * invocation, alternating rounds. Prints median step time, images/s, ours/PyTorch and our achieved
 * GFLOP/s against the cores' measured FMA peak.
 *
 * Usage: deno run --allow-all bench/step.ts [--quick] [--threads N] [--steps N] [--rounds N]
 *        [--only a64|a256|b] [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeSection } from "./report.ts";
import { createCpuBackend } from "../src/backend/cpu/backend.ts";
import { rngKey } from "../src/random/philox.ts";
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
import { TorchPeer } from "./step_peer.ts";
import { stepFlops } from "./step_flops.ts";

/** Measured 2-core AVX-512 FMA peak of this machine (GFLOP/s), see shared/notes/onednn-ffi.md. */
export const PEAK_GFLOPS = 440;

/** One benchmark case. */
interface Case {
  id: string;
  label: string;
  preset: string;
  override: Record<string, unknown>;
  /** Target of the issue: ours at least this many times PyTorch's images/s. */
  target: number;
}

const CASES: Case[] = [
  {
    id: "a64",
    label: "(a) ResNet-18 CIFAR, 3x32x32, batch 64",
    preset: "cifar10",
    override: { batchSize: 64 },
    target: 1.5,
  },
  {
    id: "a256",
    label: "(a) ResNet-18 CIFAR, 3x32x32, batch 256",
    preset: "cifar10",
    override: { batchSize: 256 },
    target: 1.5,
  },
  {
    id: "b",
    label: "(b) ResNet-18 width 16, 1x28x28, batch 256",
    preset: "fashion-mnist",
    override: { batchSize: 256, model: { width: 16 } },
    target: 2,
  },
];

/** Plain BatchNorm without teacher shuffle on both sides (SplitBN is a separate question). */
const COMMON = { ressl: { bnSplits: 1, shuffleTeacher: false } };

/** Result of one case. */
export interface CaseResult {
  label: string;
  batch: number;
  oursMs: number;
  torchMs: number;
  gflop: number;
  target: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Our side: state, step and data on the cpu backend; `run(n)` returns per-step seconds. */
function ours(config: TrainConfig, threads: number) {
  const backend = createCpuBackend({ threads });
  const ctx = createContext(backend);
  const step = createTrainStep(trainStepConfig(config, 1000));
  let state = initTrainState(ctx, config);
  const shape = [config.batchSize, config.model.inChannels, config.image.size, config.image.size];
  const rand = (seed: number) => {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    let s = seed;
    for (let i = 0; i < a.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      a[i] = s / 2 ** 31 - 1;
    }
    return ctx.keep(ctx.fromArray(a, shape));
  };
  const batch = { weak: rand(1), strong: rand(2) };
  let i = 0;
  return {
    run(n: number): { times: number[]; loss: number } {
      const times: number[] = [];
      let loss = NaN;
      for (let k = 0; k < n; k++) {
        const t0 = performance.now();
        const r = ctx.scope(() => step(state, batch, rngKey(i++)));
        loss = r.metrics.loss.item(); // the synchronisation point
        times.push((performance.now() - t0) / 1000);
        r.metrics.loss.dispose();
        disposeTrainState(state);
        state = r.state;
      }
      return { times, loss };
    },
    close() {
      disposeTrainState(state);
      batch.weak.dispose();
      batch.strong.dispose();
      backend.dispose();
    },
  };
}

async function runCase(
  c: Case,
  opts: { threads: number; steps: number; rounds: number; quick: boolean },
): Promise<CaseResult> {
  const override = c.override as { batchSize: number };
  const batchSize = opts.quick ? Math.min(32, override.batchSize) : override.batchSize;
  const config = validateConfig(
    mergeConfig(presetConfig(c.preset), { ...c.override, ...COMMON, batchSize }, "bench"),
  );
  const m = config.model;
  const peer = await TorchPeer.start({
    width: m.width,
    inChannels: m.inChannels,
    size: config.image.size,
    batch: batchSize,
    hidden: config.head.hidden,
    out: config.head.out,
    queue: config.ressl.queueSize,
    m: config.ressl.emaMomentum,
    tauS: config.ressl.tauStudent,
    tauT: config.ressl.tauTeacher,
    lr: config.optim.lr,
    momentum: config.optim.momentum,
    weightDecay: config.optim.weightDecay,
    threads: opts.threads,
    seed: 0,
  });
  const me = ours(config, opts.threads);
  try {
    await peer.run(1); // warm-up: allocator, oneDNN kernels
    me.run(2); // warm-up: primitive creation and JIT, buffer pool
    const t: number[] = [], o: number[] = [];
    for (let r = 0; r < opts.rounds; r++) {
      t.push(...(await peer.run(opts.steps)).times);
      o.push(...me.run(opts.steps).times);
    }
    const gflop = stepFlops({
      width: m.width,
      inChannels: m.inChannels,
      size: config.image.size,
      batch: batchSize,
      hidden: config.head.hidden,
      out: config.head.out,
      queue: config.ressl.queueSize,
    }) / 1e9;
    return {
      label: c.label,
      batch: batchSize,
      oursMs: median(o) * 1000,
      torchMs: median(t) * 1000,
      gflop,
      target: c.target,
    };
  } finally {
    me.close();
    await peer.close();
  }
}

/** The results as a Markdown table. */
export function table(results: CaseResult[], threads: number): string {
  const rows = [
    "| case | ours ms/step | PyTorch ms/step | ours img/s | PyTorch img/s | ours/PyTorch | target | GFLOP/step | ours GFLOP/s (% of peak) |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const r of results) {
    const ours = r.batch / (r.oursMs / 1000), torch = r.batch / (r.torchMs / 1000);
    const gflops = r.gflop / (r.oursMs / 1000);
    rows.push(
      `| ${r.label} | ${r.oursMs.toFixed(0)} | ${r.torchMs.toFixed(0)} | ${ours.toFixed(1)} | ` +
        `${torch.toFixed(1)} | ${(ours / torch).toFixed(2)}x | ${r.target}x | ${
          r.gflop.toFixed(1)
        } | ` +
        `${gflops.toFixed(0)} (${(100 * gflops / PEAK_GFLOPS).toFixed(0)}%) |`,
    );
  }
  rows.push("", `${threads} threads on both sides; peak = ${PEAK_GFLOPS} GFLOP/s (2-core FMA).`);
  return rows.join("\n");
}

/** Entry point (also called by `bench/mod.ts`). */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      steps: { type: "string" },
      rounds: { type: "string" },
      only: { type: "string" },
      write: { type: "string" },
    },
  });
  const threads = values.threads ? Number(values.threads) : navigator.hardwareConcurrency;
  const quick = values.quick ?? false;
  const steps = Number(values.steps ?? (quick ? 1 : 3));
  const rounds = Number(values.rounds ?? (quick ? 1 : 3));
  const only = values.only?.split(",");
  const cases = CASES.filter((c) => !only || only.includes(c.id));
  if (cases.length === 0) {
    throw new RangeError(
      `Cannot run the step benchmark: --only ${values.only} matches no case (a64, a256, b)`,
    );
  }
  const results: CaseResult[] = [];
  for (const c of cases) {
    console.error(`step benchmark: ${c.label}${quick ? " (quick: batch <= 32)" : ""} ...`);
    results.push(await runCase(c, { threads, steps, rounds, quick }));
  }
  const md = table(results, threads);
  console.log(md);
  if (values.write) {
    const cmd = `deno run --allow-all bench/step.ts ${args.join(" ")}`;
    const load = await Deno.readTextFile("/proc/loadavg").catch(() => "n/a");
    const text = [
      "## ReSSL training step: cpu backend (oneDNN) vs PyTorch 1.13",
      "",
      `Produced by \`${cmd}\` on ${new Date().toISOString().slice(0, 10)} ` +
      `(load average before the write: ${load.split(" ").slice(0, 3).join(" ")}).`,
      "Median step time over all measured steps; random data; plain BatchNorm, no teacher shuffle.",
      "",
      md,
      "",
    ].join("\n");
    await writeSection(values.write, "step", text);
  }
}

if (import.meta.main) await main(Deno.args);
