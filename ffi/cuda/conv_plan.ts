/**
 * A convolution plan per shape (NCHW, f32 or bf16, cross-correlation like deep-learning frameworks):
 * cuDNN descriptors made once, the forward / backward-data / backward-filter algorithms chosen once
 * (the fastest whose workspace fits a limit; see `conv_algo.ts`), then reused for every call.
 * f32 runs with FMA math only (no TF32) unless `tf32` is asked for, so it matches the reference.
 *
 * @module
 */

import { type AlgoPerf, chooseAlgorithm, parsePerfs } from "./conv_algo.ts";
import { createDescriptor, type CudnnHandle } from "./cudnn.ts";
import {
  CUDNN_ALGO_COUNT,
  CUDNN_CONV_MODE,
  CUDNN_DATA,
  CUDNN_MATH,
  CUDNN_PERF,
  CUDNN_TENSOR,
} from "./cudnn_symbols.ts";

/** A 2-D convolution problem: input `n x c x h x w`, filter `k x (c / groups) x r x s`. */
export interface ConvShape {
  n: number;
  c: number;
  h: number;
  w: number;
  k: number;
  r: number;
  s: number;
  padH?: number;
  padW?: number;
  strideH?: number;
  strideW?: number;
  dilationH?: number;
  dilationW?: number;
  groups?: number;
}

/** Data types of a plan (bf16 data accumulates in f32). */
export type ConvDtype = "f32" | "bf16";

/** Scratch device buffers for measured search; their contents are overwritten. */
export interface ConvSearchBuffers {
  /** Input-sized (also receives the backward-data result). */
  x: bigint;
  /** Filter-sized (also receives the backward-filter result). */
  w: bigint;
  /** Output-sized (also read as the output gradient). */
  y: bigint;
  /** A workspace of `workspaceBytes` bytes. */
  workspace: bigint;
  workspaceBytes: number;
}

/** Options of {@link createConvPlan}. */
export interface ConvPlanOptions {
  /** Default f32. */
  dtype?: ConvDtype;
  /** The largest workspace an algorithm may need, in bytes (default 256 MiB). */
  workspaceLimit?: number;
  /** Allow TF32 tensor cores for f32 (default false). */
  tf32?: boolean;
  /** Only deterministic algorithms (default false). */
  deterministic?: boolean;
  /** `heuristic` (default: cuDNN's ranking, no device work) or buffers to measure with (Find). */
  search?: "heuristic" | ConvSearchBuffers;
}

/** The default workspace limit of a plan: 256 MiB. */
export const DEFAULT_CONV_WORKSPACE_LIMIT = 256 * 1024 * 1024;

/** The algorithm chosen for one direction. */
export interface ConvChoice {
  readonly perf: AlgoPerf;
  /** The workspace it needs (`cudnnGet*WorkspaceSize` of the chosen algorithm). */
  readonly workspaceBytes: number;
}

/** Scaling of a call: `out = alpha * result + beta * out` (defaults 1 and 0). */
export interface ConvScale {
  alpha?: number;
  beta?: number;
}

/** A planned convolution. */
export interface ConvPlan {
  readonly shape: Required<ConvShape>;
  readonly dtype: ConvDtype;
  /** The output shape `[n, k, p, q]` (from `cudnnGetConvolution2dForwardOutputDim`). */
  readonly outShape: readonly [number, number, number, number];
  readonly forwardAlgo: ConvChoice;
  readonly backwardDataAlgo: ConvChoice;
  readonly backwardFilterAlgo: ConvChoice;
  /** The largest workspace of the three: pass a buffer at least this big. */
  readonly workspaceBytes: number;
  /** `y = conv(x, w)`. */
  forward(x: bigint, w: bigint, y: bigint, workspace: bigint, scale?: ConvScale): void;
  /** `dx = conv_backward_data(w, dy)`. */
  backwardData(w: bigint, dy: bigint, dx: bigint, workspace: bigint, scale?: ConvScale): void;
  /** `dw = conv_backward_filter(x, dy)`. */
  backwardFilter(x: bigint, dy: bigint, dw: bigint, workspace: bigint, scale?: ConvScale): void;
  /** Destroys the descriptors. */
  destroy(): void;
}

