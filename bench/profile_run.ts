/**
 * One profiled training run (the child process of `bench/profile.ts`): the training loop of
 * `src/run/trainer.ts` (Loader with its worker -> upload -> `createTrainStep` in a scope -> next
 * state) on the cpu backend wrapped in a {@link KernelTimer}, or the isolated step on pre-made
 * tensors (`--mode isolated`, as `bench/step.ts`). After `--warmup` steps it measures `--steps`
 * steps: per step the wall time, the time spent waiting for the loader and the time inside backend
 * calls; per (kernel, shape, call site) the time; per thread of the process the CPU seconds
 * (/proc/self/task: main thread, OpenMP worker, loader worker, V8 helpers).
 *
 * Prints `@@begin` and `@@end` around the measured steps (so the parent can attribute oneDNN
 * verbose and V8 --trace-gc lines to them) and `@@result <json>` last.
 *
 * `deno run -A bench/profile_run.ts '<json: {case, mode, data, steps, warmup, workers, threads}>'`
 *
 * @module
 */

import { type CpuBackendOptions, createCpuBackend } from "../src/backend/cpu/backend.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import { memoryDataset } from "../src/data/datasets/dataset.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { Loader } from "../src/data/loader.ts";
import { foldIn, nameId, RandomStream, rngKey } from "../src/random/philox.ts";
import {
  createTrainStep,
  disposeTrainState,
  initTrainState,
  type TrainState,
  trainStepConfig,
} from "../src/ressl/mod.ts";
import { trainViews } from "../src/run/views.ts";
import { type Context, createContext, type Tensor } from "../src/tensor/mod.ts";
import { type KernelRecord, KernelTimer } from "./kernel_timer.ts";
import { caseConfig, STEP_CASES } from "./step_cases.ts";

/** What the parent asks for. */
export interface ProfileRunOptions {
  /** Case id (b, c, a64, a256). */
  case: string;
  /** `loop`: the training loop with the loader; `isolated`: the step on pre-made tensors. */
  mode: "loop" | "isolated";
  /** `fmnist` (the real files, 28x28x1 cases) or `synthetic` (random u8 images). */
  data: "fmnist" | "synthetic";
  steps: number;
  warmup: number;
  workers: number;
  threads: number;
  /**
   * Measure without the kernel timer (no per-call synchronisation, no call-site stack traces on
   * the first measured step): the step as the trainer runs it; `records` stay empty.
   */
  plain?: boolean;
}

/** CPU time of one thread over the measured window. */
export interface ThreadCpu {
  tid: number;
  comm: string;
  /** main (JS + OpenMP master), openmp, loader worker, v8 helper, runtime. */
  role: string;
  cpuSeconds: number;
  voluntarySwitches: number;
  involuntarySwitches: number;
}

/** What the child prints after `@@result`. */
export interface ProfileRunResult {
  options: ProfileRunOptions;
  /** Per measured step: wall, loader wait and backend-call milliseconds. */
  steps: StepTiming[];
  records: KernelRecord[];
  threads: ThreadCpu[];
  windowSeconds: number;
  backend: Record<string, string>;
}

type ThreadSample = Map<number, { comm: string; ticks: number; vol: number; invol: number }>;

function sampleThreads(): ThreadSample {
  const out: ThreadSample = new Map();
  for (const e of Deno.readDirSync("/proc/self/task")) {
    try {
      const dir = `/proc/self/task/${e.name}`;
      const stat = Deno.readTextFileSync(`${dir}/stat`);
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const status = Deno.readTextFileSync(`${dir}/status`);
      const num = (k: string) => Number(status.match(new RegExp(`${k}:\\s+(\\d+)`))?.[1] ?? 0);
      out.set(Number(e.name), {
        comm: Deno.readTextFileSync(`${dir}/comm`).trim(),
        ticks: Number(f[11]) + Number(f[12]), // utime + stime (fields 14, 15)
        vol: num("voluntary_ctxt_switches"),
        invol: num("nonvoluntary_ctxt_switches"),
      });
    } catch {
      // the thread exited between the listing and the read
    }
  }
  return out;
}

function role(tid: number, comm: string): string {
  if (tid === Deno.pid) return "main thread (JS, FFI calls, OpenMP master)";
  if (comm.startsWith("worker-")) return "loader worker (augmentation)";
  if (comm === "deno") return "OpenMP worker thread";
  if (comm.startsWith("V8")) return "V8 helper (GC, compiler)";
  return "Deno runtime (tokio)";
}

function threadCpu(a: ThreadSample, b: ThreadSample): ThreadCpu[] {
  const hz = 100; // USER_HZ on Linux
  const out: ThreadCpu[] = [];
  for (const [tid, s] of b) {
    const p = a.get(tid) ?? { ticks: 0, vol: 0, invol: 0 };
    const cpu = (s.ticks - p.ticks) / hz;
    out.push({
      tid,
      comm: s.comm,
      role: role(tid, s.comm),
      cpuSeconds: cpu,
      voluntarySwitches: s.vol - p.vol,
      involuntarySwitches: s.invol - p.invol,
    });
  }
  return out.filter((t) => t.cpuSeconds > 0 || t.voluntarySwitches > 0);
}

async function dataset(
  o: { data: ProfileRunOptions["data"] },
  size: number,
  channels: number,
  n: number,
) {
  if (o.data === "fmnist") {
    return firstImages(
      await openDataset("fashion-mnist", { split: "pretrain", imageSize: size }),
      n,
    );
  }
  const rng = new RandomStream(rngKey(7));
  const images = Uint8Array.from({ length: n * size * size * channels }, () => rng.int(256));
  return memoryDataset({ name: "synthetic", images, height: size, width: size, channels });
}

