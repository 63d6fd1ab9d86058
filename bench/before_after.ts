/**
 * Our isolated training step before and after a change, in one invocation: each side is a child
 * process running `bench/profile_run.ts` of its own source tree (this checkout, and `--before`, a
 * checkout of the earlier commit, e.g. made with `git worktree add /tmp/before <commit>`), the
 * sides alternating in rounds so that the shared machine's load hits both alike. Each child runs
 * in a fresh process, so process-wide settings (the OpenMP wait policy the cpu backend sets) are
 * those of its tree. `--threads 1` adds the load-immune view: with one OpenMP thread the step's
 * process CPU time is its work.
 *
 * Usage: deno run -A bench/before_after.ts --before /tmp/before [--cases b,c,a64] [--rounds 3]
 *        [--steps 3] [--threads 2]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { median, selectCases } from "./step_cases.ts";
import type { ProfileRunOptions } from "./profile_run.ts";
import { profileRunChild } from "./profile_children.ts";

const HERE = new URL("..", import.meta.url).pathname;

interface Sample {
  wallMs: number;
  cpuMs: number;
}

/** One child run of `tree`'s profile_run.ts: per measured step, wall and process CPU ms. */
async function run(tree: string, o: ProfileRunOptions): Promise<Sample[]> {
  const res = await profileRunChild(o, tree);
  const cpu = res.threads.reduce((a, t) => a + t.cpuSeconds, 0) * 1000 / res.steps.length;
  return res.steps.map((s) => ({ wallMs: s.wallMs, cpuMs: cpu }));
}

/** Entry point: prints a markdown table. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      before: { type: "string" },
      cases: { type: "string", default: "b,c,a64" },
      rounds: { type: "string", default: "3" },
      steps: { type: "string", default: "3" },
      threads: { type: "string", default: "2" },
    },
  });
  if (!values.before) {
    throw new RangeError(
      "Cannot compare: --before names no checkout (make one with 'git worktree add /tmp/before <commit>')",
    );
  }
  const rounds = Number(values.rounds), steps = Number(values.steps);
  const threads = Number(values.threads);
  const trees = [values.before, HERE];
  const rows: string[] = [
    `| case | before ms/step (wall, median) | after ms/step | after vs before | before CPU ms/step | after CPU ms/step | per-round wall before / after |`,
    "|---|---:|---:|---:|---:|---:|---|",
  ];
  for (const c of selectCases(values.cases, "--cases")) {
    const o: ProfileRunOptions = {
      case: c.id,
      mode: "isolated",
      data: "synthetic",
      steps,
      warmup: 2,
      workers: 0,
      threads,
    };
    const samples: Sample[][][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < 2; j++) {
        const k = (j + r) % 2;
        const s = await run(trees[k], o);
        samples[k].push(s);
        console.error(
          `${c.id} round ${r + 1} ${k === 0 ? "before" : "after"}: ${
            s.map((x) => x.wallMs.toFixed(0)).join(", ")
          } ms`,
        );
      }
    }
    const wall = samples.map((side) => median(side.flat().map((x) => x.wallMs)));
    const cpu = samples.map((side) => median(side.flat().map((x) => x.cpuMs)));
    const perRound = samples.map((side) =>
      side.map((r) => median(r.map((x) => x.wallMs)).toFixed(0)).join(", ")
    );
    rows.push(
      `| ${c.label} | ${wall[0].toFixed(0)} | ${wall[1].toFixed(0)} | ${
        (wall[0] / wall[1]).toFixed(2)
      }x | ${cpu[0].toFixed(0)} | ${cpu[1].toFixed(0)} | ${perRound[0]} / ${perRound[1]} |`,
    );
  }
  const md = rows.join("\n");
  console.log(md);
  return md;
}

if (import.meta.main) await main(Deno.args);
