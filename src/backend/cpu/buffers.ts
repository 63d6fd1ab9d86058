/**
 * Host memory of the cpu backend: 64-byte aligned buffers allocated by oneDNN
 * (`dnnl_memory_create` with `DNNL_MEMORY_ALLOCATE`), recycled through a pool keyed by size so a
 * training step with static shapes stops allocating after its first iteration.
 *
 * @module
 */

import { checkStatus, DataType, type DnnlSymbols, FormatTag } from "../../../ffi/dnnl/mod.ts";
import { dimsT } from "./memdesc.ts";
import { DNNL_SIZEOF } from "../../../ffi/dnnl/mod.ts";

/**
 * `DNNL_MEMORY_ALLOCATE`: asks `dnnl_memory_create` to allocate the buffer itself. Made on first
 * use, not at import: creating a pointer needs FFI permission, and importing mod.ts must not.
 */
let memoryAllocate: Deno.PointerValue | undefined;
function memoryAllocatePointer(): Deno.PointerValue {
  return memoryAllocate ??= Deno.UnsafePointer.create(0xffffffffffffffffn);
}

/** Idle bytes the pool keeps before it releases buffers to the system. */
const POOL_IDLE_LIMIT = 3 * 1024 ** 3;

/** One aligned buffer and typed views over it. */
export class Buffer {
  /** The oneDNN memory object that owns the bytes. */
  readonly owner: Deno.PointerObject;
  /** Address of the first byte. */
  readonly ptr: Deno.PointerObject;
  /** Capacity in bytes (a multiple of 64). */
  readonly bytes: number;
  readonly #ab: ArrayBuffer;
  #f32: Float32Array | undefined;
  #i32: Int32Array | undefined;
  #u16: Uint16Array | undefined;
  #u32: Uint32Array | undefined;
  #u8: Uint8Array | undefined;

  constructor(owner: Deno.PointerObject, ptr: Deno.PointerObject, bytes: number) {
    this.owner = owner;
    this.ptr = ptr;
    this.bytes = bytes;
    this.#ab = Deno.UnsafePointerView.getArrayBuffer(ptr, bytes);
  }

  /** The bytes as f32 elements. */
  get f32(): Float32Array {
    return this.#f32 ??= new Float32Array(this.#ab);
  }

  /** The bytes as i32 elements. */
  get i32(): Int32Array {
    return this.#i32 ??= new Int32Array(this.#ab);
  }

  /** The bytes as 16-bit words (bf16 bits). */
  get u16(): Uint16Array {
    return this.#u16 ??= new Uint16Array(this.#ab);
  }

  /** The bytes as 32-bit words (f32 bits, for bit-exact conversions). */
  get u32(): Uint32Array {
    return this.#u32 ??= new Uint32Array(this.#ab);
  }

  /** The bytes. */
  get u8(): Uint8Array {
    return this.#u8 ??= new Uint8Array(this.#ab);
  }
}

/** Allocates buffers through oneDNN and recycles freed ones by size. */
export class BufferPool {
  readonly #sym: DnnlSymbols;
  readonly #engine: Deno.PointerObject;
  readonly #idle = new Map<number, Buffer[]>();
  #idleBytes = 0;
  #all = new Set<Buffer>();

  constructor(sym: DnnlSymbols, engine: Deno.PointerObject) {
    this.#sym = sym;
    this.#engine = engine;
  }

  /** Bytes held by buffers in use or idle. */
  get heldBytes(): number {
    let n = 0;
    for (const b of this.#all) n += b.bytes;
    return n;
  }

  /** A buffer of at least `bytes` bytes (contents unspecified). */
  take(bytes: number): Buffer {
    const size = Math.max(64, Math.ceil(bytes / 64) * 64);
    const list = this.#idle.get(size);
    const reused = list?.pop();
    if (reused !== undefined) {
      this.#idleBytes -= size;
      return reused;
    }
    const md = new Uint8Array(DNNL_SIZEOF.memoryDesc);
    checkStatus(
      this.#sym.dnnl_memory_desc_init_by_tag(md, 1, dimsT([size]), DataType.u8, FormatTag.a),
      `describe a buffer of ${size} bytes`,
    );
    const out = new BigUint64Array(1);
    checkStatus(
      this.#sym.dnnl_memory_create(out, md, this.#engine, memoryAllocatePointer()),
      `allocate ${size} bytes`,
    );
    const owner = Deno.UnsafePointer.create(out[0])!;
    const handle = new BigUint64Array(1);
    checkStatus(this.#sym.dnnl_memory_get_data_handle(owner, handle), "read a buffer address");
    const buf = new Buffer(owner, Deno.UnsafePointer.create(handle[0])!, size);
    this.#all.add(buf);
    return buf;
  }

  /** Returns a buffer for reuse. */
  give(buf: Buffer): void {
    if (this.#idleBytes + buf.bytes > POOL_IDLE_LIMIT) {
      this.#destroy(buf);
      return;
    }
    let list = this.#idle.get(buf.bytes);
    if (list === undefined) this.#idle.set(buf.bytes, list = []);
    list.push(buf);
    this.#idleBytes += buf.bytes;
  }

  /** Releases every buffer, idle or not. */
  dispose(): void {
    for (const b of this.#all) this.#sym.dnnl_memory_destroy(b.owner);
    this.#all.clear();
    this.#idle.clear();
    this.#idleBytes = 0;
  }

  #destroy(buf: Buffer): void {
    this.#all.delete(buf);
    this.#sym.dnnl_memory_destroy(buf.owner);
  }
}
