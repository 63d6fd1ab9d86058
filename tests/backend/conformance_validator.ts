/**
 * The validator in the conformance suite: for every kernel of the kernel table, a valid call
 * (small example dimensions, storages sized and typed from the table) runs, and each bad variant
 * of it fails with the same error on the backend under test as on the reference: a storage of a
 * dtype the kernel does not accept, a storage one element too short, a storage of another
 * backend, a freed storage, and an output aliasing another argument where the table does not
 * allow it (the allowed in-place pairs must run). Lists of multi-tensor kernels are varied entry
 * by entry.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Backend, DType, KernelName, Storage } from "../../src/backend/backend.ts";
import { AUGMENT_PARAM_COUNT, encodeAugmentParams } from "../../src/backend/augment_layout.ts";
import {
  type ArgSpec,
  KERNEL_NAMES,
  kernelSpec,
  type ListSpec,
} from "../../src/backend/kernels.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";

type Dict = Record<string, unknown>;

const CONV = {
  n: 1,
  c: 2,
  h: 4,
  w: 4,
  k: 3,
  r: 3,
  s: 3,
  strideH: 1,
  strideW: 1,
  padH: 1,
  padW: 1,
  outH: 4,
  outW: 4,
};
const POOL = {
  n: 1,
  c: 2,
  h: 5,
  w: 5,
  kernelH: 3,
  kernelW: 3,
  strideH: 2,
  strideW: 2,
  padH: 1,
  padW: 1,
  outH: 3,
  outW: 3,
};
const BN = { geom: { n: 2, c: 3, hw: 4 }, eps: 1e-5, relu: true };
const ROWS = { rows: 2, cols: 3 };
/** Lengths of the two tensors of list kernels (equal, so entries of different index can alias). */
const LISTS = [4, 4];

/** The non-storage options of a valid call of each kernel. */
const EXAMPLES: Record<KernelName, Dict> = {
  copy: { srcOffset: 1, dstOffset: 2, length: 3 },
  cast: { n: 5 },
  axpby: { alpha: 0.5, beta: 2, n: 5 },
  mul: { n: 5 },
  broadcastScalar: { alpha: 2, n: 5 },
  relu: { n: 5 },
  reluBackward: { n: 5 },
  sum: { alpha: 1, n: 5 },
  gemm: { m: 2, n: 3, k: 4, transA: false, transB: true, alpha: 1, beta: 0 },
  addRowVector: ROWS,
  sumRows: ROWS,
  gatherRows: ROWS,
  softmax: ROWS,
  softmaxBackward: ROWS,
  logSoftmax: ROWS,
  logSoftmaxBackward: ROWS,
  l2Normalize: { ...ROWS, eps: 1e-12 },
  l2NormalizeBackward: { ...ROWS, eps: 1e-12 },
  conv2dForward: { geom: CONV },
  conv2dBackwardData: { geom: CONV },
  conv2dBackwardWeights: { geom: CONV },
  batchNormForwardTraining: BN,
  batchNormForwardInference: BN,
  batchNormBackward: BN,
  batchNormStats: { geom: BN.geom },
  batchNormMergeStats: { c: 3, rows: 2, first: 0, stride: 1, take: 2 },
  batchNormBackwardReduce: BN,
  batchNormBackwardApply: { ...BN, rows: 2, first: 1, stride: 1, take: 1, count: 16 },
  maxPool2dForward: { geom: POOL },
  maxPool2dBackward: { geom: POOL },
  globalAvgPool: { n: 2, c: 3, hw: 4 },
  globalAvgPoolBackward: { n: 2, c: 3, hw: 4 },
  sgdUpdateMulti: {
    lr: 0.1,
    momentum: 0.9,
    weightDecay: [0, 1e-4],
    nesterov: false,
    lars: { eta: 0.02, eps: 1e-8, clip: false, adapt: [true, false] },
  },
  emaUpdateMulti: { momentum: 0.99 },
  augmentViews: {
    geom: { n: 2, h: 6, w: 5, c: 3, size: 4 },
    steps: ["flip", "jitter", "grayscale", "blur"],
    blurKernel: 3,
    mean: [0.5, 0.4, 0.3],
    std: [0.25, 0.2, 0.3],
  },
};

type Role = "input" | "output" | "inout";
interface Arg {
  name: string;
  role: Role;
  spec?: ArgSpec<Dict>;
  list?: ListSpec;
}

