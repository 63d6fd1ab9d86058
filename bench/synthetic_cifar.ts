/**
 * A synthetic CIFAR-10 dataset in the real binary format, for the training-path benchmark of the
 * CIFAR-shaped case (`bench/train_path.ts`, case a64) where the real files are not on the machine:
 * a training step's time does not depend on the pixel values, so deterministic pseudo-random bytes
 * in the layout `src/data/datasets/cifar.ts` reads are a faithful timing input.
 *
 * Writes `<root>/cifar-10-batches-bin/data_batch_1.bin` .. `data_batch_5.bin` and `test_batch.bin`:
 * records of 1 label byte (0-9) + 3072 pixel bytes (the red, green and blue planes of 32x32, each
 * row-major), every byte from Philox (`src/random/philox.ts`) under a seed and the file's name.
 *
 * @module
 */

import { foldIn, nameId, RandomStream, rngKey } from "../src/random/philox.ts";

/** Bytes of one CIFAR-10 record: a label byte and 3 planes of 32x32 pixels. */
export const CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32;

/** Record counts of the files {@link writeSyntheticCifar10} writes. */
export interface SyntheticCifarCounts {
  /** Records of `data_batch_1.bin` (the first images of the training split). */
  first: number;
  /** Records of each of `data_batch_2.bin` .. `data_batch_5.bin` (the reader needs each file). */
  others: number;
  /** Records of `test_batch.bin`. */
  test: number;
}

/**
 * `n` CIFAR-10 records of pseudo-random bytes from `stream`: labels uniform in 0..9, pixels
 * uniform in 0..255.
 */
export function syntheticCifarRecords(n: number, stream: RandomStream): Uint8Array {
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot make synthetic CIFAR-10 records: count ${n} is not an integer >= 1`,
    );
  }
  const out = new Uint8Array(n * CIFAR10_RECORD_BYTES);
  const words = new Uint32Array(CIFAR10_RECORD_BYTES - 1 >> 2);
  const pixels = new Uint8Array(words.buffer);
  for (let i = 0; i < n; i++) {
    const base = i * CIFAR10_RECORD_BYTES;
    out[base] = stream.int(10);
    for (let w = 0; w < words.length; w++) words[w] = stream.nextU32();
    out.set(pixels, base + 1);
  }
  return out;
}

/**
 * Writes a synthetic CIFAR-10 dataset (see the module doc) under `root` and returns `root`, the
 * folder to give `deno task train --data`. `first` must cover the images a run trains on
 * (`--limit`); the other files are small.
 */
export async function writeSyntheticCifar10(
  root: string,
  counts: SyntheticCifarCounts,
  seed = 0,
): Promise<string> {
  const dir = `${root}/cifar-10-batches-bin`;
  await Deno.mkdir(dir, { recursive: true });
  const files: [string, number][] = [
    ["data_batch_1.bin", counts.first],
    ...[2, 3, 4, 5].map((k): [string, number] => [`data_batch_${k}.bin`, counts.others]),
    ["test_batch.bin", counts.test],
  ];
  const key = rngKey(seed);
  for (const [name, n] of files) {
    const stream = new RandomStream(foldIn(key, nameId(name)));
    await Deno.writeFile(`${dir}/${name}`, syntheticCifarRecords(n, stream));
  }
  return root;
}
