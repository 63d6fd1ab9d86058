/**
 * Inputs of the run-folder robustness cases (`run_cases.ts`): a tiny Fashion-MNIST in IDX files,
 * a run folder holding checkpoints of the evaluation fixture's network (width 4, batch 32, 224
 * images: 7 steps an epoch), the flags that give `train` that run's configuration, and
 * checkpoints or weights with crafted metadata or non-finite values.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { checkpointName } from "../../src/io/checkpoint.ts";
import {
  readSafetensors,
  type SafetensorsMap,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";

/** Images of the tiny Fashion-MNIST's train split (the fixture checkpoints' `images`). */
export const TRAIN_IMAGES = 224;
/** Steps an epoch of the fixture's run (224 images, batch 32). */
export const STEPS_PER_EPOCH = 7;

const dnnl = ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/libdnnl.so.2"].some(existsSync);
/** The backend the cases run on: oneDNN where installed, else the reference. */
export const DEVICE = dnnl ? "cpu" : "reference";

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  dims.forEach((d, k) => new DataView(out.buffer).setUint32(4 + 4 * k, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

/** Writes a tiny Fashion-MNIST (224 train, 32 test images of 28x28) into `<dir>/data/fashion-mnist`. */
export async function tinyFashionMnist(dir: string): Promise<void> {
  const root = join(dir, "data", "fashion-mnist");
  await Deno.mkdir(root, { recursive: true });
  for (const [split, n] of [["train", TRAIN_IMAGES], ["t10k", 32]] as const) {
    const pixels = Uint8Array.from({ length: n * 784 }, (_, k) => (k * 2654435761) >>> 24);
    const labels = Uint8Array.from({ length: n }, (_, k) => k % 10);
    await Deno.writeFile(join(root, `${split}-images-idx3-ubyte`), idx([n, 28, 28], pixels));
    await Deno.writeFile(join(root, `${split}-labels-idx1-ubyte`), idx([n], labels));
  }
}

/**
 * Flags that make `train` (on the tiny data in the case's folder) the fixture's run: a resume
 * gives them again and they agree.
 */
export function fixtureRunFlags(out: string): string[] {
  return [
    "--preset",
    "fashion-mnist",
    "--width",
    "4",
    "--batch-size",
    "32",
    "--seed",
    "3",
    "--config",
    "tiny.json",
    "--data",
    "data",
    "--limit",
    String(TRAIN_IMAGES),
    "--device",
    DEVICE,
    "--threads",
    "1",
    "--workers",
    "0",
    "--plain",
    "--out",
    out,
  ];
}

/**
 * A case folder with the tiny data, `tiny.json` and a run folder `run/` holding fixture
 * checkpoints of `steps`, with `config.json` and `metrics.jsonl` as a trainer leaves them.
 */
export async function runFolderWith(dir: string, steps: number[]): Promise<void> {
  await tinyFashionMnist(dir);
  await Deno.writeTextFile(
    join(dir, "tiny.json"),
    JSON.stringify({ head: { hidden: 16, out: 8 }, ressl: { queueSize: 64 } }),
  );
  const run = join(dir, "run");
  await Deno.mkdir(run);
  let config: unknown;
  for (const step of steps) {
    config = await writeFixtureCheckpoint(checkpointAt(run, step), { step });
  }
  const last = Math.max(...steps);
  const lines = Array.from(
    { length: last },
    (_, i) =>
      JSON.stringify({
        kind: "step",
        step: i + 1,
        epoch: Math.floor(i / STEPS_PER_EPOCH),
        loss: 1,
      }),
  );
  await Deno.writeTextFile(join(run, "metrics.jsonl"), lines.join("\n") + "\n");
  await Deno.writeTextFile(
    join(run, "config.json"),
    JSON.stringify({ config, run: { preset: "fashion-mnist", limit: TRAIN_IMAGES } }, null, 2),
  );
}

/** The path of the checkpoint of `step` in run folder `run`. */
export function checkpointAt(run: string, step: number): string {
  return join(run, checkpointName(step));
}

/** Rewrites the checkpoint at `path` with its metadata edited by `edit`. */
export async function editMeta(
  path: string,
  edit: (meta: Record<string, unknown>) => void,
): Promise<void> {
  const file = await readSafetensors(path);
  const meta = JSON.parse(file.metadata.meta);
  edit(meta);
  await writeSafetensors(path, file.tensors, {
    metadata: { ...file.metadata, meta: JSON.stringify(meta) },
  });
}

/** Rewrites the safetensors file at `path` with value 0 of tensor `name` set to `value`. */
export async function poison(path: string, name: string, value = NaN): Promise<void> {
  const file = await readSafetensors(path);
  const entry = file.tensors[name];
  if (!entry) throw new Error(`poison: no tensor '${name}' in '${path}'`);
  (entry.data as Float32Array)[0] = value;
  await writeSafetensors(path, file.tensors, { metadata: file.metadata });
}

/** Writes the student backbone of fixture checkpoint `ckpt` with torchvision names to `out`. */
export async function torchvisionWeights(ckpt: string, out: string): Promise<void> {
  const file = await readSafetensors(ckpt);
  const tensors: SafetensorsMap = {};
  for (const [name, entry] of Object.entries(file.tensors)) {
    for (const prefix of ["student/backbone.", "student_buffers/"]) {
      if (name.startsWith(prefix)) tensors[name.slice(prefix.length)] = entry;
    }
  }
  await writeSafetensors(out, tensors);
}
