/** Synthetic data shared by the plot tests. */

import { readFileSync } from "node:fs";
// @ts-types="@types/pngjs"
import { PNG } from "pngjs";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

/** `k` Gaussian clusters (unit noise, centres ~N(0, spread^2)) in `dim` dimensions, labels i % k. */
export function clusters(n: number, dim: number, k: number, spread: number, seed = 1) {
  const r = new RandomStream(rngKey(seed));
  const centres = Array.from({ length: k * dim }, () => spread * r.normal());
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % k;
    for (let d = 0; d < dim; d++) x[i * dim + d] = centres[labels[i] * dim + d] + r.normal();
  }
  return { x, labels };
}

/** Decodes a PNG file (pngjs): width, height and RGBA pixels. */
export function readPng(path: string): PNG {
  return PNG.sync.read(readFileSync(path));
}
