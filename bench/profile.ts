/**
 * Profile of the ReSSL step on the cpu backend, per kernel class and per layer, against PyTorch:
 * - our training loop (loader worker, upload, step) and our isolated step, each in a child process
 *   with every backend call timed by a {@link KernelTimer} (the `Backend` wrapped in a Proxy),
 *   V8's `--trace-gc` for GC pauses and /proc for the CPU time of each thread;
 * - our isolated step again under `ONEDNN_VERBOSE=1` (per-primitive implementation and time);
 * - PyTorch 2.x's step (NCHW and channels_last) under `ONEDNN_VERBOSE=1`, matched to ours by conv
 *   problem, and under torch.profiler (per aten operator).
 * Writes the tables to stdout and, with `--write`, into a `profile` section of docs/benchmarks.md.
 *
 * Usage: deno run -A bench/profile.ts [--only b,c,a64] [--steps N] [--workers N] [--no-peers]
 *        [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeSection } from "./report.ts";
import { caseConfig, selectCases, type StepCase, torchStepConfig } from "./step_cases.ts";
import { resolvePeers } from "./peers.ts";
import { type ChildOutput, oursChild, torchChild, type TorchProfile } from "./profile_children.ts";
import type { ProfileRunOptions, ProfileRunResult } from "./profile_run.ts";
import {
  convTable,
  primitiveTable,
  reorderTable,
  stepBreakdown,
  threadTable,
  topKernels,
  torchOpsTable,
} from "./profile_tables.ts";

const PEAK_GFLOPS = 440;

async function profileCase(
  c: StepCase,
  o: { steps: number; workers: number; peers: boolean },
): Promise<string> {
  const base: ProfileRunOptions = {
    case: c.id,
    mode: "loop",
    data: c.preset === "fashion-mnist" ? "fmnist" : "synthetic",
    steps: o.steps,
    warmup: 2,
    workers: o.workers,
    threads: 2,
  };
  const log = (s: string) => console.error(`profile ${c.id}: ${s}`);
  log("training loop (kernel timer, --trace-gc) ...");
  const loop = await oursChild(base, { gc: true });
  log("isolated step (kernel timer, --trace-gc) ...");
  const iso = await oursChild({ ...base, mode: "isolated" }, { gc: true });
  log("isolated step under ONEDNN_VERBOSE=1 ...");
  const verbose = await oursChild({ ...base, mode: "isolated", steps: 1 }, { verbose: true });
  const peerVerbose: [string, ChildOutput<TorchProfile>][] = [];
  const peerOps: [string, ChildOutput<TorchProfile>][] = [];
  if (o.peers) {
    const { peers } = await resolvePeers("t2,t2cl");
    const cfg = torchStepConfig(caseConfig(c), 2);
    for (const p of peers) {
      log(`${p.label} under ONEDNN_VERBOSE=1 and torch.profiler ...`);
      const cl = { ...cfg, channelsLast: p.channelsLast };
      peerVerbose.push([p.label, await torchChild(p.python, cl, 2, 1, true)]);
      peerOps.push([p.label, await torchChild(p.python, cl, 2, 2, false)]);
    }
  }
  const steps = (r: ProfileRunResult) => r.steps.length;
  const out = [
    `### ${c.label}`,
    "",
    `Where one step goes (backend calls timed by the Proxy, synchronised; ${
      steps(loop.result)
    } measured steps after 2 warm-up steps; training loop = Fashion-MNIST/synthetic images through ` +
    `the Loader with ${o.workers} worker(s), as \`deno task train\`):`,
    "",
    stepBreakdown(loop, iso),
    "",
    "CPU time per thread of the training loop (/proc/self/task; 2 cores = 200% of wall):",
    "",
    threadTable(loop.result),
    "",
    "Convolutions by shape and direction (oneDNN verbose times of one step; the conv problems of " +
    "PyTorch's step matched by their oneDNN problem descriptor; GFLOP/s = 2 x MACs / time):",
    "",
    convTable(verbose, peerVerbose, PEAK_GFLOPS),
    "",
    "Other oneDNN primitives per step (verbose; gemm runs as dnnl_sgemm and is not logged):",
    "",
    primitiveTable(verbose, peerVerbose),
    "",
    "Our reorders per step:",
    "",
    reorderTable(verbose),
    "",
    "Our slowest backend calls in the training loop (kernel timer):",
    "",
    topKernels(loop.result),
    "",
  ];
  for (const [label, p] of peerOps) {
    const t = p.result.times;
    out.push(
      `${label}: torch.profiler, self CPU time per aten operator (step ${
        (1000 * t.reduce((a, b) => a + b, 0) / t.length).toFixed(0)
      } ms under the profiler):`,
      "",
      torchOpsTable(p.result),
      "",
    );
  }
  return out.join("\n");
}

/** Entry point. */
export async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      steps: { type: "string", default: "3" },
      workers: { type: "string", default: "1" },
      "no-peers": { type: "boolean", default: false },
      write: { type: "string" },
    },
  });
  const steps = Number(values.steps), workers = Number(values.workers);
  if (!Number.isInteger(steps) || steps < 1 || !Number.isInteger(workers) || workers < 0) {
    throw new RangeError("Cannot profile: --steps must be >= 1 and --workers >= 0 (integers)");
  }
  const cases = selectCases(values.only);
  const parts: string[] = [];
  for (const c of cases) {
    parts.push(await profileCase(c, { steps, workers, peers: !values["no-peers"] }));
    console.log(parts.at(-1));
  }
  if (values.write) {
    const load = await Deno.readTextFile("/proc/loadavg").catch(() => "n/a");
    await writeSection(
      values.write,
      "profile",
      [
        "## Profile of the step (per kernel class, per conv shape, threads, PyTorch's primitives)",
        "",
        `Produced by \`deno run --allow-all bench/profile.ts ${args.join(" ")}\` on ${
          new Date().toISOString().slice(0, 10)
        } (load average before the write: ${load.split(" ").slice(0, 3).join(" ")}). ` +
        "Absolute times are inflated by the shared machine's load; shares and ratios are the point.",
        "",
        ...parts,
      ].join("\n"),
    );
  }
}

if (import.meta.main) await main(Deno.args);
