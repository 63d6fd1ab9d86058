/**
 * The oneDNN runtime behind the cpu backend: engine, stream, descriptor table, buffer pool, the
 * primitive cache (keyed by shape, `primitive_cache.ts`), and the layout conversions of storages
 * (reorders).
 *
 * Layout rule: a storage's logical contents never change when its layout does, so a kernel may
 * reorder any input in place (swap its buffer for one in the layout the primitive wants) and give
 * every output the layout its primitive produced. Only kernels that need plain data (gemm,
 * row-wise TypeScript loops) bring a storage back to plain; `download` reads a plain copy and leaves
 * the storage's layout alone. Where a kernel may choose its output's layout, it decides from its
 * inputs (values, layouts, shapes) only: nothing is remembered from one call to the next except
 * caches, so results never depend on call order.
 *
 * @module
 */

import {
  checkStatus,
  type DnnlLibrary,
  type DnnlSymbols,
  EngineKind,
} from "../../../ffi/dnnl/mod.ts";
import { Arg, StreamFlags } from "../../../ffi/dnnl/mod.ts";
import { type Buffer, BufferPool } from "./buffers.ts";
import { type MemDesc, MemDescTable } from "./memdesc.ts";
import type { Primitive } from "./primitive.ts";
import { PrimitiveCache, type PrimitiveSpec } from "./primitive_cache.ts";
import { CpuStorage, dtypeOfDataType, ELEMENT_BYTES } from "./storage.ts";
import type { Backend } from "../backend.ts";
import { createReferenceBackend } from "../reference/backend.ts";
import { type CpuTuning, DEFAULT_TUNING } from "./tuning.ts";
import { elementwiseThreads } from "./threads.ts";
import { type CpuKernels, loadCpuKernels } from "../../../ffi/cpu/mod.ts";

export type { PrimitiveSpec };

/** Copies of at least this many bytes run as a (multi-threaded) oneDNN reorder. */
const PARALLEL_COPY_BYTES = 1 << 20;

/** Engine, stream, memory and primitive cache of one cpu backend. */
export class CpuRuntime {
  /** The backend whose storages this runtime lays out (owner of temporaries). */
  readonly backend: Backend;
  /** The loaded library. */
  readonly lib: DnnlLibrary;
  /** Its functions. */
  readonly sym: DnnlSymbols;
  /** The CPU engine. */
  readonly engine: Deno.PointerObject;
  /** The stream every primitive runs on. */
  readonly stream: Deno.PointerObject;
  /** Interned memory descriptors. */
  readonly mds: MemDescTable;
  /** Aligned buffers. */
  readonly pool: BufferPool;
  /** Primitives by key (kind, shape, data type, algorithm). */
  readonly primitives: PrimitiveCache;
  #reference: Backend | null = null;
  #scalars: Buffer | null = null;
  readonly #scalarPtrs: Deno.PointerObject[] = [];
  /** Prints each primitive's implementation when created (`RESSL_DNNL_VERBOSE=1`). */
  readonly verbose: boolean;
  /** Speed settings (fixed for the backend's life). */
  readonly tuning: Readonly<CpuTuning>;

  /** OpenMP threads of the backend (the most any primitive uses). */
  readonly threads: number;
  /** Sets the calling thread's OpenMP thread count (before every native computation). */
  readonly setThreads: (n: number) => void;
  /** The backend's own kernels (`libressl_cpu.so`), or null (see {@link kernelsNote}). */
  readonly kernels: CpuKernels | null;
  /** Which own kernels run, or why none do (for `CpuBackend.versions`). */
  readonly kernelsNote: string;

