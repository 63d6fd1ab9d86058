/**
 * `deno task bench ddp`: data-parallel training on this machine (cpu backend, OpenMPI).
 *
 * - images/s of the training step (pre-made views, `bench/ddp_worker.ts`) as 1 process × T
 *   threads vs T processes × 1 thread (T = the cores), for case (b) of `step_cases.ts` (ResNet-18
 *   width 16, 28x28x1, batch 256: the fashion-mnist preset's network at `--width 16`) with plain
 *   BN (SyncBN across the processes) and with 2 BN groups (one per process, no BN traffic), and
 *   the gradient buckets started during backward (overlap) or after it;
 * - the time each data-parallel step spends in the device communicator (gradient average, SyncBN
 *   and teacher gathers) beside the step;
 * - a bare average allreduce of the ResNet-18 gradients (width 64 + head: 12.5 M floats, 50 MB) through
 *   the same communicator (download, MPI ring allreduce, upload).
 *
 * Options: --steps N (timed steps, default 6) --warmup N (default 2) --rounds N (default 2: each
 * configuration runs N times, interleaved; the best round is reported, the machine being shared)
 * --write <file> (a docs/distributed.md-style section).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ENGINES } from "../tests/dist/mpi_job.ts";
import { specSize } from "../src/nn/param_spec.ts";
import { resnetSpec } from "../src/nn/resnet.ts";
import { writeSection } from "./report.ts";

/** One measured configuration. */
export interface DdpResult {
  case: string;
  ranks: number;
  threads: number;
  bnSplits: number;
  overlap: boolean;
  batch: number;
  stepSeconds: number;
  imagesPerSecond: number;
  commMsPerStep: number;
  allreduceMs?: number;
  allreduceFloats?: number;
}

/** ResNet-18 (width 64, CIFAR stem) + the 512-2048-128 head: the gradient floats one step averages. */
export const RESNET18_GRADIENT_FLOATS: number = specSize(
  resnetSpec({ depth: 18, stem: "cifar", maxPool: false, inChannels: 3, width: 64 }).params,
) +
  512 * 2048 + 2048 + 2048 * 128 + 128;

const WORKER = new URL("./ddp_worker.ts", import.meta.url).pathname;

