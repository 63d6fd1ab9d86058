/**
 * Benchmark of one ReSSL training step (EMA update, teacher forward on the weak view, student
 * forward/backward on the strong view, relation loss against a K=4096 queue, SGD with momentum and
 * weight decay, enqueue) on random pre-made tensors: our cpu backend (the project's
 * `createTrainStep`) against the newest PyTorch the machine installs (torch 2.x in
 * `.cache/torch-venv`, eager NCHW and channels_last; the faster of the two is "the peer") and
 * Debian's PyTorch 1.13, all alive at once and alternating in rounds inside one invocation so that
 * the machine's load hits every side alike. Prints median step times, the speed-up of ours over
 * each peer with its spread over the rounds, and our achieved GFLOP/s against the FMA peak.
 *
 * Usage: deno run --allow-all bench/step.ts [--quick] [--threads N] [--steps N] [--rounds N]
 *        [--only b,c,a64,a256] [--peers t2,t2cl,t113] [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { writeSection } from "./report.ts";
import { createCpuBackend } from "../src/backend/cpu/backend.ts";
import { rngKey } from "../src/random/philox.ts";
import {
  createTrainStep,
  disposeTrainState,
  initTrainState,
  type TrainConfig,
  trainStepConfig,
} from "../src/ressl/mod.ts";
import { createContext } from "../src/tensor/mod.ts";
import { TorchPeer } from "./step_peer.ts";
import { stepFlops } from "./step_flops.ts";
import { caseConfig, selectCases, type StepCase, torchStepConfig } from "./step_cases.ts";
import { type PeerSpec, resolvePeers } from "./peers.ts";
import { type SideTimes, stepTable } from "./step_table.ts";

/** Measured 2-core AVX-512 FMA peak of this machine (GFLOP/s), see shared/notes/onednn-ffi.md. */
export const PEAK_GFLOPS = 440;

/** Result of one case: per side (ours and each peer id), the step times of each round. */
export interface CaseResult {
  /** The case. */
  case: StepCase;
  /** Batch size actually run (`--quick` shrinks it). */
  batch: number;
  /** FLOPs of one step (GFLOP). */
  gflop: number;
  /** `ours` and each peer's id -> seconds per step, one array per round. */
  sides: Record<string, SideTimes>;
  /** The same for process CPU seconds (all threads) per step. */
  cpu: Record<string, SideTimes>;
}

/** Our side: state, step and data on the cpu backend; `run(n)` returns per-step seconds. */
export function oursStep(config: TrainConfig, threads: number) {
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
    backend,
    run(n: number): { times: number[]; cpu: number[]; loss: number } {
      const times: number[] = [], cpu: number[] = [];
      let loss = NaN;
      for (let k = 0; k < n; k++) {
        const t0 = performance.now(), c0 = process.cpuUsage();
        const r = ctx.scope(() => step(state, batch, rngKey(i++)));
        loss = r.metrics.loss.item(); // the synchronisation point
        times.push((performance.now() - t0) / 1000);
        const c = process.cpuUsage(c0);
        cpu.push((c.user + c.system) / 1e6);
        r.metrics.loss.dispose();
        disposeTrainState(state);
        state = r.state;
      }
      return { times, cpu, loss };
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
  c: StepCase,
  peers: PeerSpec[],
  opts: { threads: number; steps: number; rounds: number; quick: boolean },
): Promise<CaseResult> {
  const batch = opts.quick ? Math.min(32, c.batch) : c.batch;
  const config = caseConfig(c, batch);
  const base = torchStepConfig(config, opts.threads);
  const started: [PeerSpec, TorchPeer][] = [];
  const me = oursStep(config, opts.threads);
  try {
    for (const p of peers) {
      started.push([p, await TorchPeer.start({ ...base, channelsLast: p.channelsLast }, p.python)]);
    }
    const sides: Record<string, SideTimes> = { ours: [] };
    const cpu: Record<string, SideTimes> = { ours: [] };
    for (const [p, peer] of started) {
      sides[p.id] = [];
      cpu[p.id] = [];
      await peer.run(1); // warm-up: allocator, oneDNN kernels
    }
    me.run(2); // warm-up: primitive creation and JIT, buffer pool
    type Runner = (n: number) => Promise<{ times: number[]; cpu: number[] }>;
    const runners: [string, Runner][] = [
      ["ours", (n) => Promise.resolve(me.run(n))],
      ...started.map(([p, peer]) => [p.id, (n: number) => peer.run(n)] as [string, Runner]),
    ];
    for (let r = 0; r < opts.rounds; r++) {
      // Rotate who goes first so that a load change does not always hit the same side.
      for (let j = 0; j < runners.length; j++) {
        const [id, run] = runners[(j + r) % runners.length];
        const t = await run(opts.steps);
        sides[id].push(t.times);
        cpu[id].push(t.cpu);
      }
    }
    const m = config.model;
    const gflop = stepFlops({
      width: m.width,
      inChannels: m.inChannels,
      size: config.image.size,
      batch,
      hidden: config.head.hidden,
      out: config.head.out,
      queue: config.ressl.queueSize,
    }) / 1e9;
    return { case: c, batch, gflop, sides, cpu };
  } finally {
    me.close();
    for (const [, peer] of started) await peer.close();
  }
}

/** Entry point (also called by `bench/mod.ts`); returns the results for the summary. */
export async function main(args: string[]): Promise<CaseResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      steps: { type: "string" },
      rounds: { type: "string" },
      only: { type: "string" },
      peers: { type: "string" },
      write: { type: "string" },
    },
  });
  const threads = values.threads ? Number(values.threads) : 2;
  const quick = values.quick ?? false;
  const steps = Number(values.steps ?? (quick ? 1 : 2));
  const rounds = Number(values.rounds ?? (quick ? 1 : 3));
  for (const [flag, v] of [["--threads", threads], ["--steps", steps], ["--rounds", rounds]]) {
    if (!Number.isInteger(v) || (v as number) < 1) {
      throw new RangeError(`Cannot run the step benchmark: ${flag} must be an integer >= 1`);
    }
  }
  const cases = selectCases(values.only);
  const { peers, notes } = await resolvePeers(values.peers);
  for (const n of notes) console.error(`step benchmark: ${n}`);
  const results: CaseResult[] = [];
  for (const c of cases) {
    console.error(`step benchmark: ${c.label}${quick ? " (quick: batch <= 32)" : ""} ...`);
    results.push(await runCase(c, peers, { threads, steps, rounds, quick }));
  }
  const md = stepTable(results, peers, threads, PEAK_GFLOPS);
  console.log(md);
  if (values.write) {
    const cmd = `deno run --allow-all bench/step.ts ${args.join(" ")}`.trim();
    const load = await Deno.readTextFile("/proc/loadavg").catch(() => "n/a");
    const text = [
      "## ReSSL training step: cpu backend (oneDNN 2.6.3) vs PyTorch 2.x and 1.13",
      "",
      `Produced by \`${cmd}\` on ${new Date().toISOString().slice(0, 10)} ` +
      `(load average before the write: ${load.split(" ").slice(0, 3).join(" ")}).`,
      `Median step time over all measured steps (${rounds} rounds of ${steps} steps per side, ` +
      "alternating); random pre-made tensors; plain BatchNorm, no teacher shuffle.",
      "",
      md,
      "",
    ].join("\n");
    await writeSection(values.write, "step", text);
  }
  return results;
}

if (import.meta.main) await main(Deno.args);
