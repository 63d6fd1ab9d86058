/**
 * The training path: our step as `deno task train` takes it (dataset files read from disk,
 * augmentation in the loader worker, EMA, teacher forward, student forward/backward, relation loss,
 * SGD, enqueue, metrics), timed step by step inside one 9-step run with `--log-every 1`: the
 * trainer's own training clock (`seconds` of the step records in metrics.jsonl, the clock behind
 * images/s) gives steps 3-8, as PyTorch's training path (`bench/train_path_torch.py`: torchvision
 * transforms in a DataLoader worker, the same recipe) times its steps 3-8 in the loop. Each side's
 * number is the median over all measured steps of all rounds, as in `bench/step.ts`. All sides
 * alternate in rounds inside one invocation. (A flush per step costs one scalar read, one JSON
 * line and one progress line: well under a millisecond against 0.3-0.8 s steps.)
 *
 * Until 2026-12-06 ours was (wall of an 8-step run - wall of a 2-step run) / 6 (the `legacy`
 * variant still measures it): that difference of two processes also holds the final checkpoint,
 * which took 0.2-0.3 s longer after 8 steps than after 2 at width 64 (+35-50 ms per step), and
 * two processes' start-up noise (its rounds spread by up to 30 %); PyTorch's loop writes no
 * checkpoint.
 *
 * Data (`bench/train_path_inputs.ts`): the 28x28x1 cases (b, c) read Fashion-MNIST's first images;
 * the CIFAR-shaped case (a64), CIFAR-10 not being on the machine, a synthetic CIFAR-10 in the real
 * binary format that both sides read (a step's time does not depend on pixel values). Both sides
 * train with plain BatchNorm and no teacher shuffle, as `caseConfig`.
 *
 * `--variants` adds runs of ours with other settings (the investigation of issue 15): `legacy` (the
 * old two-process estimator above), `w0` (augment
 * on the main thread), `w2` (2 workers), `passive`/`active` (OMP_WAIT_POLICY), `spin0`
 * (GOMP_SPINCOUNT=0), `gomp` (libgomp's default spinning, which the cpu backend replaces by
 * OMP_WAIT_POLICY=passive unless the environment sets a policy), `t1` (1 oneDNN thread).
 *
 * `--isolated same,a64` adds our isolated step (pre-made tensors, child process, steps 3-8)
 * of the same case and/or of another case as further sides, so the training path and the isolated
 * step are compared in one run. `--peer-steps` adds each PyTorch 2.x peer's isolated step
 * (`bench/step_torch.py`, fresh process, steps 3-8) as a side: issue 15's metric, our training
 * path against PyTorch's step, then comes from one phase, side by side (`bench/mod.ts all` sets it).
 *
 * Usage: deno run -A bench/train_path.ts [--only b,c,a64] [--rounds N] [--peers t2,t2cl,t113]
 *        [--variants w0,passive] [--isolated same,a64] [--peer-steps] [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { writeSection } from "./report.ts";
import { median, selectCases, type StepCase } from "./step_cases.ts";
import {
  type CaseInputs,
  caseInputs,
  dataNote,
  limitFor,
  LONG,
  SHORT,
} from "./train_path_inputs.ts";
import { type PeerSpec, resolvePeers } from "./peers.ts";
import { fmtSpeedup, roundSpread, type SideTimes, speedup } from "./step_table.ts";
import { isolatedRun, torchRun, torchStepRun } from "./train_path_runs.ts";

const REPO = new URL("..", import.meta.url).pathname;
export { LONG, SHORT };

/** A variant of our training run: extra flags and environment. */
interface Variant {
  label: string;
  args: string[];
  env: Record<string, string>;
  /**
   * `in-run` (default): steps SHORT+1..LONG on the training clock of one run; `two-runs`: (wall
   * of a LONG-step run - wall of a SHORT-step run) / (LONG - SHORT), the estimator before
   * 2026-12-06.
   */
  estimator?: "in-run" | "two-runs";
}

