/**
 * Writes images of the real Fashion-MNIST as PNG files into class folders, to try
 * `deno task train --data <folder>` (docs/own-data.md) before pointing it at one's own photos:
 *
 * ```sh
 * deno run --allow-read --allow-write examples/make_image_folder.ts /tmp/fashion-png 3000
 * # /tmp/fashion-png/Bag/00017.png, /tmp/fashion-png/Coat/00004.png, ...
 * ```
 *
 * The images are the first N of the training split (Debian's copy, or `--data`-style folder as
 * the third argument), grey values written as 8-bit RGB PNGs.
 *
 * @module
 */

import { PNG } from "pngjs";
import type { Buffer } from "node:buffer";
import { DEBIAN_FASHION_MNIST_DIR, readIdxDataset } from "../src/data/datasets/mod.ts";

const [out, count = "3000", from = DEBIAN_FASHION_MNIST_DIR] = Deno.args;
if (!out) {
  console.error("usage: examples/make_image_folder.ts <out-dir> [count] [fashion-mnist dir]");
  Deno.exit(2);
}
const ds = await readIdxDataset({ root: from, split: "train" });
const n = Math.min(Number(count), ds.length);
const classes = ds.classes ?? [];
const px = ds.height * ds.width;
for (let i = 0; i < n; i++) {
  const name = classes[ds.labels![i]].replaceAll("/", "-");
  await Deno.mkdir(`${out}/${name}`, { recursive: true });
  const png = new PNG({ width: ds.width, height: ds.height });
  for (let p = 0; p < px; p++) {
    const v = ds.images![i * px + p];
    png.data.set([v, v, v, 255], p * 4);
  }
  await Deno.writeFile(
    `${out}/${name}/${String(i).padStart(5, "0")}.png`,
    new Uint8Array(PNG.sync.write(png) as Buffer),
  );
}
console.log(`wrote ${n} PNG images of ${classes.length} classes into ${out}`);
