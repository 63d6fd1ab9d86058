/**
 * Where the training path's time per step goes beyond the isolated step (issue 15, phase 2): the
 * real `runTraining` of `src/run/trainer.ts` (Fashion-MNIST subset, loader worker, metrics
 * flusher, progress, checkpoint at the end) against the isolated step of `bench/profile_run.ts`,
 * each in a fresh child process, alternating in rounds. In both, every backend call goes through a
 * {@link KernelTimer}; step boundaries are the uploads of the weak view (the trainer's first call of
 * a step), so a "step" is one whole period of the loop. Per step: wall ms, process CPU ms (all
 * threads, `process.cpuUsage`), main-thread CPU ms, and the kernel classes.
 *
 * With `--threads 1` every oneDNN primitive runs on the main thread and the kernel timer reads the
 * main thread's CPU clock, so the columns are load-immune: main-thread CPU minus kernel CPU is the
 * TypeScript/FFI/loader-message work of the loop, and process CPU minus main-thread CPU is the
 * loader worker and V8's helpers.
 *
 * `--modes` picks the sides (default `train,isolated`; `train-log1` is the trainer with
 * `logEvery` 1, a flush per step).
 *
 * Usage: deno run -A bench/train_probe.ts [--case c] [--rounds 2] [--steps 6] [--threads 1]
 *        [--workers 1] [--modes train,train-log1,isolated]
 *
 * @module
 */

import { parseArgs } from "node:util";
import process from "node:process";
import { createCpuBackend } from "../src/backend/cpu/backend.ts";
import type { Backend } from "../src/backend/backend.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { Progress } from "../src/io/progress.ts";
import { runTraining } from "../src/run/trainer.ts";
import { createContext } from "../src/tensor/mod.ts";
import { kernelClass, KernelTimer } from "./kernel_timer.ts";
import { createSession } from "./profile_run.ts";
import { caseConfig, median, STEP_CASES } from "./step_cases.ts";
import { threadCpuMs } from "./thread_clock.ts";

/** What one child measures. */
interface ProbeOptions {
  case: string;
  /** `train`: runTraining as configured; `train-log1`: with logEvery 1; `isolated`. */
  mode: "train" | "train-log1" | "isolated";
  steps: number;
  warmup: number;
  threads: number;
  workers: number;
}

/** Per measured step. */
interface ProbeStep {
  wallMs: number;
  processCpuMs: number;
  mainCpuMs: number;
  kernelMs: number;
}

interface ProbeResult {
  steps: ProbeStep[];
  /** Kernel class -> ms per step. */
  classes: Record<string, number>;
}

/** Marks: wall, process CPU and main-thread CPU at a step boundary. */
interface Mark {
  wall: number;
  proc: number;
  main: number;
  kernel: number;
}

function mark(timer: KernelTimer): Mark {
  const u = process.cpuUsage();
  return {
    wall: performance.now(),
    proc: (u.user + u.system) / 1000,
    main: threadCpuMs(),
    kernel: timer.totalMs(),
  };
}

function diffs(marks: Mark[]): ProbeStep[] {
  const out: ProbeStep[] = [];
  for (let i = 1; i < marks.length; i++) {
    const [a, b] = [marks[i - 1], marks[i]];
    out.push({
      wallMs: b.wall - a.wall,
      processCpuMs: b.proc - a.proc,
      mainCpuMs: b.main - a.main,
      kernelMs: b.kernel - a.kernel,
    });
  }
  return out;
}

function classes(timer: KernelTimer, steps: number): Record<string, number> {
  const m: Record<string, number> = {};
  for (const r of timer.records()) {
    const c = kernelClass(r.kernel, r.site);
    m[c] = (m[c] ?? 0) + r.ms / steps;
  }
  return m;
}

/** The real trainer: marks at each upload of the weak view. */
async function probeTrain(o: ProbeOptions): Promise<ProbeResult> {
  const c = STEP_CASES.find((x) => x.id === o.case)!;
  const config = o.mode === "train-log1" ? { ...caseConfig(c), logEvery: 1 } : caseConfig(c);
  const clock = o.threads === 1 ? threadCpuMs : undefined;
  const real = createCpuBackend({ threads: o.threads });
  const timer = new KernelTimer(real, clock);
  const viewLength = c.batch * config.model.inChannels * config.image.size ** 2;
  const marks: Mark[] = [];
  let uploads = 0;
  const total = o.warmup + o.steps;
  const marked = new Proxy(timer.backend, {
    get: (t, prop) => {
      const v = Reflect.get(t, prop, t);
      if (prop !== "upload" || typeof v !== "function") return v;
      return (...args: unknown[]) => {
        const data = args[1] as { length: number };
        if (data.length === viewLength && uploads++ % 2 === 0) {
          const step = uploads >> 1; // 0-based index of the step starting now
          if (step === o.warmup) timer.start({ labelSites: true });
          else if (step === o.warmup + 1) timer.start(); // labels captured on one step
          if (step >= o.warmup && step <= total) marks.push(mark(timer));
          if (step === total) timer.stop(); // the step that closes the last measured period
        }
        return v.apply(t, args);
      };
    },
  }) as Backend;
  const ctx = createContext(marked);
  const fm = await openDataset("fashion-mnist", { split: "pretrain", imageSize: 28 });
  const dataset = firstImages(fm, c.batch * (total + 2));
  const out = await Deno.makeTempDir({ prefix: "train_probe_" });
  try {
    await runTraining({
      ctx,
      config,
      dataset,
      outDir: out,
      maxSteps: total + 1, // the last step closes the last measured period
      workers: o.workers,
      progress: new Progress({ interactive: false }),
    });
  } finally {
    await Deno.remove(out, { recursive: true }).catch(() => {});
    dataset.close();
    real.dispose();
  }
  timer.stop();
  return { steps: diffs(marks), classes: classes(timer, o.steps) };
}