/** The variants `--variants` may name. */
export const VARIANTS: Record<string, Variant> = {
  w1: { label: "ours (1 loader worker, default)", args: ["--workers", "1"], env: {} },
  legacy: {
    label: "ours, old estimator: (wall of 8-step run - wall of 2-step run) / 6",
    args: ["--workers", "1"],
    env: {},
    estimator: "two-runs",
  },
  w0: { label: "ours, augmentation inline (--workers 0)", args: ["--workers", "0"], env: {} },
  w2: { label: "ours, 2 loader workers", args: ["--workers", "2"], env: {} },
  passive: {
    label: "ours, OMP_WAIT_POLICY=passive",
    args: ["--workers", "1"],
    env: { OMP_WAIT_POLICY: "passive" },
  },
  active: {
    label: "ours, OMP_WAIT_POLICY=active",
    args: ["--workers", "1"],
    env: { OMP_WAIT_POLICY: "active" },
  },
  gomp: {
    label:
      "ours, libgomp's default wait (GOMP_SPINCOUNT=300000, as before OMP_WAIT_POLICY=passive)",
    args: ["--workers", "1"],
    env: { GOMP_SPINCOUNT: "300000" },
  },
  spin0: {
    label: "ours, GOMP_SPINCOUNT=0",
    args: ["--workers", "1"],
    env: { GOMP_SPINCOUNT: "0" },
  },
  t1: { label: "ours, --threads 1", args: ["--workers", "1", "--threads", "1"], env: {} },
};

/** One case's training-path measurements: side id -> seconds per step, one value per round. */
export interface TrainPathResult {
  case: StepCase;
  /** `ours`, variant ids (`ours:w0`) and peer ids -> [[s/step of round 1], [round 2], ...]. */
  sides: Record<string, SideTimes>;
  /** Labels of the sides. */
  labels: Record<string, string>;
}

/** What one of our training runs reports. */
interface OursRun {
  /** Wall seconds of the run as the train command prints them (checkpoints included). */
  wall: number;
  /** Step -> the training clock's seconds in its step record (metrics.jsonl). */
  clock: Map<number, number>;
}

/**
 * Our training run of `steps` steps (`logEvery`: the step records' interval, or the preset's):
 * its printed wall time and the training clock of its step records.
 */