  constructor(
    lib: DnnlLibrary,
    backend: Backend,
    threads: number,
    tuning: Partial<CpuTuning> = {},
  ) {
    this.backend = backend;
    this.threads = threads;
    this.setThreads = (n) => lib.setThreads(n);
    this.tuning = Object.freeze({ ...DEFAULT_TUNING, ...tuning });
    this.lib = lib;
    this.sym = lib.symbols;
    const out = new BigUint64Array(1);
    checkStatus(
      this.sym.dnnl_engine_create(out, EngineKind.cpu, 0n),
      "create the oneDNN CPU engine",
    );
    this.engine = Deno.UnsafePointer.create(out[0])!;
    checkStatus(
      this.sym.dnnl_stream_create(out, this.engine, StreamFlags.defaultFlags),
      "create a oneDNN stream",
    );
    this.stream = Deno.UnsafePointer.create(out[0])!;
    this.mds = new MemDescTable(this.sym);
    this.pool = new BufferPool(this.sym, this.engine);
    this.verbose = readVerbose();
    this.primitives = new PrimitiveCache({
      sym: this.sym,
      engine: this.engine,
      stream: this.stream,
      mds: this.mds,
      setThreads: this.setThreads,
      verbose: this.verbose,
    });
    const k = this.tuning.nativeKernels
      ? loadCpuKernels()
      : { ok: false as const, reason: "switched off (tuning.nativeKernels)" };
    this.kernels = k.ok ? k.kernels : null;
    this.kernelsNote = k.ok
      ? `${k.kernels.path}: f32 batch norm, SGD, EMA, sum, log-softmax`
      : `none (${k.reason}): batch norm on oneDNN, SGD, EMA, sum and log-softmax in TypeScript`;
  }

  /** Number of cached primitives. */
  get cachedPrimitives(): number {
    return this.primitives.size;
  }

  /** What each cached primitive computes and the implementation oneDNN chose (diagnostics). */
  implementations(): { what: string; impl: string }[] {
    return this.primitives.implementations();
  }

  /**
   * The cached primitive for `key`, built by `make` on first use, created for and run on `threads`
   * OpenMP threads (default: the backend's count; see `threads.ts` for who runs on fewer). The
   * thread count must be a function of what `key` describes.
   */
  primitive(
    key: string,
    what: string,
    make: () => PrimitiveSpec,
    threads: number = this.threads,
  ): Primitive {
    return this.primitives.get(key, what, make, threads);
  }

  /**
   * Creates a primitive descriptor from an initialised op descriptor, with optional attributes
   * (see `attr.ts`) and a forward primitive descriptor as hint for a backward one.
   */
  createPd(
    opDesc: Uint8Array,
    what: string,
    hint: Deno.PointerObject | null = null,
    attr: Deno.PointerObject | null = null,
  ): Deno.PointerObject {
    return this.primitives.createPd(opDesc, what, hint, attr, this.threads);
  }

  /**
   * The reference backend that runs the exact slow paths of `nan.ts` (created on first use; it
   * holds no storage between calls).
   */
  reference(): Backend {
    return this.#reference ??= createReferenceBackend();
  }

  /** The storage's bytes in plain layout (reordered in place if needed; the caller may write). */
  plain(s: CpuStorage): Buffer {
    s.nanFree = false;
    if (s.buf === null) {
      s.buf = this.pool.take(s.plainBytes);
      s.md = null;
    } else if (s.md !== null) {
      this.#reorder(s, s.md, this.mds.plain(s.md.dims, s.md.dataType), null);
    }
    return s.buf;
  }

  /**
   * Calls `read` with the storage's bytes in plain layout without changing the storage's own
   * layout (a blocked storage is reordered into a temporary buffer): how `download` reads.
   */
  readPlain<T>(s: CpuStorage, read: (buf: Buffer) => T): T {
    if (s.buf === null || s.md === null) return read(this.plain(s));
    const md = this.mds.plain(s.md.dims, s.md.dataType);
    const tmp = this.pool.take(md.size);
    try {
      this.#reorderPrimitive(s.md, md).execute([s.buf.ptr, tmp.ptr]);
      return read(tmp);
    } finally {
      this.pool.give(tmp);
    }
  }

