/**
 * A timing wrapper around any {@link Backend}: a Proxy that forwards every method to the real
 * backend, synchronises after it and adds its wall time to a record keyed by kernel name, shape and
 * call site. Nothing in `src/` changes: build the context on `timer.backend` instead of the backend.
 *
 * Call sites come from stack traces, which cost microseconds each, so they are captured only during
 * one "labelling" step; the kernel sequence of a training step is deterministic, so later steps
 * reuse the labels by call index (a call whose kernel differs from the labelled one gets `?`).
 *
 * @module
 */

import type { Backend } from "../src/backend/backend.ts";

/** Aggregated time of one (kernel, shape, site). */
export interface KernelRecord {
  kernel: string;
  shape: string;
  /** The first caller outside the backend and the tensor plumbing, e.g. `ressl/ema.ts`. */
  site: string;
  calls: number;
  ms: number;
}

type Geom = Record<string, number>;

function conv(g: Geom): string {
  return `n${g.n} ${g.c}x${g.h}x${g.w} -> ${g.k}x${g.outH}x${g.outW} k${g.r}x${g.s} s${g.strideH}`;
}

/** A short shape string of a kernel call's options. */
export function describeShape(kernel: string, args: unknown[]): string {
  const o = args[0] as Record<string, unknown> | undefined;
  if (kernel === "alloc") return `${args[0]} x${args[1]}`;
  if (kernel === "upload") return `x${(args[1] as { length: number }).length}`;
  if (kernel === "download" || kernel === "free") return "";
  if (kernel === "fill") return `x${(args[0] as { length: number }).length}`;
  if (!o || typeof o !== "object") return "";
  const g = o.geom as Geom | undefined;
  if (g && "k" in g) return conv(g);
  if (g && "kernelH" in g) return `n${g.n} c${g.c} ${g.h}x${g.w} k${g.kernelH} s${g.strideH}`;
  if (g) return `n${g.n} c${g.c} hw${g.hw}`;
  if (kernel === "gemm") {
    return `m${o.m} n${o.n} k${o.k}${o.transA ? " tA" : ""}${o.transB ? " tB" : ""}`;
  }
  if ("rows" in o) return `${o.rows}x${o.cols}`;
  if ("c" in o && "hw" in o) return `n${o.n} c${o.c} hw${o.hw}`;
  if ("length" in o) return `x${o.length}`;
  if ("n" in o) return `x${o.n}`;
  return "";
}

const SKIP = [
  "/src/backend/",
  "/src/tensor/tensor.ts",
  "/src/tensor/tree.ts",
  "/src/ops/elementwise.ts",
  "/bench/kernel_timer.ts",
];

/** The first stack frame outside the backend and the tensor plumbing, as `folder/file.ts`. */
export function callSite(stack: string | undefined): string {
  for (const line of (stack ?? "").split("\n").slice(1)) {
    const m = line.match(/(?:file:\/\/)?(\/[^\s():]+\.ts):\d+/);
    if (!m || SKIP.some((s) => m[1].includes(s))) continue;
    const parts = m[1].split("/");
    return parts.slice(-2).join("/");
  }
  return "?";
}

