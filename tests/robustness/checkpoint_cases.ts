/**
 * Robustness cases of checkpoint files as the commands read them (issue 14, cases 6 and 9, and the
 * earlier corrupt checkpoints): a header or metadata that repeats a key, a truncated checkpoint,
 * garbage instead of a checkpoint, NaN weights for `embed`, and an `--out` below a file. Each
 * through the command line a user runs (or the header-only reader a resume plans with),
 * asserting the exit code, the message's key words, no stack trace, and that nothing is written.
 */
import { join } from "node:path";
import { readCheckpointMeta } from "../../src/io/checkpoint.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import type { RobustnessCase } from "./harness.ts";
import {
  checkpointAt,
  DEVICE,
  fixtureRunFlags,
  poison,
  runFolderWith,
  tinyFashionMnist,
} from "./run_fixtures.ts";

/**
 * Rewrites the safetensors file at `path` with its header text replaced by `edit(header)` (the
 * data bytes unchanged; offsets are relative to the data, so they stay valid).
 */
async function editHeader(path: string, edit: (header: string) => string): Promise<void> {
  const bytes = await Deno.readFile(path);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextEncoder().encode(
    edit(new TextDecoder().decode(bytes.subarray(8, 8 + n)).trimEnd()),
  );
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(8 + header.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
  out.set(header, 8);
  out.set(data, 8 + header.length);
  await Deno.writeFile(path, out);
}

/** The header with the entry of its first tensor written a second time, as the last key. */
function repeatFirstTensor(header: string): string {
  const parsed = JSON.parse(header) as Record<string, unknown>;
  const name = Object.keys(parsed).find((k) => k !== "__metadata__")!;
  return `${header.slice(0, -1)},${JSON.stringify(name)}:${JSON.stringify(parsed[name])}}`;
}

/** The header with `"step":14` put before the checkpoint metadata's own step (JSON.parse keeps the last). */
function repeatStepInMeta(header: string): string {
  const parsed = JSON.parse(header) as { __metadata__: { meta: string } };
  parsed.__metadata__.meta = parsed.__metadata__.meta.replace(/^\{/, '{"step":14,');
  return JSON.stringify(parsed);
}

/** A case folder with the tiny data and a fixture checkpoint `ck.safetensors`. */
async function evalFolder(dir: string): Promise<string> {
  await tinyFashionMnist(dir);
  const ck = join(dir, "ck.safetensors");
  await writeFixtureCheckpoint(ck);
  return ck;
}

const EVAL = "tasks/eval.ts";
const knn = (checkpoint: string, ...more: string[]) => ({
  cli: EVAL,
  args: () => [
    "--checkpoint",
    checkpoint,
    "--protocol",
    "knn",
    "--data",
    "data",
    "--device",
    DEVICE,
    ...more,
  ],
});

/** 16 bytes of noise where a checkpoint should be; its first 8 bytes read as a header length
 * of 12993996055297093133. */
const NOISE = Uint8Array.from({ length: 16 }, (_, k) => (k * 97 + 13) & 255);
const NOT_A_CHECKPOINT =
  /Cannot load checkpoint 'ck\.safetensors': it is not a safetensors checkpoint \(its first 8 bytes give a header length of 12993996055297093133, but the file has 16 bytes\)/;

/** The cases; see the module doc. */
export const CHECKPOINT_CASES: readonly RobustnessCase[] = [
  {
    name: "14.9 eval: a checkpoint whose header names a tensor twice is refused",
    setup: async (dir) => editHeader(await evalFolder(dir), repeatFirstTensor),
    run: knn("ck.safetensors"),
    expect: {
      keywords: [
        /Cannot load checkpoint 'ck\.safetensors'/,
        /duplicate key 'student\/backbone\.conv1\.weight' in the header/,
      ],
    },
  },
  {
    name: "14.9 eval: a checkpoint whose metadata repeats a key ('step') is refused",
    setup: async (dir) => editHeader(await evalFolder(dir), repeatStepInMeta),
    run: knn("ck.safetensors", "--out", "result.json"),
    expect: {
      keywords: [
        /Cannot load checkpoint 'ck\.safetensors'/,
        /duplicate key 'step' in its metadata/,
      ],
    },
  },
  {
    name: "14.9 resume planning: the header-only reader refuses a repeated key too",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      await editHeader(checkpointAt(join(dir, "run"), 7), repeatFirstTensor);
    },
    run: { call: (dir) => readCheckpointMeta(checkpointAt(join(dir, "run"), 7)) },
    expect: {
      errorName: "Error",
      keywords: [/checkpoint-000000007\.safetensors/, /duplicate key 'student\/backbone\.conv1/],
    },
  },
  {
    name: "14.6 embed: NaN weights are refused at load, naming the tensor; no output written",
    setup: async (dir) => {
      await poison(await evalFolder(dir), "student/backbone.conv1.weight");
    },
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
        "emb.safetensors",
      ],
    },
    expect: {
      keywords: [
        /Cannot load checkpoint 'ck\.safetensors'/,
        /tensor 'student\/backbone\.conv1\.weight' holds NaN at element 0/,
      ],
    },
  },
  {
    name: "14 eval: a truncated checkpoint (a run folder's newest) is refused naming it",
    setup: async (dir) => {
      await runFolderWith(dir, [7, 14]);
      const ck = checkpointAt(join(dir, "run"), 14);
      const bytes = await Deno.readFile(ck);
      await Deno.writeFile(ck, bytes.subarray(0, bytes.length >> 1));
    },
    run: knn("run", "--out", "result.json"),
    expect: { keywords: [/checkpoint-000000014\.safetensors'/, /\(truncated\?\)/] },
  },
  {
    name: "14 train --resume: a truncated checkpoint is refused naming it; the folder is untouched",
    setup: async (dir) => {
      await runFolderWith(dir, [7]);
      const ck = checkpointAt(join(dir, "run"), 7);
      const bytes = await Deno.readFile(ck);
      await Deno.writeFile(ck, bytes.subarray(0, bytes.length - 100));
    },
    run: { cli: "tasks/train.ts", args: () => ["--resume", "run", "--max-steps", "8"] },
    expect: {
      keywords: [
        /checkpoint-000000007\.safetensors'/,
        /the file is \d+ bytes, its header describes/,
      ],
    },
  },
  {
    name: "14 export: garbage instead of a checkpoint is refused; no output written",
    setup: (dir) => Deno.writeTextFile(join(dir, "ck.safetensors"), "<html>404</html>"), // 16 bytes
    run: {
      cli: "tasks/export.ts",
      args: () => ["--checkpoint", "ck.safetensors", "--out", "backbone.safetensors"],
    },
    expect: {
      keywords: [
        /Cannot load checkpoint 'ck\.safetensors': it is not a safetensors checkpoint \(its first 8 bytes give a header length of 3473469848023230524, but the file has 16 bytes\)/,
      ],
    },
  },
  {
    name: "14 export: 16 bytes of noise as a checkpoint are named not a checkpoint, in user terms",
    setup: (dir) => Deno.writeFile(join(dir, "ck.safetensors"), NOISE),
    run: {
      cli: "tasks/export.ts",
      args: () => ["--checkpoint", "ck.safetensors", "--out", "backbone.safetensors"],
    },
    expect: { keywords: [NOT_A_CHECKPOINT] },
  },
  {
    name: "14 eval: 16 bytes of noise as --checkpoint are named not a checkpoint",
    setup: async (dir) => {
      await tinyFashionMnist(dir);
      await Deno.writeFile(join(dir, "ck.safetensors"), NOISE);
    },
    run: knn("ck.safetensors", "--out", "result.json"),
    expect: { keywords: [NOT_A_CHECKPOINT] },
  },
  {
    name: "14 train --resume: 16 bytes of noise are named not a checkpoint (header-only reader)",
    setup: (dir) => Deno.writeFile(join(dir, "ck.safetensors"), NOISE),
    run: { cli: "tasks/train.ts", args: () => ["--resume", "ck.safetensors", "--max-steps", "8"] },
    expect: { keywords: [NOT_A_CHECKPOINT] },
  },
  {
    name: "14 train --init: 16 bytes of noise are named not a safetensors file; no run folder left",
    setup: async (dir) => {
      await runFolderWith(dir, [7]); // the data and the config the fixture run's flags name
      await Deno.writeFile(join(dir, "w.safetensors"), NOISE);
    },
    run: {
      cli: "tasks/train.ts",
      args: () => [...fixtureRunFlags("fresh"), "--init", "w.safetensors", "--max-steps", "8"],
    },
    expect: {
      keywords: [
        /Cannot load --init weights 'w\.safetensors': it is not a safetensors file \(its first 8 bytes give a header length of 12993996055297093133, but the file has 16 bytes\)/,
      ],
    },
  },
  {
    name: "14.9 eval --out below a file: named as a file before any work (not 'does not exist')",
    setup: async (dir) => {
      await evalFolder(dir);
      await Deno.writeTextFile(join(dir, "notes"), "a file");
    },
    run: knn("ck.safetensors", "--out", "notes/result.json"),
    expect: { exitCode: 2, keywords: [/Invalid flag --out: 'notes' is a file, expected a folder/] },
  },
];
