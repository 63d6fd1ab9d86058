/**
 * Argument checks shared by every backend (through the kernel table and `validateKernel`), worded
 * the same everywhere: `Cannot run conv2dForward: 'n' is -1, expected an integer >= 1`.
 *
 * @module
 */

import type {
  AugmentStep,
  BatchNormGeometry,
  Conv2dGeometry,
  Opts,
  Pool2dGeometry,
} from "./backend.ts";
import { outputSize } from "./backend.ts";

/** Checks that each named dimension is an integer >= `min` (default 0, element counts). */
export function checkDims(kernel: string, dims: Record<string, number>, min = 0): void {
  for (const [name, v] of Object.entries(dims)) {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
      throw new RangeError(
        `Cannot run ${kernel}: '${name}' is ${String(v)}, expected an integer >= ${min}`,
      );
    }
  }
}

/** Checks that each named scalar is a finite number. */
export function checkScalars(kernel: string, scalars: Record<string, number>): void {
  for (const [name, v] of Object.entries(scalars)) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new RangeError(
        `Cannot run ${kernel}: '${name}' is ${String(v)}, expected a finite number`,
      );
    }
  }
}

/** Checks a convolution geometry: positive sizes and strides, pads >= 0, consistent outH/outW. */
export function checkConvGeometry(kernel: string, g: Conv2dGeometry): void {
  checkDims(kernel, { n: g.n, c: g.c, h: g.h, w: g.w, k: g.k, r: g.r, s: g.s }, 1);
  checkDims(kernel, { strideH: g.strideH, strideW: g.strideW }, 1);
  checkDims(kernel, { padH: g.padH, padW: g.padW }, 0);
  checkOutput(kernel, "outH", g.outH, outputSize(g.h, g.r, g.strideH, g.padH));
  checkOutput(kernel, "outW", g.outW, outputSize(g.w, g.s, g.strideW, g.padW));
}

/** Checks a pooling geometry, including PyTorch's rule that a pad is at most half the window. */
export function checkPoolGeometry(kernel: string, g: Pool2dGeometry): void {
  checkDims(kernel, { n: g.n, c: g.c, h: g.h, w: g.w, kernelH: g.kernelH, kernelW: g.kernelW }, 1);
  checkDims(kernel, { strideH: g.strideH, strideW: g.strideW }, 1);
  checkDims(kernel, { padH: g.padH, padW: g.padW }, 0);
  if (2 * g.padH > g.kernelH || 2 * g.padW > g.kernelW) {
    throw new RangeError(
      `Cannot run ${kernel}: padding ${g.padH}x${g.padW} exceeds half the window ` +
        `${g.kernelH}x${g.kernelW} (as PyTorch, a pad may be at most half the kernel size)`,
    );
  }
  checkOutput(kernel, "outH", g.outH, outputSize(g.h, g.kernelH, g.strideH, g.padH));
  checkOutput(kernel, "outW", g.outW, outputSize(g.w, g.kernelW, g.strideW, g.padW));
}

function checkOutput(kernel: string, name: string, got: number, expected: number): void {
  if (expected < 1) {
    throw new RangeError(
      `Cannot run ${kernel}: the window is larger than the padded input (${name} would be ${expected})`,
    );
  }
  if (got !== expected) {
    throw new RangeError(
      `Cannot run ${kernel}: geometry '${name}' is ${String(got)}, expected ${expected} ` +
        `(floor((in + 2 pad - kernel) / stride) + 1)`,
    );
  }
}

/** Checks an eps: finite and >= 0. */
export function checkEps(kernel: string, eps: number): void {
  checkScalars(kernel, { eps });
  if (eps < 0) throw new RangeError(`Cannot run ${kernel}: 'eps' is ${eps}, expected eps >= 0`);
}

/** Checks a batch-norm geometry (n, c, hw >= 1) and eps. */
export function checkBatchNorm(kernel: string, g: BatchNormGeometry, eps: number): void {
  checkDims(kernel, { n: g.n, c: g.c, hw: g.hw }, 1);
  checkEps(kernel, eps);
}

/**
 * Checks the part selection of the SyncBN merge kernels: `take` >= 1 parts from row `first` in
 * steps of `stride` >= 1, all below `rows`.
 */