/** The kernel class of issue 15's profile (conv by direction, BN, ReLU, EMA, optimizer, ...). */
export function kernelClass(kernel: string, site: string): string {
  if (kernel === "conv2dForward") return "conv forward";
  if (kernel === "conv2dBackwardData") return "conv backward-data";
  if (kernel === "conv2dBackwardWeights") return "conv backward-weights";
  if (kernel === "batchNormForwardTraining") return "batch norm forward";
  if (kernel === "batchNormBackward") return "batch norm backward";
  if (kernel.startsWith("batchNorm")) return "batch norm (inference)";
  if (kernel === "relu" || kernel === "reluBackward") return "ReLU (fwd + bwd)";
  if (kernel === "sgdUpdate" || kernel === "sgdUpdateMulti") return "optimizer (SGD update)";
  if (kernel === "emaUpdateMulti") return "EMA (axpby per tensor)";
  if (kernel === "augmentViews") return "augmentation on the backend";
  if (kernel === "cast") return "cast (f32 <-> bf16)";
  if (kernel === "axpby" || kernel === "mul" || kernel === "broadcastScalar") {
    if (site.endsWith("ema.ts")) return "EMA (axpby per tensor)";
    if (site.endsWith("sgd.ts") || site.startsWith("optim/")) return "optimizer (SGD update)";
    if (site.endsWith("autodiff.ts")) return "gradient accumulation (axpby)";
    if (site.startsWith("nn/") || site.endsWith("add.ts")) return "residual add / eltwise";
    return `elementwise other (${site})`;
  }
  if (kernel === "gemm" || kernel === "addRowVector" || kernel === "sumRows") {
    return "gemm + bias (head, logits)";
  }
  if (/softmax|Softmax|l2Normalize|^sum$/.test(kernel)) return "softmax / loss / normalize";
  if (/Pool/.test(kernel)) return "pooling";
  if (["alloc", "free", "upload", "download", "copy", "fill"].includes(kernel)) {
    return "memory (alloc/free/upload/copy/fill)";
  }
  return kernel;
}

/** See the module doc. */
export class KernelTimer {
  /** The wrapped backend: build the context on it. */
  readonly backend: Backend;
  #records = new Map<string, KernelRecord>();
  #active = false;
  #labelling = false;
  #labels: [string, string][] = [];
  #index = 0;
  #totalMs = 0;

  /**
   * Wraps `target`. `clock` (milliseconds; default `performance.now`) times each call: pass
   * `threadCpuMs` from `thread_clock.ts` with a 1-thread cpu backend for a load-immune profile.
   */
  constructor(target: Backend, clock: () => number = () => performance.now()) {
    const handler: ProxyHandler<Backend> = {
      get: (t, prop) => {
        const v = Reflect.get(t, prop, t);
        if (typeof v !== "function" || typeof prop !== "string") return v;
        if (prop === "synchronize" || prop === "dispose" || prop === "liveAllocations") {
          return v.bind(t);
        }
        return (...args: unknown[]) => {
          if (!this.#active) return v.apply(t, args);
          const t0 = clock();
          const r = v.apply(t, args);
          t.synchronize();
          const ms = clock() - t0;
          this.#add(prop, args, ms);
          return r;
        };
      },
    };
    this.backend = new Proxy(target, handler);
  }

  /** Starts recording; with `labelSites` this step's calls capture their call sites. */
  start(opts: { labelSites?: boolean } = {}): void {
    this.#active = true;
    this.#labelling = opts.labelSites ?? false;
    if (this.#labelling) this.#labels = [];
    this.#index = 0;
  }

  /** Stops recording (the records stay). */
  stop(): void {
    this.#active = false;
    this.#labelling = false;
  }

  /** Forgets the records (the call-site labels stay). */
  reset(): void {
    this.#records.clear();
    this.#totalMs = 0;
  }

  /** Milliseconds recorded since the last reset. */
  totalMs(): number {
    return this.#totalMs;
  }

  /** The records, slowest first. */
  records(): KernelRecord[] {
    return [...this.#records.values()].sort((a, b) => b.ms - a.ms);
  }

  #add(kernel: string, args: unknown[], ms: number): void {
    const i = this.#index++;
    let site: string;
    if (this.#labelling) {
      site = callSite(new Error().stack);
      this.#labels.push([kernel, site]);
    } else {
      const l = this.#labels[i];
      site = l && l[0] === kernel ? l[1] : "?";
    }
    const shape = describeShape(kernel, args);
    const key = `${kernel}|${shape}|${site}`;
    const r = this.#records.get(key);
    if (r) {
      r.calls++;
      r.ms += ms;
    } else this.#records.set(key, { kernel, shape, site, calls: 1, ms });
    this.#totalMs += ms;
  }
}
