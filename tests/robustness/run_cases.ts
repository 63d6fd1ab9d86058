/**
 * Robustness cases of the run folder, checkpoints and evaluation (issue 14, cases 1, 2, 3, 6, 9;
 * issue 13's resume): each through the command line a user runs, asserting the exit code, the
 * message's key words, no stack trace, and that the folder (run folder, checkpoints, metrics)
 * holds exactly what it held before. The success paths (stale temporaries removed, resume from a
 * run folder with its own settings, a torn metrics line dropped, a branch) are in
 * `tests/run/resume_cli_test.ts`.
 */
import { join } from "node:path";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import { RunLock } from "../../src/run/run_lock.ts";
import type { RobustnessCase } from "./harness.ts";
import {
  checkpointAt,
  DEVICE,
  editMeta,
  fixtureRunFlags,
  poison,
  runFolderWith,
  tinyFashionMnist,
  torchvisionWeights,
} from "./run_fixtures.ts";

const TRAIN = "tasks/train.ts";
const EVAL = "tasks/eval.ts";
/** Bounded runs: a run that should have been refused stops early instead of training on. */
const SHORT = ["--max-steps", "8"];

/** `train --resume <checkpoint of step>` of a run folder holding checkpoints `steps`, after `edit`. */
function resumeCrafted(
  name: string,
  edit: (meta: Record<string, unknown>) => void,
  keywords: RegExp[],
): RobustnessCase {
  return {
    name,
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await editMeta(checkpointAt(join(dir, "run"), 7), edit);
    },
    run: {
      cli: TRAIN,
      args: () => [...fixtureRunFlags("run"), ...SHORT, "--resume"],
    },
    expect: { exitCode: 1, keywords: [/checkpoint-000000007\.safetensors/, ...keywords] },
  };
}

/** A case folder with the tiny data and a fixture checkpoint `ck.safetensors` (NaN if asked). */
async function evalFolder(dir: string, poisoned?: string): Promise<void> {
  await tinyFashionMnist(dir);
  await writeFixtureCheckpoint(join(dir, "ck.safetensors"));
  if (poisoned) await poison(join(dir, "ck.safetensors"), poisoned);
}

const NAN_TENSOR = "student/backbone.conv1.weight";
const NAN_NAMED = /tensor 'student\/backbone\.conv1\.weight' holds NaN at element 0/;