/** Fills in the defaults of a shape and checks it. */
export function normalizeConvShape(s: ConvShape): Required<ConvShape> {
  const full: Required<ConvShape> = {
    padH: 0,
    padW: 0,
    strideH: 1,
    strideW: 1,
    dilationH: 1,
    dilationW: 1,
    groups: 1,
    ...s,
  };
  for (const [key, v] of Object.entries(full)) {
    const min = key.startsWith("pad") ? 0 : 1;
    if (!Number.isInteger(v) || v < min || v >= 2 ** 31) {
      throw new RangeError(
        `Cannot plan a convolution with ${key} = ${v}: use an integer >= ${min}`,
      );
    }
  }
  if (full.c % full.groups !== 0 || full.k % full.groups !== 0) {
    throw new RangeError(
      `Cannot plan a convolution with ${full.groups} groups: c = ${full.c} and k = ${full.k} ` +
        `must both be multiples of it`,
    );
  }
  return full;
}

type Direction = "forward" | "backwardData" | "backwardFilter";

const NAMES: Record<Direction, { get: string; find: string; ws: string; run: string }> = {
  forward: {
    get: "cudnnGetConvolutionForwardAlgorithm_v7",
    find: "cudnnFindConvolutionForwardAlgorithmEx",
    ws: "cudnnGetConvolutionForwardWorkspaceSize",
    run: "cudnnConvolutionForward",
  },
  backwardData: {
    get: "cudnnGetConvolutionBackwardDataAlgorithm_v7",
    find: "cudnnFindConvolutionBackwardDataAlgorithmEx",
    ws: "cudnnGetConvolutionBackwardDataWorkspaceSize",
    run: "cudnnConvolutionBackwardData",
  },
  backwardFilter: {
    get: "cudnnGetConvolutionBackwardFilterAlgorithm_v7",
    find: "cudnnFindConvolutionBackwardFilterAlgorithmEx",
    ws: "cudnnGetConvolutionBackwardFilterWorkspaceSize",
    run: "cudnnConvolutionBackwardFilter",
  },
};

/**
 * Creates the descriptors of `shape` and chooses an algorithm for each direction. Throws when no
 * algorithm supports the problem within the workspace limit, naming the direction and the shape.
 */