async function runWorker(ranks: number, args: string[]): Promise<DdpResult> {
  const deno = [Deno.execPath(), "run", "-A", WORKER, ...args];
  const ompi = ENGINES[0];
  if (ranks > 1 && ompi.launcher === undefined) {
    throw new Error(
      "Cannot run the ddp benchmark: OpenMPI is not installed (scripts/setup_mpi.sh)",
    );
  }
  const cmd = ranks > 1 ? [ompi.launcher!, ...ompi.flags, "-np", String(ranks), ...deno] : deno;
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    env: { OMPI_ALLOW_RUN_AS_ROOT: "1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const line = text.split("\n").find((l) => l.startsWith("ddp-result "));
  if (out.code !== 0 || !line) {
    throw new Error(`The ddp worker failed (${cmd.join(" ")}):\n${text}`);
  }
  return JSON.parse(line.slice("ddp-result ".length));
}

/** The table of a run's results. */
export function ddpTable(results: DdpResult[]): string {
  const rows = [
    "| configuration | BN | gradient buckets | step (s) | images/s | in the communicator per step |",
    "|---|---|---|---:|---:|---:|",
  ];
  const base = results.find((r) => r.ranks === 1);
  for (const r of results) {
    const conf = `${r.ranks} process${r.ranks > 1 ? "es" : ""} × ${r.threads} thread${
      r.threads > 1 ? "s" : ""
    }`;
    const bn = r.bnSplits === 1
      ? r.ranks > 1 ? "plain (SyncBN)" : "plain"
      : `${r.bnSplits} groups${r.ranks > 1 ? ` (${r.bnSplits / r.ranks} per process)` : ""}`;
    const speed = base && r !== base
      ? ` (${(r.imagesPerSecond / base.imagesPerSecond).toFixed(2)}x)`
      : "";
    rows.push(
      `| ${conf} | ${bn} | ${
        r.ranks > 1 ? (r.overlap ? "during backward" : "after backward") : "-"
      } | ${r.stepSeconds.toFixed(3)} | ${r.imagesPerSecond.toFixed(1)}${speed} | ${
        r.ranks > 1
          ? `${r.commMsPerStep.toFixed(0)} ms (${
            (r.commMsPerStep / 10 / r.stepSeconds).toFixed(1)
          } %)`
          : "-"
      } |`,
    );
  }
  return rows.join("\n");
}

/** Runs the benchmark; returns the results (and prints the tables). */
export async function main(args: string[]): Promise<DdpResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      steps: { type: "string", default: "6" },
      warmup: { type: "string", default: "2" },
      rounds: { type: "string", default: "2" },
      write: { type: "string" },
    },
  });
  const cores = navigator.hardwareConcurrency || 2;
  const common = ["--case", "b", "--steps", values.steps!, "--warmup", values.warmup!];
  const configs: { ranks: number; args: string[] }[] = [
    { ranks: 1, args: ["--threads", String(cores), "--bn-splits", "1"] },
    { ranks: cores, args: ["--threads", "1", "--bn-splits", "1"] },
    { ranks: cores, args: ["--threads", "1", "--bn-splits", "1", "--no-overlap"] },
    { ranks: 1, args: ["--threads", String(cores), "--bn-splits", String(cores)] },
    { ranks: cores, args: ["--threads", "1", "--bn-splits", String(cores)] },
  ];
  const best: (DdpResult | undefined)[] = configs.map(() => undefined);
  for (let round = 0; round < Number(values.rounds); round++) {
    for (const [i, c] of configs.entries()) {
      const r = await runWorker(c.ranks, [...common, ...c.args]);
      console.error(
        `round ${round + 1}: ${c.ranks} × ${c.args.join(" ")}: ${
          r.imagesPerSecond.toFixed(1)
        } images/s`,
      );
      if (!best[i] || r.stepSeconds < best[i]!.stepSeconds) best[i] = r;
    }
  }
  const results = best as DdpResult[];
  const ar = await runWorker(cores, [
    "--case",
    "b",
    "--steps",
    "1",
    "--warmup",
    "0",
    "--threads",
    "1",
    "--allreduce",
    String(RESNET18_GRADIENT_FLOATS),
  ]);
  const load = Deno.loadavg().map((v) => v.toFixed(2));
  const md = [
    ddpTable(results),
    "",
    `ResNet-18 width 16 (1x28x28, batch 256 global), the training step on pre-made views, cpu ` +
    `backend (oneDNN), OpenMPI on one machine of ${cores} cores (\`--bind-to none\`); best of ` +
    `${values.rounds} interleaved rounds of ${values.steps} timed steps after ${values.warmup}. ` +
    `"In the communicator": wall time of the step inside the device communicator's calls ` +
    `(gradient average, SyncBN and teacher gathers), exposed (not hidden by computation).`,
    "",
    `Average allreduce of the ResNet-18 gradients (width 64 + head: ${
      (RESNET18_GRADIENT_FLOATS / 1e6).toFixed(1)
    } M floats, ${
      (RESNET18_GRADIENT_FLOATS * 4 / 1e6).toFixed(0)
    } MB) between ${cores} processes ` +
    `through the staged communicator (download, MPI ring allreduce, upload): ${
      ar.allreduceMs!.toFixed(0)
    } ms (median of 5). Load average at the end: ${load.slice(0, 3).join(" ")}.`,
  ].join("\n");
  console.log(md);
  if (values.write) {
    await writeSection(
      values.write,
      "ddp",
      [
        `Produced by \`deno task bench ddp\` on ${new Date().toISOString().slice(0, 10)}.`,
        "",
        md,
      ].join("\n"),
    );
  }
  return results;
}

if (import.meta.main) await main(Deno.args);