/** Every storage argument of `kernel` (single and list), in table order. */
function argsOf(kernel: KernelName): Arg[] {
  const s = kernelSpec(kernel) as unknown as {
    inputs: Record<string, ArgSpec<Dict>>;
    outputs: Record<string, ArgSpec<Dict>>;
    inouts?: Record<string, ArgSpec<Dict>>;
    lists?: Partial<Record<"inputs" | "outputs" | "inouts", Record<string, ListSpec>>>;
  };
  const args: Arg[] = [];
  const roles = [["inputs", "input"], ["outputs", "output"], ["inouts", "inout"]] as const;
  for (const [key, role] of roles) {
    for (const [name, spec] of Object.entries(s[key] ?? {})) args.push({ name, role, spec });
    for (const [name, list] of Object.entries(s.lists?.[key] ?? {})) {
      args.push({ name, role, list });
    }
  }
  return args;
}

/** A call of `kernel` on `be`: options with zero-filled storages, and what to free after it. */
function build(be: Backend, kernel: KernelName): { opts: Dict; owned: Storage[] } {
  const opts: Dict = structuredClone(EXAMPLES[kernel]);
  const owned: Storage[] = [];
  const alloc = (dtype: DType, n: number) => {
    const st = be.alloc(dtype, n);
    be.fill(st, 0);
    owned.push(st);
    return st;
  };
  for (const a of argsOf(kernel)) {
    if (a.spec) opts[a.name] = alloc(a.spec.dtypes[0], a.spec.count(opts));
    else opts[a.name] = LISTS.map((n) => alloc(a.list!.dtypes[0], n));
  }
  if (kernel === "augmentViews") {
    const rows = new Float32Array(2 * AUGMENT_PARAM_COUNT);
    for (let i = 0; i < 2; i++) {
      const jitter = { order: [3, 1, 0, 2], brightness: 1.2, contrast: 0.8, saturation: 1.1 };
      const box = { top: 1, left: i, height: 4, width: 3 };
      encodeAugmentParams({ box, flip: true, jitter, grayscale: i === 1, blurSigma: 0.7 }, rows, i);
    }
    be.upload(opts.params as Storage, rows);
  }
  return { opts, owned };
}

/** What a call throws, with the backend's own name normalised, or null when it runs. */
function outcome(be: Backend, kernel: KernelName, opts: Dict): string | null {
  try {
    (be[kernel] as (o: Dict) => void).call(be, opts);
    return null;
  } catch (e) {
    const err = e as Error;
    return `${err.constructor.name}: ${
      err.message.replaceAll(`this ${be.name} backend`, "this <backend> backend")
    }`;
  }
}

/** A variant of a call: a label, the regexp its error must match (null: must run), the edit. */
interface Variant {
  label: string;
  expect: RegExp | null;
  apply: (be: Backend, opts: Dict, foreign: Backend, owned: Storage[]) => void;
}

/** Replaces argument `a` (entry 0 of a list) by `s`. */
function put(opts: Dict, a: Arg, s: Storage, index = 0): void {
  if (a.list) (opts[a.name] as Storage[])[index] = s;
  else opts[a.name] = s;
}

/** The storage argument `a` holds (entry `index` of a list). */
function get(opts: Dict, a: Arg, index = 0): Storage {
  return a.list ? (opts[a.name] as Storage[])[index] : opts[a.name] as Storage;
}

const OTHER_DTYPES: DType[] = ["i32", "u8", "f32"];

