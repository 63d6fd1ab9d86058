/**
 * Robustness cases of the command-line limits (issue 14, case 7 and the `--out` checks of case 9):
 * `--threads` / `--workers` far beyond the cores (they used to start 10,004 threads and never
 * finish a step), `RESSL_THREADS` (the default of `--threads`) likewise, and an `embed --out` that is its own input checkpoint (it used to overwrite
 * it). The harness checks that nothing is written and the checkpoint is unchanged byte for byte;
 * `tests/cli/limits_test.ts` covers every task and the read-only and folder cases.
 */
import { join } from "node:path";
import { cores } from "../../tasks/cli_flags.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import type { RobustnessCase } from "./harness.ts";
import { DEVICE, fixtureRunFlags, runFolderWith, tinyFashionMnist } from "./run_fixtures.ts";

const n = cores();
/** The refusal of a flag above the cores of this machine. */
const aboveCores = (flag: string, value: number) =>
  new RegExp(
    `Invalid flag --${flag}: ${value} is more than the ${n} cores? of this machine \\(at most ${n}\\)`,
  );

/** `train` of the fixture run into a new folder `fresh`, with `flag value` last. */
const trainWith = (flag: string, value: number) => ({
  cli: "tasks/train.ts",
  args: () => [...fixtureRunFlags("fresh"), "--max-steps", "1", `--${flag}`, String(value)],
});

/** The tiny Fashion-MNIST under `data/` and a fixture checkpoint `ck.safetensors` in `dir`. */
async function dataAndCheckpoint(dir: string): Promise<void> {
  await tinyFashionMnist(dir);
  await writeFixtureCheckpoint(join(dir, "ck.safetensors"));
}

/** kNN evaluation of `ck.safetensors` on `data/`, then `extra`. */
const evalKnn = (...extra: string[]) => () => [
  "--checkpoint",
  "ck.safetensors",
  "--protocol",
  "knn",
  "--data",
  "data",
  ...extra,
];

/** The cases; see the module doc. */
export const LIMITS_CASES: readonly RobustnessCase[] = [
  {
    name: "14.7 train --threads 10000: refused naming the cores, before a run folder exists",
    setup: (dir) => runFolderWith(dir, []),
    run: trainWith("threads", 10000),
    expect: { exitCode: 2, keywords: [aboveCores("threads", 10000)] },
  },
  {
    name: "14.7 train --workers 1000: refused naming the cores, before a run folder exists",
    setup: (dir) => runFolderWith(dir, []),
    run: trainWith("workers", 1000),
    expect: { exitCode: 2, keywords: [aboveCores("workers", 1000)] },
  },
  {
    name: "14.7 eval --threads 10000: refused before loading anything",
    setup: dataAndCheckpoint,
    run: {
      cli: "tasks/eval.ts",
      args: evalKnn("--threads", "10000"),
    },
    expect: { exitCode: 2, keywords: [aboveCores("threads", 10000)] },
  },
  {
    name: "14.7 eval with RESSL_THREADS above the cores (no --threads): refused like the flag",
    setup: dataAndCheckpoint,
    run: {
      cli: "tasks/eval.ts",
      args: evalKnn("--device", DEVICE),
      env: { RESSL_THREADS: String(n + 1) },
    },
    expect: {
      exitCode: 2,
      keywords: [
        new RegExp(
          `Invalid RESSL_THREADS='${n + 1}' \\(--threads\\): ${n + 1} is more than the ${n} cores?`,
        ),
      ],
    },
  },
  {
    name: "14.9 embed --out <its own --checkpoint>: refused before any work; the input is intact",
    setup: dataAndCheckpoint,
    run: {
      cli: "tasks/embed.ts",
      args: () => [
        "--checkpoint",
        "ck.safetensors",
        "--data",
        "data",
        "--device",
        DEVICE,
        "--out",
        "./ck.safetensors",
      ],
    },
    expect: {
      exitCode: 2,
      keywords: [
        /Invalid flag --out: '\.\/ck\.safetensors' is the --checkpoint file; writing it would overwrite the input/,
      ],
    },
  },
];