export function checkPartRows(
  kernel: string,
  o: { rows: number; first: number; stride: number; take: number },
): void {
  checkDims(kernel, { rows: o.rows, stride: o.stride, take: o.take }, 1);
  checkDims(kernel, { first: o.first }, 0);
  const last = o.first + (o.take - 1) * o.stride;
  if (last >= o.rows) {
    throw new RangeError(
      `Cannot run ${kernel}: parts ${o.first}, ${o.first} + ${o.stride}, ... (${o.take} of them) ` +
        `reach row ${last}, but only ${o.rows} rows are given`,
    );
  }
}

/** Checks the options of `sgdUpdateMulti` that the table cannot express. */
export function checkSgdMulti(kernel: string, o: Opts<"sgdUpdateMulti">): void {
  const count = o.params.length;
  const lists: [string, { length: number }][] = [
    ["grads", o.grads],
    ["momentumBufs", o.momentumBufs],
    ["weightDecay", o.weightDecay],
  ];
  if (o.lars) lists.push(["lars.adapt", o.lars.adapt]);
  for (const [name, list] of lists) {
    if (list.length !== count) {
      throw new RangeError(
        `Cannot run ${kernel}: '${name}' has ${list.length} entries, expected ${count} (one per parameter)`,
      );
    }
  }
  o.weightDecay.forEach((wd, i) => {
    if (!(Number.isFinite(wd) && wd >= 0)) {
      throw new RangeError(`Cannot run ${kernel}: weightDecay[${i}] is ${wd}, expected >= 0`);
    }
  });
  if (!(o.lr >= 0) || !(o.momentum >= 0)) {
    throw new RangeError(
      `Cannot run ${kernel}: lr ${o.lr} and momentum ${o.momentum} must be >= 0`,
    );
  }
  if (o.lars) {
    checkScalars(kernel, { "lars.eta": o.lars.eta, "lars.eps": o.lars.eps });
    if (o.lars.eta < 0 || o.lars.eps < 0) {
      throw new RangeError(`Cannot run ${kernel}: lars.eta and lars.eps must be >= 0`);
    }
    if (o.lars.clip && !(o.lr > 0)) {
      throw new RangeError(`Cannot run ${kernel}: clipped LARS needs lr > 0, got ${o.lr}`);
    }
  }
}

const AUGMENT_STEPS: readonly AugmentStep[] = ["flip", "jitter", "grayscale", "blur"];

/** Checks the options of `augmentViews` that the table cannot express. */
export function checkAugmentOptions(kernel: string, o: Opts<"augmentViews">): void {
  const g = o.geom;
  checkDims(kernel, { h: g.h, w: g.w, size: g.size }, 1);
  if (g.c !== 1 && g.c !== 3) {
    throw new RangeError(`Cannot run ${kernel}: images have ${g.c} channels, expected 1 or 3`);
  }
  if (o.mean.length !== g.c || o.std.length !== g.c) {
    throw new RangeError(
      `Cannot run ${kernel}: mean/std have ${o.mean.length}/${o.std.length} values for ${g.c} channels`,
    );
  }
  o.mean.forEach((m, i) => checkScalars(kernel, { [`mean[${i}]`]: m }));
  o.std.forEach((s, i) => {
    if (!(Number.isFinite(s) && s > 0)) {
      throw new RangeError(`Cannot run ${kernel}: std[${i}] is ${s}, expected > 0`);
    }
  });
  const seen = new Set<string>();
  for (const s of o.steps) {
    if (!AUGMENT_STEPS.includes(s)) {
      throw new RangeError(
        `Cannot run ${kernel}: unknown step '${s}' (expected ${AUGMENT_STEPS.join(", ")})`,
      );
    }
    if (seen.has(s)) throw new RangeError(`Cannot run ${kernel}: step '${s}' appears twice`);
    seen.add(s);
  }
  const k = o.blurKernel;
  if (!Number.isInteger(k) || k < 1 || k % 2 !== 1 || (k - 1) / 2 >= g.size) {
    throw new RangeError(
      `Cannot run ${kernel}: blurKernel ${k} must be odd, >= 1, with a half-width below size ${g.size}`,
    );
  }
}