/** Every bad (and allowed-alias) variant of a valid call of `kernel`. */
function variants(kernel: KernelName): Variant[] {
  const spec = kernelSpec(kernel) as unknown as { mayAlias?: readonly (readonly string[])[] };
  const out: Variant[] = [];
  const args = argsOf(kernel);
  for (const a of args) {
    const dtypes = (a.spec ?? a.list)!.dtypes;
    const wrong = OTHER_DTYPES.find((t) => !dtypes.includes(t));
    const like = (be: Backend, opts: Dict, owned: Storage[], dtype?: DType, delta = 0) => {
      const cur = get(opts, a);
      const st = be.alloc(dtype ?? cur.dtype, Math.max(0, cur.length + delta));
      owned.push(st);
      return st;
    };
    if (wrong !== undefined) {
      out.push({
        label: `'${a.name}' of dtype ${wrong}`,
        expect: new RegExp(`'${a.name}(\\[0\\])?' has dtype ${wrong}, expected`),
        apply: (be, opts, _f, owned) => put(opts, a, like(be, opts, owned, wrong)),
      });
    }
    const anchor = a.list && a.list.lengthOf === a.name;
    if (!anchor && (a.list || a.spec!.count(EXAMPLES[kernel]) > 0)) {
      out.push({
        label: `'${a.name}' one element short`,
        expect: new RegExp(`'${a.name}(\\[0\\])?' has \\d+ elements, expected at least`),
        apply: (be, opts, _f, owned) => put(opts, a, like(be, opts, owned, undefined, -1)),
      });
    }
    out.push({
      label: `'${a.name}' from another backend`,
      expect: new RegExp(`'${a.name}(\\[0\\])?' does not belong to this <backend> backend`),
      apply: (_be, opts, foreign, owned) => {
        const cur = get(opts, a);
        const st = foreign.alloc(cur.dtype, cur.length);
        owned.push(st);
        put(opts, a, st);
      },
    });
    out.push({
      label: `'${a.name}' freed`,
      expect: new RegExp(`'${a.name}(\\[0\\])?' was freed`),
      apply: (be, opts) => {
        const cur = get(opts, a);
        const st = be.alloc(cur.dtype, cur.length);
        be.free(st);
        put(opts, a, st);
      },
    });
  }
  // Aliases: an output (or in-place argument) that is also another argument.
  const allowed = (x: string, y: string) =>
    (spec.mayAlias ?? []).some(([p, q]) => (p === x && q === y) || (p === y && q === x));
  for (const o of args.filter((a) => a.role !== "input")) {
    for (const other of args.filter((a) => a !== o)) {
      for (const index of o.list ? [0, 1] : [0]) {
        const ok = allowed(o.name, other.name) && index === 0;
        out.push({
          label: `'${o.name}${o.list ? `[${index}]` : ""}' aliasing '${other.name}${
            other.list ? "[0]" : ""
          }'`,
          expect: ok ? null : /is the same storage as/,
          apply: (be, opts, _f, owned) => {
            const [x, y] = [get(opts, o, index), get(opts, other)];
            if (x.dtype !== y.dtype) throw new Skip();
            const st = be.alloc(x.dtype, Math.max(x.length, y.length));
            be.fill(st, 0);
            owned.push(st);
            put(opts, o, st, index);
            put(opts, other, st);
          },
        });
      }
    }
  }
  return out;
}

/** A variant that does not apply to this kernel (e.g. an alias between different dtypes). */
class Skip extends Error {}

/** Registers the validator test for the backend `make` creates. */
export function defineValidator(name: string, make: () => Backend): void {
  Deno.test(`conformance ${name}: every kernel rejects bad storages as the reference does`, () => {
    const subject = make();
    const oracle = createReferenceBackend();
    const foreign = createReferenceBackend();
    let checked = 0;
    try {
      for (const kernel of KERNEL_NAMES) {
        for (const be of [subject, oracle]) {
          const { opts, owned } = build(be, kernel);
          assert.equal(outcome(be, kernel, opts), null, `${be.name} ${kernel}: valid call failed`);
          for (const s of owned) be.free(s);
        }
        for (const v of variants(kernel)) {
          const results = [subject, oracle].map((be) => {
            const { opts, owned } = build(be, kernel);
            try {
              v.apply(be, opts, foreign, owned);
              return outcome(be, kernel, opts);
            } catch (e) {
              if (e instanceof Skip) return undefined;
              throw e;
            } finally {
              for (const s of owned) s.backend.free(s);
            }
          });
          if (results[1] === undefined) continue;
          const [got, want] = results;
          const what = `${kernel} with ${v.label}`;
          if (v.expect === null) assert.equal(want, null, `reference ${what}: ${want}`);
          else assert.match(want ?? "ran", v.expect, `reference ${what}: ${want}`);
          assert.equal(got, want, `${name} ${what}: error differs from the reference's`);
          checked++;
        }
      }
      assert.ok(checked > 300, `only ${checked} variants checked`);
      assert.equal(subject.liveAllocations(), 0, `${name} leaked storages`);
    } finally {
      subject.dispose();
      oracle.dispose();
      foreign.dispose();
    }
  });
}
