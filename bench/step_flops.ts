/**
 * Floating-point work of one ReSSL step with a CIFAR-stem ResNet-18 (no max-pool): convolutions
 * (student forward + backward-data + backward-weights, teacher forward), the projection head, and
 * the relation logits against the queue. Elementwise work (BN, ReLU, updates) is not counted.
 *
 * @module
 */

/** Shape of the benchmarked networks and step. */
export interface StepShape {
  width: number;
  inChannels: number;
  size: number;
  batch: number;
  hidden: number;
  out: number;
  queue: number;
}

/** Multiply-accumulates of one image through the backbone's convolutions: [stem, rest]. */
export function resnet18ConvMacs(
  width: number,
  inChannels: number,
  size: number,
): [number, number] {
  const out = (s: number, stride: number) => Math.floor((s + 2 - 3) / stride) + 1;
  let s = size;
  const stem = width * inChannels * 9 * s * s;
  let rest = 0, c = width;
  for (const [stage, k] of [width, 2 * width, 4 * width, 8 * width].entries()) {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const o = out(s, stride);
      rest += k * c * 9 * o * o + k * k * 9 * o * o;
      if (stride !== 1 || c !== k) rest += k * c * o * o; // 1x1 downsample
      s = o;
      c = k;
    }
  }
  return [stem, rest];
}

/** FLOPs (2 per multiply-accumulate) of one training step. */
export function stepFlops(p: StepShape): number {
  const [stem, rest] = resnet18ConvMacs(p.width, p.inChannels, p.size);
  const fwd = stem + rest;
  // student: forward, backward-weights everywhere, backward-data except the stem; teacher: forward
  const conv = p.batch * (fwd + fwd + rest + fwd);
  const headMacs = p.batch * (8 * p.width * p.hidden + p.hidden * p.out);
  const head = 3 * headMacs + headMacs;
  const logits = 3 * p.batch * p.queue * p.out; // q Q^T, k Q^T, dq = dlogits Q
  return 2 * (conv + head + logits);
}

/** One convolution of the backbone and how many times one forward pass runs it. */
export interface ConvShape {
  c: number;
  h: number;
  k: number;
  r: number;
  stride: number;
  pad: number;
  /** Output height (= width). */
  out: number;
  /** Occurrences per forward pass. */
  count: number;
}

/** The distinct convolutions of a CIFAR-stem ResNet-18 (square inputs), with their counts. */
export function resnet18ConvShapes(width: number, inChannels: number, size: number): ConvShape[] {
  const out = (s: number, r: number, stride: number, pad: number) =>
    Math.floor((s + 2 * pad - r) / stride) + 1;
  const list: ConvShape[] = [];
  const add = (c: number, h: number, k: number, r: number, stride: number) => {
    const pad = r === 3 ? 1 : 0;
    const o = out(h, r, stride, pad);
    const same = list.find((x) =>
      x.c === c && x.h === h && x.k === k && x.r === r && x.stride === stride
    );
    if (same) same.count++;
    else list.push({ c, h, k, r, stride, pad, out: o, count: 1 });
    return o;
  };
  let s = add(inChannels, size, width, 3, 1);
  let c = width;
  for (const [stage, k] of [width, 2 * width, 4 * width, 8 * width].entries()) {
    for (let b = 0; b < 2; b++) {
      const stride = stage > 0 && b === 0 ? 2 : 1;
      const o = add(c, s, k, 3, stride);
      add(k, o, k, 3, 1);
      if (stride !== 1 || c !== k) add(c, s, k, 1, stride);
      s = o;
      c = k;
    }
  }
  return list;
}