async function oursRun(
  c: StepCase,
  inputs: CaseInputs,
  v: Variant,
  steps: number,
  out: string,
  logEvery?: number,
): Promise<OursRun> {
  await Deno.remove(out, { recursive: true }).catch(() => {});
  const args = [
    "run",
    "--allow-all",
    "tasks/train.ts",
    "--preset",
    c.preset,
    "--config",
    inputs.config,
    ...(inputs.cifar ? ["--data", inputs.cifar] : []),
    "--width",
    String(c.width),
    "--batch-size",
    String(c.batch),
    "--threads",
    "2",
    "--max-steps",
    String(steps),
    "--limit",
    String(limitFor(c)),
    "--seed",
    "0",
    "--plain",
    "--out",
    out,
    ...(logEvery ? ["--log-every", String(logEvery)] : []),
    ...v.args,
  ];
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: REPO,
    env: v.env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  const m = text.match(/done: \d+ steps \((\d+) in ([\d.]+) s/);
  if (!r.success || !m || Number(m[1]) !== steps) {
    throw new Error(
      `Cannot measure the training path: 'deno ${args.join(" ")}' ${
        r.success ? "printed no 'done:' line" : `exited with ${r.code}`
      }: ${text.slice(-800)}`,
    );
  }
  const clock = new Map<number, number>();
  const metrics = await Deno.readTextFile(`${out}/metrics.jsonl`);
  for (const line of metrics.split("\n").filter((l) => l.trim() !== "")) {
    const r = JSON.parse(line);
    if (r.kind === "step") clock.set(r.step, r.seconds);
  }
  await Deno.remove(out, { recursive: true }).catch(() => {});
  return { wall: Number(m[2]), clock };
}

/**
 * Seconds of each measured step of our training path under variant `v` (steps SHORT+1..LONG of
 * one run; the two-runs estimator gives one number); see {@link Variant.estimator}.
 */
async function oursPerStep(
  c: StepCase,
  inputs: CaseInputs,
  v: Variant,
  out: string,
): Promise<number[]> {
  if (v.estimator === "two-runs") {
    const short = await oursRun(c, inputs, v, SHORT, `${out}-short`);
    const long = await oursRun(c, inputs, v, LONG, `${out}-long`);
    return [(long.wall - short.wall) / (LONG - SHORT)];
  }
  // One step more than measured: the last step of a run was the slowest in 8 of 14 runs (it is
  // no step of a long run's steady state), so it stays outside the window.
  const run = await oursRun(c, inputs, v, LONG + 1, out, 1);
  return stepSeconds(run.clock, SHORT + 1, LONG);
}

/**
 * Seconds of steps `first..last` from a run's training clock (step -> `seconds` of its record,
 * written after the step): step s took clock(s) - clock(s - 1). Throws naming a missing record.
 */
export function stepSeconds(clock: Map<number, number>, first: number, last: number): number[] {
  const out: number[] = [];
  for (let step = first; step <= last; step++) {
    const [a, b] = [clock.get(step - 1), clock.get(step)];
    if (a === undefined || b === undefined) {
      throw new Error(
        `Cannot measure the training path: metrics.jsonl has no step record for step ${
          a === undefined ? step - 1 : step
        } (the run needs --log-every 1)`,
      );
    }
    out.push(b - a);
  }
  return out;
}

async function runCase(
  c: StepCase,
  peers: PeerSpec[],
  variants: string[],
  rounds: number,
  isolated: string[],
  peerSteps: boolean,
): Promise<TrainPathResult> {
  const sides: Record<string, SideTimes> = {};
  const labels: Record<string, string> = {};
  const runners: [string, () => Promise<number[]>][] = [];
  const tmp = await Deno.makeTempDir({ prefix: "ressl-train-path-" });
  const inputs = await caseInputs(c, tmp).catch(async (e) => {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw e;
  });
  for (const id of ["w1", ...variants.filter((v) => v !== "w1")]) {
    const v = VARIANTS[id];
    const side = id === "w1" ? "ours" : `ours:${id}`;
    labels[side] = v.label;
    runners.push([side, () => oursPerStep(c, inputs, v, `${tmp}/${id}`)]);
  }
  for (const id of isolated) {
    // `same` keeps its side id across cases, so one table holds every case's row.
    const target = id === "same" ? c.id : id;
    labels[`iso:${id}`] = id === "same"
      ? "ours, isolated step of the same case (pre-made tensors)"
      : `ours, isolated step of case ${id} (pre-made tensors)`;
    runners.push([`iso:${id}`, () => isolatedRun(target)]);
  }
  for (const p of peers) {
    labels[p.id] = `${p.label} (DataLoader, 1 worker)`;
    runners.push([p.id, () => torchRun(c, inputs, p)]);
  }
  for (const p of peerSteps ? peers.filter((q) => q.current) : []) {
    labels[`${p.id}:step`] = `${p.label}, isolated step (pre-made tensors)`;
    runners.push([`${p.id}:step`, () => torchStepRun(c, p)]);
  }
  try {
    for (const [id] of runners) sides[id] = [];
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < runners.length; j++) {
        const [id, run] = runners[(j + r) % runners.length];
        const s = await run();
        console.error(
          `train path ${c.id} round ${r + 1}: ${id} ${
            s.map((x) => (x * 1000).toFixed(0)).join(", ")
          } ms/step`,
        );
        sides[id].push(s);
      }
    }
  } finally {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
  }
  return { case: c, sides, labels };
}

