/**
 * Synthetic labelled features with a known answer for the evaluation tests: points around random
 * class centres (N(0, 1) per coordinate), Gaussian noise, optionally L2-normalised rows.
 */
import { normalArray, RandomStream, rngKey } from "../../src/random/philox.ts";

/** Options of {@link clusters}. */
export interface ClusterOptions {
  /** Standard deviation of the noise around the centres. */
  noise: number;
  /** L2-normalise each row. */
  normalize?: boolean;
}

/**
 * `n` points of dimension `d` around the `classes` centres drawn from `seed`; labels and noise are
 * drawn from `draw`, so two calls with one `seed` and different `draw`s share the centres.
 */
export function clusters(
  seed: number,
  draw: number,
  shape: { n: number; classes: number; d: number },
  opts: ClusterOptions,
): { x: Float32Array; labels: Int32Array } {
  const { n, classes, d } = shape;
  const centres = normalArray(rngKey(seed), classes * d);
  const eps = normalArray(rngKey(draw), n * d, 0, opts.noise);
  const labels = new Int32Array(n);
  const x = new Float32Array(n * d);
  const s = new RandomStream(rngKey(draw + 1000));
  for (let i = 0; i < n; i++) {
    const c = s.int(classes);
    labels[i] = c;
    let norm = 0;
    for (let j = 0; j < d; j++) {
      const v = centres[c * d + j] + eps[i * d + j];
      x[i * d + j] = v;
      norm += v * v;
    }
    if (opts.normalize) { for (let j = 0; j < d; j++) x[i * d + j] /= Math.sqrt(norm); }
  }
  return { x, labels };
}