/** The cases; see the module doc. */
export const RUN_CASES: readonly RobustnessCase[] = [
  {
    name: "14.1 eval: a linear probe that diverges (--lr 1e308) fails instead of reporting 100 %",
    setup: (dir) => evalFolder(dir),
    run: {
      cli: EVAL,
      args: () => [
        "--checkpoint",
        "ck.safetensors",
        "--protocol",
        "linear",
        "--fast",
        "--lr",
        "1e308",
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--data",
        "data",
        "--device",
        DEVICE,
        "--out",
        "result.json",
      ],
    },
    expect: {
      exitCode: 1,
      keywords: [/Cannot evaluate: the probe's training loss is (NaN|-?Infinity)/, /lower --lr/],
    },
  },
  {
    name: "14.2 train: resuming an older checkpoint over newer ones is refused, nothing is lost",
    setup: (dir) => runFolderWith(dir, [7, 14]),
    run: {
      cli: TRAIN,
      args: () => [
        ...fixtureRunFlags("run"),
        "--resume",
        "run/checkpoint-000000007.safetensors",
        ...SHORT,
      ],
    },
    expect: {
      exitCode: 1,
      keywords: [
        /checkpoint-000000007\.safetensors' \(step 7\): run folder 'run' holds newer checkpoints \(step 14\)/,
        /--resume run\)/,
        /--out <new folder>/,
      ],
    },
  },
  {
    name: "14.2 train: branching a checkpoint into a folder of another run is refused",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await Deno.mkdir(join(dir, "other"));
      await writeFixtureCheckpoint(checkpointAt(join(dir, "other"), 14), { step: 14 });
    },
    run: {
      cli: TRAIN,
      args: () => [
        ...fixtureRunFlags("other"),
        "--resume",
        "run/checkpoint-000000007.safetensors",
        ...SHORT,
      ],
    },
    expect: {
      exitCode: 1,
      keywords: [/into run folder 'other': that folder holds the checkpoints of another run/],
    },
  },
  {
    name: "14.3 train: a second trainer on a locked run folder is refused naming the holder's pid",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      const lock = await RunLock.acquire(join(dir, "run"));
      return { close: () => Promise.resolve(lock.release()) };
    },
    run: { cli: TRAIN, args: () => [...fixtureRunFlags("run"), ...SHORT, "--resume"] },
    expect: {
      exitCode: 1,
      keywords: [
        /Cannot use run folder 'run': another trainer is using it/,
        new RegExp(`pid ${Deno.pid} on host `),
      ],
    },
  },
  {
    name: "14.3 train: a fresh run into a locked folder is refused before writing anything",
    setup: async (dir) => {
      await tinyFashionMnist(dir);
      await Deno.writeTextFile(join(dir, "tiny.json"), "{}");
      const lock = await RunLock.acquire(join(dir, "busy"));
      return { close: () => Promise.resolve(lock.release()) };
    },
    run: {
      cli: TRAIN,
      args: () => [...fixtureRunFlags("busy"), "--config", "tiny.json", "--max-steps", "1"],
    },
    expect: {
      exitCode: 1,
      keywords: [new RegExp(`another trainer is using it \\(pid ${Deno.pid}`)],
    },
  },
  {
    name: "14.6 eval: NaN weights are refused at load, naming the tensor",
    setup: (dir) => evalFolder(dir, NAN_TENSOR),
    run: {
      cli: EVAL,
      args: () => [
        "--checkpoint",
        "ck.safetensors",
        "--protocol",
        "knn",
        "--data",
        "data",
        "--device",
        DEVICE,
      ],
    },
    expect: { exitCode: 1, keywords: [/ck\.safetensors/, NAN_NAMED] },
  },
  {
    name: "14.6 export: NaN weights are refused at load, no output written",
    setup: (dir) => evalFolder(dir, NAN_TENSOR),
    run: {
      cli: "tasks/export.ts",
      args: () => ["--checkpoint", "ck.safetensors", "--out", "backbone.safetensors"],
    },
    expect: { exitCode: 1, keywords: [/ck\.safetensors/, NAN_NAMED] },
  },
  {
    name: "14.6 train --init: NaN weights are refused naming the tensor, no run folder left",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await torchvisionWeights(checkpointAt(join(dir, "run"), 7), join(dir, "w.safetensors"));
      await poison(join(dir, "w.safetensors"), "layer1.0.bn1.running_var", Infinity);
    },
    run: {
      cli: TRAIN,
      args: () => [...fixtureRunFlags("fresh"), "--init", "w.safetensors", ...SHORT],
    },
    expect: {
      exitCode: 1,
      keywords: [
        /Cannot load --init weights 'w\.safetensors'/,
        /tensor 'layer1\.0\.bn1\.running_var' holds \+Infinity at element 0/,
      ],
    },
  },
  {
    name: "14.6 train --resume: a checkpoint holding NaN is refused naming the tensor",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await poison(checkpointAt(join(dir, "run"), 7), "momentum/head.0.weight");
    },
    run: { cli: TRAIN, args: () => [...fixtureRunFlags("run"), ...SHORT, "--resume"] },
    expect: {
      exitCode: 1,
      keywords: [/tensor 'momentum\/head\.0\.weight' holds NaN at element 0/],
    },
  },
  {
    name: "13 train --resume RUN_DIR: flags that differ from the run are refused, naming each",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await Deno.writeTextFile(join(dir, "other.json"), JSON.stringify({ logEvery: 5 }));
    },
    run: {
      cli: TRAIN,
      args: () => [
        "--resume",
        "run",
        "--lr",
        "0.1",
        "--width",
        "8",
        "--config",
        "other.json",
        "--limit",
        "64",
      ],
    },
    expect: {
      exitCode: 2,
      keywords: [
        /Cannot resume from 'run\/checkpoint-000000007\.safetensors'/,
        /--lr 0\.1 differs from the run's 0\.06/,
        /--width 8 differs from the run's 4/,
        /--config other\.json sets 'logEvery' to 5, the run's is 20/,
        /--limit 64 differs from the run's 224 images/,
      ],
    },
  },
  {
    name: "13 train --resume without a path and without --out says what to give",
    setup: () => {},
    run: { cli: TRAIN, args: () => ["--resume"] },
    expect: { exitCode: 2, keywords: [/--resume <run folder> or --resume <checkpoint>/] },
  },
  {
    name: "13 train --resume of a folder without checkpoints says so",
    setup: (dir) => Deno.mkdir(join(dir, "empty")),
    run: { cli: TRAIN, args: () => ["--resume", "empty"] },
    expect: { exitCode: 1, keywords: [/run folder 'empty' holds no checkpoint/] },
  },
  resumeCrafted('14.9 train --resume: metadata step "2" (a string) is refused', (m) => {
    m.step = "2";
  }, [/'step' is "2", expected an integer >= 0/]),
  resumeCrafted("14.9 train --resume: metadata step -5 is refused", (m) => {
    m.step = -5;
  }, [/'step' is -5, expected an integer >= 0/]),
  resumeCrafted("14.9 train --resume: metadata step 2.5 is refused", (m) => {
    m.step = 2.5;
  }, [/'step' is 2.5, expected an integer >= 0/]),
  resumeCrafted("14.9 train --resume: metadata step 10^15 is refused", (m) => {
    m.step = 1e15;
  }, [/its step 1000000000000000 is beyond the run's last step 1400 \(200 epochs of 7 steps\)/]),
  resumeCrafted("14.9 train --resume: metadata without a config is refused", (m) => {
    delete m.config;
  }, [/its metadata has no training configuration/]),
  {
    name: "14.9 eval: crafted metadata (step -5) is refused",
    setup: async (dir) => {
      await evalFolder(dir);
      await editMeta(join(dir, "ck.safetensors"), (m) => (m.step = -5));
    },
    run: {
      cli: EVAL,
      args: () => ["--checkpoint", "ck.safetensors", "--protocol", "knn", "--data", "data"],
    },
    expect: { exitCode: 1, keywords: [/ck\.safetensors/, /'step' is -5/] },
  },
];