/** The training-path table. */
export function trainPathTable(results: TrainPathResult[], peers: PeerSpec[]): string {
  const current = peers.filter((p) => p.current).map((p) => p.id);
  const old = peers.filter((p) => !p.current).map((p) => p.id);
  const ids = results.length ? Object.keys(results[0].sides) : [];
  const labels = results[0]?.labels ?? {};
  const steps2 = current.map((id) => `${id}:step`).filter((id) => ids.includes(id));
  const head = [
    "case",
    ...ids.map((id) => `${labels[id]} ms/step`),
    "ours vs faster torch 2.x",
    "ours vs torch 1.13",
    ...(steps2.length ? ["ours vs faster torch 2.x isolated step"] : []),
    "spread of rounds",
  ];
  const rows = [`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`];
  for (const r of results) {
    const med = (id: string) => median(r.sides[id].flat());
    rows.push(
      `| ${
        [
          r.case.label,
          ...ids.map((id) => (1000 * med(id)).toFixed(0)),
          fmtSpeedup(speedup(r.sides, current)),
          fmtSpeedup(speedup(r.sides, old)),
          ...(steps2.length ? [fmtSpeedup(speedup(r.sides, steps2))] : []),
          ids.map((id) => `${roundSpread(r.sides[id]).toFixed(0)}%`).join(" / "),
        ].join(" | ")
      } |`,
    );
  }
  return rows.join("\n");
}

/** Entry point (also called by `bench/mod.ts`). */
export async function main(args: string[]): Promise<TrainPathResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string" },
      rounds: { type: "string", default: "2" },
      peers: { type: "string" },
      variants: { type: "string" },
      isolated: { type: "string" },
      "peer-steps": { type: "boolean", default: false },
      write: { type: "string" },
    },
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new RangeError(`Cannot run the training-path benchmark: --rounds must be >= 1`);
  }
  const cases = selectCases(values.only ?? "b,c,a64");
  const variants = (values.variants ?? "").split(",").filter((v) => v);
  for (const v of variants) {
    if (!VARIANTS[v]) {
      throw new RangeError(
        `Cannot run the training-path benchmark: --variants names '${v}', known: ${
          Object.keys(VARIANTS).join(", ")
        }`,
      );
    }
  }
  const { peers, notes } = await resolvePeers(values.peers);
  for (const n of notes) console.error(`train path: ${n}`);
  const results: TrainPathResult[] = [];
  for (const c of cases) {
    console.error(`train path: ${c.label} ...`);
    const isolated = (values.isolated ?? "").split(",").filter((x) => x);
    results.push(
      await runCase(c, peers, variants, rounds, isolated, values["peer-steps"] === true),
    );
  }
  const md = trainPathTable(results, peers);
  console.log(md);
  if (values.write) {
    const load = await Deno.readTextFile("/proc/loadavg").catch(() => "n/a");
    await writeSection(
      values.write,
      "train-path",
      [
        "## Training path: `deno task train` vs PyTorch's DataLoader loop",
        "",
        `Produced by \`deno run --allow-all bench/train_path.ts ${args.join(" ")}\` on ${
          new Date().toISOString().slice(0, 10)
        } (load average before the write: ${load.split(" ").slice(0, 3).join(" ")}). Ours: ` +
        `steps ${SHORT + 1}-${LONG} of one ${LONG + 1}-step \`deno task train --plain ` +
        "--log-every 1` run on its training clock (metrics.jsonl), 1 loader worker, 2 threads; " +
        `PyTorch: steps ${SHORT + 1}-${LONG} of its DataLoader loop. Data: ${dataNote(cases)}. ` +
        "Plain BatchNorm, no teacher shuffle on both sides. " +
        `${rounds} rounds, alternating; medians over all measured steps.`,
        "",
        md,
      ].join("\n"),
    );
  }
  return results;
}

if (import.meta.main) await main(Deno.args);