  /**
   * The storage's bytes in layout `md` (reordered in place if needed; plain `md` means plain; the
   * caller may write).
   */
  layout(s: CpuStorage, md: MemDesc): Buffer {
    s.nanFree = false;
    if (md.plain) return this.plain(s);
    if (s.md === md && s.buf !== null) return s.buf;
    if (md.count !== s.length) {
      throw new Error(
        `Cannot lay out a storage of ${s.length} elements as [${md.dims}]: element counts differ`,
      );
    }
    if (s.buf === null) return this.output(s, md);
    if (s.md !== null && this.sym.dnnl_memory_desc_equal(s.md.bytes, md.bytes) === 1) {
      s.md = md;
      return s.buf;
    }
    if (md.dataType !== s.dataType) {
      throw new Error(
        `Cannot lay out a ${s.dtype} storage with oneDNN data type ${md.dataType}: dtypes differ`,
      );
    }
    if (s.md === null) {
      this.#reorder(s, this.mds.plain(md.dims, md.dataType), md, md);
    } else if (!sameDims(s.md.dims, md.dims) && this.mds.reshapesTo(s.md, md)) {
      s.md = md; // the same bytes under other dimensions (e.g. [n, c, h, w] as [n, c, h * w, 1])
    } else if (sameDims(s.md.dims, md.dims)) {
      this.#reorder(s, s.md, md, md);
    } else {
      this.plain(s);
      this.#reorder(s, this.mds.plain(md.dims, md.dataType), md, md);
    }
    return s.buf!;
  }

  /**
   * Prepares `s` to be overwritten in layout `md` (null: all of it, plain; a plain `md`: its first
   * `md.count` elements, plain, the rest kept).
   */
  output(s: CpuStorage, md: MemDesc | null): Buffer {
    s.nanFree = false;
    const blocked = md !== null && !md.plain ? md : null;
    if (md !== null && md.plain && md.count < s.length && s.buf !== null) return this.plain(s);
    const need = blocked ? blocked.size : s.plainBytes;
    if (s.buf === null || s.buf.bytes < need) {
      if (s.buf !== null) this.pool.give(s.buf);
      s.buf = this.pool.take(need);
    }
    s.md = blocked;
    return s.buf;
  }