/** The isolated step of `profile_run.ts`, marked the same way. */
async function probeIsolated(o: ProbeOptions): Promise<ProbeResult> {
  const clock = o.threads === 1 ? threadCpuMs : undefined;
  const s = await createSession(
    { case: o.case, mode: "isolated", data: "synthetic", workers: 0, threads: o.threads },
    o.warmup + o.steps,
    { clock },
  );
  try {
    await s.run(o.warmup);
    const marks = [mark(s.timer)];
    await s.run(1, { record: true, label: true });
    marks.push(mark(s.timer));
    for (let i = 1; i < o.steps; i++) {
      await s.run(1, { record: true });
      marks.push(mark(s.timer));
    }
    return { steps: diffs(marks), classes: classes(s.timer, o.steps) };
  } finally {
    await s.close();
  }
}

async function child(o: ProbeOptions): Promise<ProbeResult> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", new URL(import.meta.url).pathname, "--child", JSON.stringify(o)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout);
  const line = text.split("\n").find((l) => l.startsWith("@@result "));
  if (!r.success || !line) {
    throw new Error(
      `Cannot probe ${o.mode} (case ${o.case}): ${new TextDecoder().decode(r.stderr).slice(-800)}`,
    );
  }
  return JSON.parse(line.slice("@@result ".length));
}

/** Entry point: alternates the two modes in rounds and prints a markdown table. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      case: { type: "string", default: "c" },
      rounds: { type: "string", default: "2" },
      steps: { type: "string", default: "6" },
      threads: { type: "string", default: "1" },
      workers: { type: "string", default: "1" },
      modes: { type: "string", default: "train,isolated" },
      child: { type: "string" },
    },
  });
  if (values.child) {
    const o = JSON.parse(values.child) as ProbeOptions;
    const r = o.mode === "isolated" ? await probeIsolated(o) : await probeTrain(o);
    console.log(`@@result ${JSON.stringify(r)}`);
    return "";
  }
  const rounds = Number(values.rounds), steps = Number(values.steps);
  const threads = Number(values.threads), workers = Number(values.workers);
  for (const [k, v] of Object.entries({ rounds, steps, threads })) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`Cannot run the probe: --${k} must be an integer >= 1`);
    }
  }
  if (!STEP_CASES.some((c) => c.id === values.case)) {
    throw new RangeError(`Cannot run the probe: unknown --case '${values.case}'`);
  }
  const modes = values.modes!.split(",") as ProbeOptions["mode"][];
  const results = new Map<string, ProbeResult[]>(modes.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (let j = 0; j < modes.length; j++) {
      const mode = modes[(j + r) % modes.length];
      const res = await child({ case: values.case!, mode, steps, warmup: 2, threads, workers });
      results.get(mode)!.push(res);
      console.error(
        `probe round ${r + 1}: ${mode} wall ${
          res.steps.map((s) => s.wallMs.toFixed(0)).join(", ")
        } ms`,
      );
    }
  }
  const md = table(modes, results);
  console.log(md);
  return md;
}

function table(modes: readonly string[], results: Map<string, ProbeResult[]>): string {
  const med = (m: string, f: (s: ProbeStep) => number) =>
    median(results.get(m)!.flatMap((r) => r.steps.map(f)));
  const rows = [`| per step (median; classes: mean) | ${modes.join(" | ")} | difference |`];
  rows.push(`|---|${modes.map(() => "---:").join("|")}|---:|`);
  const row = (label: string, vals: number[]) =>
    rows.push(
      `| ${label} | ${vals.map((v) => v.toFixed(1)).join(" | ")} | ${
        (vals[0] - vals[1]).toFixed(1)
      } |`,
    );
  row("wall ms", modes.map((m) => med(m, (s) => s.wallMs)));
  row("process CPU ms", modes.map((m) => med(m, (s) => s.processCpuMs)));
  row("main-thread CPU ms", modes.map((m) => med(m, (s) => s.mainCpuMs)));
  row("timed backend calls ms", modes.map((m) => med(m, (s) => s.kernelMs)));
  row(
    "main thread outside backend calls",
    modes.map((m) => med(m, (s) => s.mainCpuMs - s.kernelMs)),
  );
  row("other threads' CPU ms", modes.map((m) => med(m, (s) => s.processCpuMs - s.mainCpuMs)));
  const mean = (m: string, c: string) => {
    const rs = results.get(m)!;
    return rs.reduce((a, r) => a + (r.classes[c] ?? 0), 0) / rs.length;
  };
  const all = [
    ...new Set(modes.flatMap((m) => results.get(m)!.flatMap((r) => Object.keys(r.classes)))),
  ];
  all.sort((a, b) => mean(modes[1], b) - mean(modes[1], a));
  for (const c of all) row(c, modes.map((m) => mean(m, c)));
  return rows.join("\n");
}

if (import.meta.main) await main(Deno.args);
