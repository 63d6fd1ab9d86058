/**
 * A load-immune profile of our isolated training step: the cpu backend on ONE OpenMP thread, every
 * backend call timed by the main thread's CPU clock (`thread_clock.ts`: oneDNN runs on the calling
 * thread, so preemption by other processes is not counted), per kernel class and per (kernel,
 * shape). Several backend variants (`--variants`: options of `createCpuBackend`, e.g. the
 * convolution algorithm) run as warm sessions in one process, alternating step by step, so their
 * columns compare directly. What this does not show: the 2-thread parallel efficiency and the cost
 * of OpenMP barriers under load (see `bench/latency.ts`, `bench/step.ts`).
 *
 * Usage: deno run -A bench/cpu_profile.ts [--case c] [--steps 3] [--variants default,direct]
 *        [--top 25] [--threads 1]
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { CpuBackendOptions } from "../src/backend/cpu/backend.ts";
import { createSession, type ProfileSession } from "./profile_run.ts";
import { kernelClass } from "./kernel_timer.ts";
import { threadCpuMs } from "./thread_clock.ts";
import { median } from "./step_cases.ts";

/** Backend variants `--variants` may name. */
export const CPU_VARIANTS: Record<string, CpuBackendOptions> = {
  default: {},
  direct: { tuning: { winograd: false } },
  bn2: { tuning: { parallelBatchNorm: true } },
  allpar: { tuning: { parallelMinBytes: 0, parallelBatchNorm: true } },
  /** Without the own kernels (libressl_cpu.so): batch norm on oneDNN, SGD/EMA/sum in TypeScript. */
  noown: { tuning: { nativeKernels: false } },
  noown2: { tuning: { nativeKernels: false, parallelBatchNorm: true } },
};

/** Entry point: prints the tables and returns them. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      case: { type: "string", default: "c" },
      steps: { type: "string", default: "3" },
      warmup: { type: "string", default: "2" },
      variants: { type: "string", default: "default" },
      top: { type: "string", default: "25" },
      threads: { type: "string", default: "1" },
    },
  });
  const steps = Number(values.steps), warmup = Number(values.warmup);
  const threads = Number(values.threads), top = Number(values.top);
  const ids = values.variants!.split(",");
  for (const id of ids) {
    if (!(id in CPU_VARIANTS)) {
      throw new RangeError(
        `Cannot profile: unknown variant '${id}' (${Object.keys(CPU_VARIANTS).join(", ")})`,
      );
    }
  }
  const clock = threads === 1 ? threadCpuMs : () => performance.now();
  const sessions: ProfileSession[] = [];
  const stepMs: number[][] = ids.map(() => []);
  try {
    for (const id of ids) {
      const s = await createSession(
        { case: values.case!, mode: "isolated", data: "synthetic", workers: 0, threads },
        warmup + steps,
        { backendOptions: CPU_VARIANTS[id], clock },
      );
      await s.run(warmup);
      sessions.push(s);
    }
    for (let k = 0; k < steps; k++) {
      for (let j = 0; j < ids.length; j++) {
        const i = (j + k) % ids.length;
        const t0 = clock();
        await sessions[i].run(1, { record: true, label: k === 0 });
        stepMs[i].push(clock() - t0);
        console.error(`step ${k + 1} ${ids[i]}: ${stepMs[i].at(-1)!.toFixed(0)} ms`);
      }
    }
    const md = tables(ids, sessions, stepMs, steps, top, threads);
    console.log(md);
    return md;
  } finally {
    for (const s of sessions) await s.close();
  }
}

function tables(
  ids: string[],
  sessions: ProfileSession[],
  stepMs: number[][],
  steps: number,
  top: number,
  threads: number,
): string {
  const unit = threads === 1 ? "thread-CPU ms/step" : "wall ms/step";
  const classes = sessions.map((s) => {
    const m = new Map<string, number>();
    for (const r of s.timer.records()) {
      const c = kernelClass(r.kernel, r.site);
      m.set(c, (m.get(c) ?? 0) + r.ms / steps);
    }
    return m;
  });
  const names = [...new Set(classes.flatMap((m) => [...m.keys()]))].sort((a, b) =>
    (classes[0].get(b) ?? 0) - (classes[0].get(a) ?? 0)
  );
  const out = [
    `| class (${unit}, ${threads} thread) | ${ids.join(" | ")} |`,
    `|---|${ids.map(() => "---:").join("|")}|`,
    `| **step, median** | ${stepMs.map((t) => median(t).toFixed(1)).join(" | ")} |`,
  ];
  for (const c of names) {
    out.push(`| ${c} | ${classes.map((m) => (m.get(c) ?? 0).toFixed(1)).join(" | ")} |`);
  }
  const kernelTotal = classes.map((m) => [...m.values()].reduce((a, b) => a + b, 0));
  out.push(
    `| between kernels | ${
      stepMs.map((t, i) => (t.reduce((a, b) => a + b, 0) / t.length - kernelTotal[i]).toFixed(1))
        .join(" | ")
    } |`,
  );
  for (let i = 0; i < ids.length; i++) {
    out.push("", `Slowest calls, ${ids[i]}:`, "");
    out.push(
      "| kernel | shape | site | calls/step | ms/step | µs/call |",
      "|---|---|---|---:|---:|---:|",
    );
    const byKey = new Map<
      string,
      { kernel: string; shape: string; site: string; calls: number; ms: number }
    >();
    for (const r of sessions[i].timer.records()) {
      const k = `${r.kernel}|${r.shape}|${r.site}`;
      byKey.set(k, r);
    }
    for (const r of [...byKey.values()].sort((a, b) => b.ms - a.ms).slice(0, top)) {
      out.push(
        `| ${r.kernel} | ${r.shape} | ${r.site} | ${(r.calls / steps).toFixed(0)} | ${
          (r.ms / steps).toFixed(1)
        } | ${(1000 * r.ms / r.calls).toFixed(0)} |`,
      );
    }
  }
  return out.join("\n");
}

if (import.meta.main) await main(Deno.args);