export function createConvPlan(
  h: CudnnHandle,
  shape: ConvShape,
  opts: ConvPlanOptions = {},
): ConvPlan {
  const lib = h.lib;
  const s = lib.symbols;
  const sh = normalizeConvShape(shape);
  const dtype = opts.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "bf16") {
    throw new TypeError(`Cannot plan a ${dtype} convolution: use f32 or bf16`);
  }
  const limit = opts.workspaceLimit ?? DEFAULT_CONV_WORKSPACE_LIMIT;
  const exactF32 = dtype === "f32" && !opts.tf32;
  const dataType = dtype === "f32" ? CUDNN_DATA.FLOAT : CUDNN_DATA.BFLOAT16;
  const label = `${sh.n}x${sh.c}x${sh.h}x${sh.w} * ${sh.k}x${sh.c / sh.groups}x${sh.r}x${sh.s} ` +
    `(pad ${sh.padH},${sh.padW} stride ${sh.strideH},${sh.strideW}) ${dtype}`;
  const made: { p: Deno.PointerObject; destroy: (p: Deno.PointerObject) => number }[] = [];
  const destroyAll = () => {
    for (const d of made.splice(0).reverse()) d.destroy(d.p);
  };
  try {
    const tensor = (dims: readonly number[]) => {
      const p = createDescriptor(lib, (o) => s.cudnnCreateTensorDescriptor(o), "tensor");
      made.push({ p, destroy: (q) => s.cudnnDestroyTensorDescriptor(q) });
      const [a, b, c, d] = dims;
      lib.check(
        s.cudnnSetTensor4dDescriptor(p, CUDNN_TENSOR.NCHW, dataType, a, b, c, d),
        `describe the ${dims.join("x")} tensor of convolution ${label}`,
      );
      return p;
    };
    const xDesc = tensor([sh.n, sh.c, sh.h, sh.w]);
    const wDesc = createDescriptor(lib, (o) => s.cudnnCreateFilterDescriptor(o), "filter");
    made.push({ p: wDesc, destroy: (q) => s.cudnnDestroyFilterDescriptor(q) });
    lib.check(
      s.cudnnSetFilter4dDescriptor(
        wDesc,
        dataType,
        CUDNN_TENSOR.NCHW,
        sh.k,
        sh.c / sh.groups,
        sh.r,
        sh.s,
      ),
      `describe the filter of convolution ${label}`,
    );
    const initialMath = exactF32
      ? CUDNN_MATH.FMA
      : dtype === "bf16"
      ? CUDNN_MATH.TENSOR_OP
      : CUDNN_MATH.DEFAULT;
    const convDesc = () => {
      const p = createDescriptor(lib, (o) => s.cudnnCreateConvolutionDescriptor(o), "convolution");
      made.push({ p, destroy: (q) => s.cudnnDestroyConvolutionDescriptor(q) });
      lib.check(
        s.cudnnSetConvolution2dDescriptor(
          p,
          sh.padH,
          sh.padW,
          sh.strideH,
          sh.strideW,
          sh.dilationH,
          sh.dilationW,
          CUDNN_CONV_MODE.CROSS_CORRELATION,
          CUDNN_DATA.FLOAT,
        ),
        `describe convolution ${label}`,
      );
      lib.check(s.cudnnSetConvolutionGroupCount(p, sh.groups), `set groups of ${label}`);
      lib.check(s.cudnnSetConvolutionMathType(p, initialMath), `set math type of ${label}`);
      return p;
    };
    const conv: Record<Direction, Deno.PointerObject> = {
      forward: convDesc(),
      backwardData: convDesc(),
      backwardFilter: convDesc(),
    };
    const o = [new Int32Array(1), new Int32Array(1), new Int32Array(1), new Int32Array(1)];
    lib.check(
      s.cudnnGetConvolution2dForwardOutputDim(conv.forward, xDesc, wDesc, o[0], o[1], o[2], o[3]),
      `compute the output shape of convolution ${label}`,
    );
    const outShape = [o[0][0], o[1][0], o[2][0], o[3][0]] as const;
    const yDesc = tensor(outShape);
    // Descriptor order of each direction's calls: (in1, in2, conv, out).
    const descs: Record<Direction, [Deno.PointerObject, Deno.PointerObject, Deno.PointerObject]> = {
      forward: [xDesc, wDesc, yDesc],
      backwardData: [wDesc, yDesc, xDesc],
      backwardFilter: [xDesc, yDesc, wDesc],
    };
    const choose = (dir: Direction): ConvChoice => {
      const [d1, d2, d3] = descs[dir];
      const max = CUDNN_ALGO_COUNT[dir];
      const perfBytes = new Uint8Array(max * CUDNN_PERF.size);
      const count = new Int32Array(1);
      const search = opts.search ?? "heuristic";
      if (search === "heuristic") {
        const fn = s[NAMES[dir].get as "cudnnGetConvolutionForwardAlgorithm_v7"];
        lib.check(
          fn(h.handle, d1, d2, conv[dir], d3, max, count, perfBytes),
          `rank ${dir} algorithms of convolution ${label}`,
        );
      } else {
        const b = search;
        const data: Record<Direction, [bigint, bigint, bigint]> = {
          forward: [b.x, b.w, b.y],
          backwardData: [b.w, b.y, b.x],
          backwardFilter: [b.x, b.y, b.w],
        };
        const [p1, p2, p3] = data[dir];
        const fn = s[NAMES[dir].find as "cudnnFindConvolutionForwardAlgorithmEx"];
        lib.check(
          fn(
            h.handle,
            d1,
            p1,
            d2,
            p2,
            conv[dir],
            d3,
            p3,
            max,
            count,
            perfBytes,
            b.workspace,
            BigInt(b.workspaceBytes),
          ),
          `measure ${dir} algorithms of convolution ${label}`,
        );
      }
      const perfs = parsePerfs(perfBytes, Math.min(count[0], max));
      const pick = chooseAlgorithm(perfs, {
        workspaceLimit: search === "heuristic" ? limit : Math.min(limit, search.workspaceBytes),
        deterministic: opts.deterministic,
        order: search === "heuristic" ? "ranked" : "measured",
      });
      if (!pick.ok) {
        throw new Error(`Cannot plan the ${dir} convolution ${label}: ${pick.reason}`);
      }
      if (!exactF32) {
        lib.check(
          s.cudnnSetConvolutionMathType(conv[dir], pick.perf.mathType),
          `set the math type of ${label}`,
        );
      }
      const ws = new BigUint64Array(1);
      const wsFn = s[NAMES[dir].ws as "cudnnGetConvolutionForwardWorkspaceSize"];
      lib.check(
        wsFn(h.handle, d1, d2, conv[dir], d3, pick.perf.algo, ws),
        `size the ${dir} workspace of convolution ${label}`,
      );
      return { perf: pick.perf, workspaceBytes: Number(ws[0]) };
    };
    const forwardAlgo = choose("forward");
    const backwardDataAlgo = choose("backwardData");
    const backwardFilterAlgo = choose("backwardFilter");
    const workspaceBytes = Math.max(
      forwardAlgo.workspaceBytes,
      backwardDataAlgo.workspaceBytes,
      backwardFilterAlgo.workspaceBytes,
    );
    const scalars = new Float32Array(2);
    const alphaPtr = Deno.UnsafePointer.of(scalars) as Deno.PointerObject;
    const betaPtr = Deno.UnsafePointer.offset(alphaPtr, 4);
    const run =
      (dir: Direction, choice: ConvChoice, a: bigint, b: bigint, out: bigint) =>
      (ws: bigint, scale: ConvScale = {}) => {
        scalars[0] = scale.alpha ?? 1;
        scalars[1] = scale.beta ?? 0;
        const [d1, d2, d3] = descs[dir];
        const fn = s[NAMES[dir].run as "cudnnConvolutionForward"];
        lib.check(
          fn(
            h.handle,
            alphaPtr,
            d1,
            a,
            d2,
            b,
            conv[dir],
            choice.perf.algo,
            ws,
            BigInt(choice.workspaceBytes),
            betaPtr,
            d3,
            out,
          ),
          `run the ${dir} convolution ${label} (${NAMES[dir].run})`,
        );
      };
    let destroyed = false;
    return {
      shape: sh,
      dtype,
      outShape,
      forwardAlgo,
      backwardDataAlgo,
      backwardFilterAlgo,
      workspaceBytes,
      forward: (x, w, y, ws, scale) => run("forward", forwardAlgo, x, w, y)(ws, scale),
      backwardData: (w, dy, dx, ws, scale) =>
        run("backwardData", backwardDataAlgo, w, dy, dx)(ws, scale),
      backwardFilter: (x, dy, dw, ws, scale) =>
        run("backwardFilter", backwardFilterAlgo, x, dy, dw)(ws, scale),
      destroy(): void {
        if (destroyed) return;
        destroyed = true;
        destroyAll();
      },
    };
  } catch (e) {
    destroyAll();
    throw e;
  }
}
