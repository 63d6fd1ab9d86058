import assert from "node:assert/strict";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { clusters } from "./helpers.ts";
import {
  conditionalAffinities,
  jointAffinities,
  klDivergence,
  klGradient,
  squaredDistances,
  tsne,
} from "../../src/plot/tsne.ts";

/** Leave-one-out 1-nearest-neighbour accuracy of a 2-D map. */
function oneNnAccuracy(y: Float64Array, labels: Int32Array): number {
  const n = labels.length;
  let ok = 0;
  for (let i = 0; i < n; i++) {
    let best = Infinity, label = -1;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (y[2 * i] - y[2 * j]) ** 2 + (y[2 * i + 1] - y[2 * j + 1]) ** 2;
      if (d < best) [best, label] = [d, labels[j]];
    }
    if (label === labels[i]) ok++;
  }
  return ok / n;
}

Deno.test("conditionalAffinities: each row sums to 1, has zero diagonal and entropy log(perplexity)", () => {
  const { x } = clusters(60, 5, 3, 3);
  const n = 60, perplexity = 12;
  const p = conditionalAffinities(squaredDistances(x, n, 5), n, perplexity);
  for (let i = 0; i < n; i++) {
    let sum = 0, h = 0;
    for (let j = 0; j < n; j++) {
      const v = p[i * n + j];
      sum += v;
      if (v > 0) h -= v * Math.log(v);
    }
    assert.equal(p[i * n + i], 0);
    assert.ok(Math.abs(sum - 1) < 1e-12, `row ${i} sums to ${sum}`);
    assert.ok(Math.abs(h - Math.log(perplexity)) < 1e-4, `row ${i}: entropy ${h}`);
  }
});

Deno.test("squaredDistances matches a direct computation", () => {
  const x = [0, 0, 3, 4, 1, 1];
  const d = squaredDistances(x, 3, 2);
  assert.deepEqual(Array.from(d), [0, 25, 2, 25, 0, 13, 2, 13, 0]);
});

Deno.test("klGradient matches central differences of klDivergence", () => {
  const n = 7;
  const r = new RandomStream(rngKey(3));
  const x = Array.from({ length: n * 3 }, () => r.normal());
  const p = jointAffinities(conditionalAffinities(squaredDistances(x, n, 3), n, 2), n);
  const y = Float64Array.from({ length: 2 * n }, () => r.normal());
  const grad = new Float64Array(2 * n);
  klGradient(p, y, n, 1, grad);
  const h = 1e-6;
  for (let k = 0; k < 2 * n; k++) {
    const plus = Float64Array.from(y), minus = Float64Array.from(y);
    plus[k] += h;
    minus[k] -= h;
    const fd = (klDivergence(p, plus, n) - klDivergence(p, minus, n)) / (2 * h);
    assert.ok(
      Math.abs(fd - grad[k]) < 1e-6 + 1e-5 * Math.abs(fd),
      `coord ${k}: ${grad[k]} vs ${fd}`,
    );
  }
});

Deno.test("tsne separates well-separated clusters: 1-NN and nearest-centroid accuracy 100 % in 2-D", () => {
  const n = 160, dim = 20, k = 4;
  const { x, labels } = clusters(n, dim, k, 3);
  const { coords, kl, perplexity } = tsne(x, n, dim, { perplexity: 20, iterations: 600, seed: 5 });
  assert.equal(perplexity, 20);
  assert.ok(kl > 0 && kl < 1, `final KL ${kl}`);
  assert.equal(oneNnAccuracy(coords, labels), 1);
  const cx = new Float64Array(2 * k), count = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    cx[2 * labels[i]] += coords[2 * i];
    cx[2 * labels[i] + 1] += coords[2 * i + 1];
    count[labels[i]]++;
  }
  for (let c = 0; c < k; c++) {
    [cx[2 * c], cx[2 * c + 1]] = [cx[2 * c] / count[c], cx[2 * c + 1] / count[c]];
  }
  for (let i = 0; i < n; i++) {
    const dist = (c: number) =>
      (coords[2 * i] - cx[2 * c]) ** 2 + (coords[2 * i + 1] - cx[2 * c + 1]) ** 2;
    const nearest = [...Array(k).keys()].reduce((a, b) => (dist(b) < dist(a) ? b : a));
    assert.equal(nearest, labels[i], `point ${i} is nearer another cluster's centre`);
  }
  // centred on the origin
  let sx = 0, sy = 0;
  for (let i = 0; i < n; i++) [sx, sy] = [sx + coords[2 * i], sy + coords[2 * i + 1]];
  assert.ok(Math.abs(sx / n) < 1e-9 && Math.abs(sy / n) < 1e-9);
});

Deno.test("tsne is deterministic for a seed and changes with it", () => {
  const n = 60, dim = 8;
  const { x } = clusters(n, dim, 3, 3, 7);
  const opts = { perplexity: 10, iterations: 300 };
  const a = tsne(x, n, dim, { ...opts, seed: 1 });
  const b = tsne(x, n, dim, { ...opts, seed: 1 });
  const c = tsne(x, n, dim, { ...opts, seed: 2 });
  assert.deepEqual(a.coords, b.coords);
  assert.equal(a.kl, b.kl);
  assert.notDeepEqual(a.coords, c.coords);
});

Deno.test("tsne lowers the perplexity for few points and rejects bad input", () => {
  const { x } = clusters(10, 2, 2, 3);
  assert.equal(tsne(x, 10, 2, { iterations: 10 }).perplexity, 3);
  assert.throws(() => tsne(x, 10, 3), /20 values are not 10 points x 3/);
  assert.throws(() => tsne([1], 1, 1), /need n >= 2/);
  assert.throws(() => tsne([0, 1, NaN, 3], 2, 2), /point 1 holds NaN/);
});