  /**
   * Executes `p` with `inputs` then `outputs` bound to its arguments in order: inputs are laid out
   * as the primitive wants them (in place), outputs receive the primitive's layout. A storage longer
   * than its argument (allowed: kernels use the first elements) goes through a plain temporary.
   */
  run(
    p: Primitive,
    inputs: readonly CpuStorage[],
    outputs: readonly CpuStorage[],
    scalars: readonly number[] = [],
  ): void {
    const ptrs: Deno.PointerObject[] = [];
    const temps: CpuStorage[] = [];
    const staged: [CpuStorage, CpuStorage][] = [];
    let i = 0;
    for (const s of inputs) {
      const md = p.mdAt(i++);
      if (md.plain || md.count === s.length) {
        // An input is only read: a layout change keeps what is known about its values.
        const nanFree = s.nanFree;
        ptrs.push(this.layout(s, md).ptr);
        s.nanFree = nanFree;
      } else {
        const t = new CpuStorage(s.backend, s.dtype, md.count);
        this.output(t, null).u8.set(this.plain(s).u8.subarray(0, t.plainBytes));
        temps.push(t);
        ptrs.push(this.layout(t, md).ptr);
      }
    }
    for (const s of outputs) {
      const md = p.mdAt(i++);
      if (md.plain || md.count === s.length) {
        ptrs.push(this.output(s, md).ptr);
      } else {
        const t = new CpuStorage(s.backend, s.dtype, md.count);
        temps.push(t);
        staged.push([s, t]);
        ptrs.push(this.output(t, md).ptr);
      }
    }
    if (scalars.length > 0) {
      // Runtime scales bound after the outputs: f32 values in a scratch buffer, rewritten per call.
      const scratch = this.#scalars ??= this.pool.take(64);
      scalars.forEach((v, k) => {
        scratch.f32[k] = v;
        ptrs.push(this.#scalarPtrs[k] ??= Deno.UnsafePointer.offset(scratch.ptr, 4 * k)!);
      });
    }
    p.execute(ptrs);
    for (const [s, t] of staged) {
      const src = this.plain(t).u8.subarray(0, t.plainBytes);
      this.output(s, this.mds.plain([t.length], t.dataType)).u8.set(src);
    }
    for (const t of temps) this.release(t);
  }

  /**
   * Runs `f` with one temporary storage per descriptor (dtype and element count from it, bytes
   * already in its layout: a workspace, a masked gradient) and releases them afterwards.
   */
  withTemps<T>(mds: readonly MemDesc[], f: (temps: CpuStorage[]) => T): T {
    const temps = mds.map((md) => {
      const t = new CpuStorage(this.backend, dtypeOfDataType(md.dataType), md.count);
      this.output(t, md);
      return t;
    });
    try {
      return f(temps);
    } finally {
      for (const t of temps) this.release(t);
    }
  }

  /**
   * The first `n` elements of `dst` = those of `src` (same dtype): a byte copy that keeps src's
   * layout when both hold exactly `n` elements, else a plain copy.
   */
  copyElements(src: CpuStorage, dst: CpuStorage, n: number): void {
    if (src === dst || n === 0) return;
    if (src.length === n && dst.length === n && src.buf !== null) {
      const md = src.md ?? this.mds.plain([n], src.dataType);
      this.#copyBytes(src.buf, this.output(dst, src.md), md, md.size);
      return;
    }
    const md = this.mds.plain([n], src.dataType);
    this.#copyBytes(this.plain(src), this.output(dst, md), md, n * ELEMENT_BYTES[src.dtype]);
  }

  /**
   * dst = src converted to layout (and element type) `dstMd`: one reorder from src in `srcMd`
   * (src is laid out so first) into dst's buffer. How bf16 data meet f32 intermediates.
   */
  convert(src: CpuStorage, srcMd: MemDesc, dst: CpuStorage, dstMd: MemDesc): void {
    const from = this.layout(src, srcMd);
    const to = this.output(dst, dstMd);
    this.#reorderPrimitive(srcMd, dstMd).execute([from.ptr, to.ptr]);
  }

  /** Releases a storage's buffer. */
  release(s: CpuStorage): void {
    s.nanFree = false;
    if (s.buf !== null) this.pool.give(s.buf);
    s.buf = null;
    s.md = null;
  }

  /** Destroys every primitive and buffer, the stream and the engine, and unloads oneDNN. */
  dispose(): void {
    this.primitives.destroy();
    this.pool.dispose();
    this.#reference?.dispose();
    this.sym.dnnl_stream_destroy(this.stream);
    this.sym.dnnl_engine_destroy(this.engine);
    this.kernels?.close();
    this.lib.close();
  }

  #reorderPrimitive(from: MemDesc, to: MemDesc): Primitive {
    // "reorder" changes a layout; "convert" changes the element type; "copy" changes neither.
    const what = from === to ? "copy" : from.dataType !== to.dataType ? "convert" : "reorder";
    return this.primitive(`reorder:${from.id}>${to.id}`, what, () => {
      const out = new BigUint64Array(1);
      this.setThreads(this.primitives.creationThreads(this.threads));
      checkStatus(
        this.sym.dnnl_reorder_primitive_desc_create(
          out,
          from.bytes,
          this.engine,
          to.bytes,
          this.engine,
          null,
        ),
        `create ${what} primitive [${from.dims}]`,
      );
      return { pd: Deno.UnsafePointer.create(out[0])!, args: [Arg.src, Arg.dst] };
    }, elementwiseThreads(this, Math.max(from.size, to.size)));
  }

  #reorder(s: CpuStorage, from: MemDesc, to: MemDesc, result: MemDesc | null): void {
    const dst = this.pool.take(to.size);
    this.#reorderPrimitive(from, to).execute([s.buf!.ptr, dst.ptr]);
    this.pool.give(s.buf!);
    s.buf = dst;
    s.md = result;
  }

  /** Copies `bytes` bytes between buffers: oneDNN's threaded reorder when large, else memcpy. */
  #copyBytes(from: Buffer, to: Buffer, md: MemDesc, bytes: number): void {
    if (bytes >= PARALLEL_COPY_BYTES) {
      this.#reorderPrimitive(md, md).execute([from.ptr, to.ptr]);
    } else {
      to.u8.set(from.u8.subarray(0, bytes));
    }
  }
}

function sameDims(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function readVerbose(): boolean {
  try {
    return Deno.env.get("RESSL_DNNL_VERBOSE") === "1";
  } catch {
    return false;
  }
}
