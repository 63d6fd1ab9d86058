/**
 * `deno task bench [step|train|data|profile|all] [options]`: benchmarks that run their peers
 * (PyTorch 2.x from `.cache/torch-venv`, set up offline by `scripts/setup_torch.sh` on first use,
 * and Debian's PyTorch 1.13) side by side in the same invocation.
 * - `step`: the ReSSL training step on pre-made tensors, three cases (bench/step.ts);
 * - `train`: the training path, `deno task train` itself vs PyTorch's DataLoader loop
 *   (bench/train_path.ts);
 * - `data`: the augmentation loader's images/s (bench/data.ts);
 * - `profile`: per kernel class / conv shape / thread, ours vs PyTorch's oneDNN (bench/profile.ts);
 * - `ddp`: data-parallel training, 1 process × T threads vs T processes × 1 thread (bench/ddp.ts).
 *
 * `all` (the default) runs step and train, then prints a summary of both (issue 15's table) and,
 * with `--write <file>`, writes every section there. Each sub-benchmark also runs on its own
 * (`deno run -A bench/step.ts --help`-style options, passed through after the name).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadAverage, writeSection } from "./report.ts";
import type { CaseResult } from "./step.ts";
import type { TrainPathResult } from "./train_path.ts";
import { overall, speedup } from "./step_table.ts";

const SUITES: Record<string, string> = {
  step: "./step.ts",
  train: "./train_path.ts",
  data: "./data.ts",
  profile: "./profile.ts",
  ddp: "./ddp.ts",
};

/** Issue 15's summary: isolated step and training path of each case against every peer. */
export function summary(steps: CaseResult[], train: TrainPathResult[]): string {
  const rows = [
    "| case | ours step (pre-made tensors) | ours training path | faster torch 2.x step | torch 2.x training path | torch 1.13 step | torch 1.13 training path | ours training path vs faster torch 2.x step | **same phase**: ours training path vs faster torch 2.x step | ours training path vs torch 2.x training path | ours training path vs torch 1.13 training path | ours step vs faster torch 2.x step |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  const ms = (s: number | undefined) => (s === undefined ? "-" : (1000 * s).toFixed(0));
  for (const st of steps) {
    const tp = train.find((t) => t.case.id === st.case.id);
    const best2 = ["t2", "t2cl"].filter((id) => st.sides[id]?.length);
    const bestStep = best2.length
      ? Math.min(...best2.map((id) => overall(st.sides[id])))
      : undefined;
    const bestId = best2.find((id) => overall(st.sides[id]) === bestStep);
    const t113 = st.sides.t113?.length ? overall(st.sides.t113) : undefined;
    const oursTrain = tp ? overall(tp.sides.ours) : undefined;
    const train2 = tp
      ? ["t2", "t2cl"].filter((id) => tp.sides[id]?.length).map((id) => overall(tp.sides[id]))
      : [];
    const tr2 = train2.length ? Math.min(...train2) : undefined;
    const tr113 = tp?.sides.t113?.length ? overall(tp.sides.t113) : undefined;
    const ratio = (a?: number, b?: number) =>
      a !== undefined && b !== undefined ? `${(b / a).toFixed(2)}x` : "-";
    const s = speedup(st.sides, best2);
    // Issue 15's metric from the training-path phase alone (PyTorch's step run beside ours there).
    const same = tp ? speedup(tp.sides, ["t2:step", "t2cl:step"]) : undefined;
    const range = (x?: { ratio: number; min: number; max: number }) =>
      x ? `${x.ratio.toFixed(2)}x (${x.min.toFixed(2)}-${x.max.toFixed(2)})` : "-";
    rows.push(
      `| ${st.case.label} | ${ms(overall(st.sides.ours))} | ${ms(oursTrain)} | ${ms(bestStep)}${
        bestId === "t2cl" ? " (channels_last)" : bestId ? " (NCHW)" : ""
      } | ${ms(tr2)} | ${ms(t113)} | ${ms(tr113)} | ${ratio(oursTrain, bestStep)} | ${
        range(same)
      } | ${ratio(oursTrain, tr2)} | ${ratio(oursTrain, tr113)} | ${range(s)} |`,
    );
  }
  rows.push(
    "",
    "ms per step, medians; ratio = PyTorch time / our time (> 1: ours faster). Training path of " +
      "ours: `deno task train` (steps 3-8 of a 9-step run, its training clock); of PyTorch: " +
      "its DataLoader loop (bench/train_path_torch.py). Data of the training path: " +
      "Fashion-MNIST for the 28x28x1 cases; for the CIFAR-shaped case a synthetic CIFAR-10 in " +
      "the real binary format (no CIFAR-10 files on the machine; pixel values do not change a " +
      "step's time), read by both sides. The same-phase column compares our training path with " +
      "PyTorch's isolated step run beside it in the training-path phase (fresh processes, steps " +
      "3-8, rounds alternating; in brackets the lowest and highest per-round ratio): the fairest " +
      "view of issue 15's metric on a shared machine.",
  );
  return rows.join("\n");
}

function usage(): string {
  return `Usage: deno task bench [${Object.keys(SUITES).join("|")}|all] [options]
  all (default): step + train, then the summary; --write <file> writes every section;
    --step-rounds N --steps N (step benchmark), --train-rounds N (training path)
  step options: --only b,c,a64,a256 --peers t2,t2cl,t113 --steps N --rounds N --quick
  train options: --only b,c,a64 --rounds N --peers ... --variants w0,w2,passive,active,spin0,t1
  profile options: --only b,c,a64 --steps N --workers N --no-peers
  ddp (data parallel, not in all): --steps N --warmup N --rounds N --write <file>`;
}

if (import.meta.main) {
  const [which = "all", ...rest] = Deno.args;
  if (which === "--help" || which === "-h") {
    console.log(usage());
    Deno.exit(0);
  }
  if (which === "all" || which.startsWith("--")) {
    const args = which === "all" ? rest : Deno.args;
    const { values } = parseArgs({
      args,
      options: {
        write: { type: "string" },
        "step-rounds": { type: "string" },
        steps: { type: "string" },
        "train-rounds": { type: "string" },
      },
    });
    const write = values.write;
    const pass = write ? ["--write", write] : [];
    const stepArgs = [
      ...pass,
      ...(values["step-rounds"] ? ["--rounds", values["step-rounds"]] : []),
      ...(values.steps ? ["--steps", values.steps] : []),
    ];
    const trainArgs = [
      ...pass,
      "--peer-steps",
      ...(values["train-rounds"] ? ["--rounds", values["train-rounds"]] : []),
    ];
    const step = await import("./step.ts");
    const train = await import("./train_path.ts");
    const loadavg = () => loadAverage().split(" ")[0];
    const loads = [loadavg()];
    const s = await step.main(stepArgs);
    loads.push(loadavg());
    const t = await train.main(trainArgs);
    loads.push(loadavg());
    const md = summary(s, t) +
      `\n\nLoad average (1 min) at the start of the step phase ${loads[0]}, of the training-path ` +
      `phase ${loads[1]}, at the end ${loads[2]}: the columns that compare a step-phase number ` +
      "with a training-path number are only meaningful when these are close; the ratios within " +
      "one phase are always side by side.";
    console.log(md);
    if (write) {
      const load = loadAverage();
      await writeSection(
        write,
        "summary",
        [
          "## Summary: ours vs PyTorch 2.x and 1.13 (isolated step and training path)",
          "",
          `Produced by \`deno task bench ${Deno.args.join(" ")}\` on ${
            new Date().toISOString().slice(0, 10)
          } (load average at the end: ${load.split(" ").slice(0, 3).join(" ")}); both sections ` +
          "below come from the same invocation.",
          "",
          md,
        ].join("\n"),
      );
    }
  } else {
    const path = SUITES[which];
    if (!path) {
      console.error(
        `Cannot run benchmark '${which}': known ones are ${Object.keys(SUITES).join(", ")}, all`,
      );
      Deno.exit(2);
    }
    const mod = await import(path);
    await mod.main(rest);
  }
}