function randomTensor(ctx: Context, shape: number[], seed: number): Tensor {
  const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
  let s = seed;
  for (let i = 0; i < a.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 31 - 1;
  }
  return ctx.keep(ctx.fromArray(a, shape));
}

/** One measured step: wall, loader wait and backend-call milliseconds. */
export interface StepTiming {
  wallMs: number;
  waitMs: number;
  kernelMs: number;
}

/** A warm training loop (or isolated step) that runs steps on demand. */
export interface ProfileSession {
  /** The kernel timer around the session's backend. */
  timer: KernelTimer;
  /** Runs `n` steps; `record` turns the kernel timer on (`label`: capture call sites). */
  run(n: number, opts?: { record?: boolean; label?: boolean }): Promise<StepTiming[]>;
  /** Versions of the backend. */
  versions: Record<string, string>;
  close(): Promise<void>;
}

/** What a session may change beyond {@link ProfileRunOptions}. */
export interface SessionExtras {
  /** Options of the cpu backend (its `threads` comes from the run options). */
  backendOptions?: CpuBackendOptions;
  /** The kernel timer's clock in ms (default: wall time). */
  clock?: () => number;
}

/** Creates a session for `o` (its `steps`/`warmup` are not used: call `run`). */
export async function createSession(
  o: Omit<ProfileRunOptions, "steps" | "warmup">,
  maxSteps: number,
  extra: SessionExtras = {},
): Promise<ProfileSession> {
  const c = STEP_CASES.find((x) => x.id === o.case);
  if (!c) throw new RangeError(`Cannot profile: unknown case '${o.case}'`);
  const config = caseConfig(c);
  const real = createCpuBackend({ ...extra.backendOptions, threads: o.threads });
  const timer = new KernelTimer(real, extra.clock);
  const ctx = createContext(timer.backend);
  const [ch, s] = [config.model.inChannels, config.image.size];
  const ds = o.mode === "loop" ? await dataset(o, s, ch, c.batch * (maxSteps + 1)) : undefined;
  const views = trainViews(config);
  const loader = ds
    ? new Loader({
      dataset: ds,
      weak: views.weak,
      strong: views.strong,
      key: rngKey(config.seed),
      batchSize: config.batchSize,
      workers: o.workers,
    })
    : undefined;
  const step = createTrainStep(trainStepConfig(config, loader?.batchesPerEpoch() ?? 1000));
  let state: TrainState = initTrainState(ctx, config);
  const shape = [c.batch, ch, s, s];
  const premade = loader
    ? undefined
    : { weak: randomTensor(ctx, shape, 1), strong: randomTensor(ctx, shape, 2) };
  const iterator = loader?.epoch(0)[Symbol.asyncIterator]();
  let done = 0;
  return {
    timer,
    versions: { ...real.versions },
    async run(n, opts = {}) {
      const out: StepTiming[] = [];
      for (let i = 0; i < n; i++) {
        if (++done > maxSteps) {
          throw new RangeError(`Cannot profile: the session was sized for ${maxSteps} steps`);
        }
        const start = performance.now();
        let host: { weak: Float32Array; strong: Float32Array } | undefined;
        if (iterator) {
          const r = await iterator.next();
          if (r.done) throw new Error("Cannot profile: the loader ran out of batches");
          host = r.value;
        }
        const waited = performance.now() - start;
        const k0 = timer.totalMs();
        if (opts.record) timer.start({ labelSites: opts.label && i === 0 });
        const current = state;
        const next = ctx.scope(() => {
          const batch = host
            ? { weak: ctx.fromArray(host.weak, shape), strong: ctx.fromArray(host.strong, shape) }
            : premade!;
          return step(current, batch, foldIn(rngKey(config.seed), nameId("step"), current.step));
        });
        next.metrics.loss.item(); // the synchronisation point (cpu: already done)
        next.metrics.loss.dispose();
        timer.stop();
        disposeTrainState(state);
        state = next.state;
        out.push({
          wallMs: performance.now() - start,
          waitMs: waited,
          kernelMs: timer.totalMs() - k0,
        });
      }
      return out;
    },
    async close() {
      await iterator?.return?.(undefined);
      if (loader) await loader[Symbol.asyncDispose]();
      disposeTrainState(state);
      premade?.weak.dispose();
      premade?.strong.dispose();
      ds?.close();
      real.dispose();
    },
  };
}

/** Runs the profile; see the module doc. */
export async function profileRun(o: ProfileRunOptions): Promise<ProfileRunResult> {
  const session = await createSession(o, o.warmup + o.steps);
  try {
    await session.run(o.warmup);
    console.log(`@@begin ${performance.now().toFixed(0)}`);
    const before = sampleThreads();
    const t0 = performance.now();
    const steps = await session.run(o.steps, { record: !o.plain, label: !o.plain });
    const windowSeconds = (performance.now() - t0) / 1000;
    const after = sampleThreads();
    console.log(`@@end ${performance.now().toFixed(0)}`);
    return {
      options: o,
      steps,
      records: session.timer.records(),
      threads: threadCpu(before, after),
      windowSeconds,
      backend: session.versions,
    };
  } finally {
    await session.close();
  }
}

if (import.meta.main) {
  const o = JSON.parse(Deno.args[0] ?? "{}") as ProfileRunOptions;
  const r = await profileRun(o);
  const line = `@@result ${JSON.stringify(r)}`;
  console.log(line);
  // Also on stderr, which V8's --trace-gc lines (written to stdout) cannot split.
  console.error(line);
}
