/**
 * Where the training path's extra time goes (issue 15: `bench/step.ts` reported 977 ms for the
 * CIFAR-shaped width-64 batch-64 step while `deno task train` took 1.47 s per step on the smaller
 * 28x28x1 input). In one process, warm sessions alternate in rounds:
 * - `iso-a64`: the isolated step, 32x32x3 (the 977 ms number);
 * - `iso-c`: the isolated step, 28x28x1 width 64 batch 64 (input shape alone);
 * - `loop-c-w1`: the training loop on Fashion-MNIST with 1 loader worker (what `train` runs);
 * - `loop-c-w0`: the same with augmentation on the main thread;
 * each with its backend calls timed by the kernel timer (conv/BN/eltwise/optimizer/... per step),
 * so the difference between two sides is attributed to kernel classes, loader waits and the time
 * between kernels. Process-wide settings (OMP_WAIT_POLICY, GOMP_SPINCOUNT, threads) cannot change
 * inside one process: `bench/train_path.ts --variants` measures those.
 *
 * The same three sides exist for width 16 batch 256 (`iso-b`, `loop-b-w1`, `loop-b-w0`).
 *
 * Usage: deno run -A bench/gap.ts [--rounds N] [--steps N] [--sides iso-a64,iso-c,loop-c-w1]
 *        [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadAverage, writeSection } from "./report.ts";
import { createSession, type ProfileSession, type StepTiming } from "./profile_run.ts";
import { kernelClass } from "./kernel_timer.ts";
import { median } from "./step_cases.ts";

interface Side {
  id: string;
  label: string;
  make: (maxSteps: number) => Promise<ProfileSession>;
}

const SIDES: Side[] = [
  {
    id: "iso-a64",
    label: "isolated step, 3x32x32 (CIFAR), width 64, batch 64",
    make: (n) =>
      createSession(
        { case: "a64", mode: "isolated", data: "synthetic", workers: 0, threads: 2 },
        n,
      ),
  },
  {
    id: "iso-c",
    label: "isolated step, 1x28x28, width 64, batch 64",
    make: (n) =>
      createSession({ case: "c", mode: "isolated", data: "synthetic", workers: 0, threads: 2 }, n),
  },
  {
    id: "loop-c-w1",
    label: "training loop, Fashion-MNIST 1x28x28, 1 loader worker",
    make: (n) =>
      createSession({ case: "c", mode: "loop", data: "fmnist", workers: 1, threads: 2 }, n),
  },
  {
    id: "loop-c-w0",
    label: "training loop, Fashion-MNIST 1x28x28, augmentation inline",
    make: (n) =>
      createSession({ case: "c", mode: "loop", data: "fmnist", workers: 0, threads: 2 }, n),
  },
  {
    id: "iso-b",
    label: "isolated step, 1x28x28, width 16, batch 256",
    make: (n) =>
      createSession({ case: "b", mode: "isolated", data: "synthetic", workers: 0, threads: 2 }, n),
  },
  {
    id: "loop-b-w1",
    label: "training loop, Fashion-MNIST 1x28x28, width 16, batch 256, 1 loader worker",
    make: (n) =>
      createSession({ case: "b", mode: "loop", data: "fmnist", workers: 1, threads: 2 }, n),
  },
  {
    id: "loop-b-w0",
    label: "training loop, Fashion-MNIST 1x28x28, width 16, batch 256, augmentation inline",
    make: (n) =>
      createSession({ case: "b", mode: "loop", data: "fmnist", workers: 0, threads: 2 }, n),
  },
];

/** Entry point. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      steps: { type: "string", default: "2" },
      sides: { type: "string" },
      write: { type: "string" },
    },
  });
  const rounds = Number(values.rounds), steps = Number(values.steps);
  if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(steps) || steps < 1) {
    throw new RangeError("Cannot run the gap benchmark: --rounds and --steps must be >= 1");
  }
  const ids = values.sides?.split(",") ?? SIDES.map((s) => s.id);
  const sides = ids.map((id) => {
    const s = SIDES.find((x) => x.id === id);
    if (!s) {
      throw new RangeError(
        `Cannot run the gap benchmark: unknown side '${id}' (${SIDES.map((x) => x.id).join(", ")})`,
      );
    }
    return s;
  });
  const sessions: ProfileSession[] = [];
  const times = new Map<string, StepTiming[][]>();
  try {
    for (const s of sides) {
      console.error(`gap: starting ${s.id} (2 warm-up steps) ...`);
      const session = await s.make(2 + rounds * steps);
      await session.run(2);
      sessions.push(session);
      times.set(s.id, []);
    }
    for (let r = 0; r < rounds; r++) {
      for (let j = 0; j < sides.length; j++) {
        const k = (j + r) % sides.length;
        const t = await sessions[k].run(steps, { record: true, label: r === 0 });
        times.get(sides[k].id)!.push(t);
        console.error(
          `gap round ${r + 1}: ${sides[k].id} ${t.map((x) => x.wallMs.toFixed(0)).join(", ")} ms`,
        );
      }
    }
    const md = gapTable(sides, sessions, times);
    console.log(md);
    if (values.write) {
      const load = loadAverage();
      await writeSection(
        values.write,
        "gap",
        [
          "## Where the training path's extra time goes (isolated CIFAR step vs 28x28 loop)",
          "",
          `Produced by \`deno run --allow-all bench/gap.ts ${args.join(" ")}\` on ${
            new Date().toISOString().slice(0, 10)
          } (load average at the end: ${load.split(" ").slice(0, 3).join(" ")}). Warm sessions ` +
          `in one process, ${rounds} rounds of ${steps} steps each, alternating; ms per step ` +
          "(median wall; per class: mean of the timed backend calls).",
          "",
          md,
        ].join("\n"),
      );
    }
    return md;
  } finally {
    for (const s of sessions) await s.close();
  }
}

function gapTable(
  sides: Side[],
  sessions: ProfileSession[],
  times: Map<string, StepTiming[][]>,
): string {
  const perClass = sessions.map((s, i) => {
    const n = times.get(sides[i].id)!.flat().length;
    const m = new Map<string, number>();
    for (const r of s.timer.records()) {
      const c = kernelClass(r.kernel, r.site);
      m.set(c, (m.get(c) ?? 0) + r.ms / n);
    }
    return m;
  });
  const classes = [...new Set(perClass.flatMap((m) => [...m.keys()]))].sort((a, b) =>
    (perClass[0].get(b) ?? 0) - (perClass[0].get(a) ?? 0)
  );
  const head = ["", ...sides.map((s) => `${s.id}: ${s.label}`)];
  const rows = [`| ${head.join(" | ")} |`, `|---|${sides.map(() => "---:").join("|")}|`];
  const cell = (i: number, f: (t: StepTiming) => number) => {
    const all = times.get(sides[i].id)!.flat();
    return all.reduce((a, t) => a + f(t), 0) / all.length;
  };
  const wall = sides.map((s) => median(times.get(s.id)!.flat().map((t) => t.wallMs)));
  rows.push(`| **step wall, median** | ${wall.map((w) => w.toFixed(0)).join(" | ")} |`);
  rows.push(
    `| relative to ${sides[0].id} | ${wall.map((w) => (w / wall[0]).toFixed(2)).join(" | ")} |`,
  );
  rows.push(
    `| per-round medians | ${
      sides.map((s) =>
        times.get(s.id)!.map((r) => median(r.map((t) => t.wallMs)).toFixed(0)).join(", ")
      ).join(" | ")
    } |`,
  );
  for (const c of classes) {
    rows.push(`| ${c} | ${perClass.map((m) => (m.get(c) ?? 0).toFixed(1)).join(" | ")} |`);
  }
  rows.push(
    `| waiting for the loader | ${
      sides.map((_, i) => cell(i, (t) => t.waitMs).toFixed(1)).join(" | ")
    } |`,
    `| between kernels (TS, FFI, GC) | ${
      sides.map((_, i) => cell(i, (t) => t.wallMs - t.waitMs - t.kernelMs).toFixed(1)).join(" | ")
    } |`,
  );
  return rows.join("\n");
}

if (import.meta.main) await main(Deno.args);
