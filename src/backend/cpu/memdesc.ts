/**
 * oneDNN memory descriptors for the cpu backend: 696-byte `dnnl_memory_desc_t` buffers, interned so
 * that two descriptors of the same layout are the same object (layout checks are identity checks).
 *
 * A storage of the cpu backend is either plain (dense row-major, the logical layout every kernel
 * speaks) or holds a `MemDesc` naming the blocked layout its bytes are in (e.g. nChw16c).
 *
 * @module
 */

import {
  DNNL_MAX_NDIMS,
  DNNL_OFFSET,
  DNNL_SIZEOF,
  type DnnlSymbols,
  FormatKind,
  FormatTag,
} from "../../../ffi/dnnl/mod.ts";
import { checkStatus } from "../../../ffi/dnnl/mod.ts";

/** An interned oneDNN memory descriptor. */
export class MemDesc {
  /** The `dnnl_memory_desc_t` bytes (never modified). */
  readonly bytes: Uint8Array;
  /** Logical dimensions. */
  readonly dims: readonly number[];
  /** Number of logical elements (product of `dims`). */
  readonly count: number;
  /** Physical size in bytes (padding included). */
  readonly size: number;
  /** Whether the layout is dense row-major (interchangeable with a plain storage). */
  readonly plain: boolean;
  /** `dnnl_data_type_t` of the elements. */
  readonly dataType: number;
  /** Interning key. */
  readonly key: string;
  /** Small integer naming this descriptor in cache keys. */
  readonly id: number;

  constructor(bytes: Uint8Array, size: number, key: string, id: number) {
    this.bytes = bytes;
    this.key = key;
    this.id = id;
    this.size = size;
    const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const ndims = v.getInt32(DNNL_OFFSET.mdNdims, true);
    const dims: number[] = [];
    for (let i = 0; i < ndims; i++) {
      dims.push(Number(v.getBigInt64(DNNL_OFFSET.mdDims + 8 * i, true)));
    }
    this.dims = Object.freeze(dims);
    this.dataType = v.getInt32(DNNL_OFFSET.mdDataType, true);
    this.count = dims.reduce((a, b) => a * b, 1);
    this.plain = isDenseRowMajor(v, dims);
  }
}

function isDenseRowMajor(v: DataView, dims: number[]): boolean {
  if (v.getInt32(DNNL_OFFSET.mdFormatKind, true) !== FormatKind.blocked) return false;
  if (v.getBigInt64(DNNL_OFFSET.mdOffset0, true) !== 0n) return false;
  if (v.getInt32(DNNL_OFFSET.mdInnerNblks, true) !== 0) return false;
  if (v.getBigUint64(DNNL_OFFSET.mdExtraFlags, true) !== 0n) return false;
  let stride = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    if (Number(v.getBigInt64(DNNL_OFFSET.mdPaddedDims + 8 * i, true)) !== dims[i]) return false;
    if (dims[i] > 1 && Number(v.getBigInt64(DNNL_OFFSET.mdStrides + 8 * i, true)) !== stride) {
      return false;
    }
    stride *= dims[i];
  }
  return true;
}

/** `dnnl_dims_t` (12 x int64) holding `values`. */
export function dimsT(values: readonly number[]): BigInt64Array {
  if (values.length > DNNL_MAX_NDIMS) {
    throw new RangeError(
      `Cannot describe ${values.length} dimensions: oneDNN allows ${DNNL_MAX_NDIMS}`,
    );
  }
  const d = new BigInt64Array(DNNL_MAX_NDIMS);
  values.forEach((x, i) => (d[i] = BigInt(x)));
  return d;
}

const PLAIN_TAGS = [FormatTag.a, FormatTag.a, FormatTag.ab, FormatTag.abc, FormatTag.abcd];

/** Creates and interns memory descriptors. */
export class MemDescTable {
  readonly #sym: DnnlSymbols;
  readonly #byKey = new Map<string, MemDesc>();
  readonly #plain = new Map<string, MemDesc>();

  constructor(sym: DnnlSymbols) {
    this.#sym = sym;
  }

  /** The dense row-major descriptor of `dims` (1 to 4 dimensions) with `dataType` elements. */
  plain(dims: readonly number[], dataType: number): MemDesc {
    const k = `${dataType}:${dims.join(",")}`;
    let md = this.#plain.get(k);
    if (md === undefined) {
      const bytes = this.#init(dims, dataType, PLAIN_TAGS[dims.length] ?? 0);
      md = this.intern(bytes);
      this.#plain.set(k, md);
    }
    return md;
  }

  /** A `format_tag_any` descriptor of `dims` (lets a primitive choose its layout). */
  any(dims: readonly number[], dataType: number): Uint8Array {
    return this.#init(dims, dataType, FormatTag.any);
  }

  /**
   * The same layout as `md` with elements of `dataType` (strides count elements, so a blocked
   * layout stays valid): how a cast keeps an activation's nChw16c layout.
   */
  withDataType(md: MemDesc, dataType: number): MemDesc {
    if (md.dataType === dataType) return md;
    const bytes = md.bytes.slice();
    new DataView(bytes.buffer).setInt32(DNNL_OFFSET.mdDataType, dataType, true);
    return this.intern(bytes);
  }

  /**
   * Whether `target` is `md` under other dimensions of the same element count, so the bytes need no
   * move (e.g. nChw16c [n, c, h, w] as nChw16c [n, c, h * w, 1]; `dnnl_memory_desc_reshape`).
   */
  reshapesTo(md: MemDesc, target: MemDesc): boolean {
    const bytes = new Uint8Array(DNNL_SIZEOF.memoryDesc);
    const dims = target.dims;
    const status = this.#sym.dnnl_memory_desc_reshape(bytes, md.bytes, dims.length, dimsT(dims));
    return status === 0 && this.#sym.dnnl_memory_desc_equal(bytes, target.bytes) === 1;
  }

  /**
   * A row-major [rows, cols] descriptor, or with `transposed` the [rows, cols] view of a row-major
   * [cols, rows] matrix (strides [1, rows]): how gemm's transposed operands are described.
   */
  matrix(rows: number, cols: number, transposed: boolean, dataType: number): Uint8Array {
    const bytes = new Uint8Array(DNNL_SIZEOF.memoryDesc);
    const strides = transposed ? [1, rows] : [cols, 1];
    checkStatus(
      this.#sym.dnnl_memory_desc_init_by_strides(
        bytes,
        2,
        dimsT([rows, cols]),
        dataType,
        dimsT(strides),
      ),
      `create a matrix descriptor [${rows}, ${cols}]`,
    );
    return bytes;
  }

  /** A descriptor of `dims` with an explicit format tag (not interned). */
  tagged(dims: readonly number[], tag: number, dataType: number): Uint8Array {
    return this.#init(dims, dataType, tag);
  }

  /** Interns a copy of the descriptor at `p` (as returned by `dnnl_primitive_desc_query_md`). */
  fromPointer(p: Deno.PointerObject): MemDesc {
    const view = Deno.UnsafePointerView.getArrayBuffer(p, DNNL_SIZEOF.memoryDesc);
    return this.intern(new Uint8Array(view).slice());
  }

  /** The interned descriptor equal to `bytes`. */
  intern(bytes: Uint8Array): MemDesc {
    let key = "";
    for (let i = 0; i < bytes.length; i += 256) {
      key += String.fromCharCode(...bytes.subarray(i, Math.min(i + 256, bytes.length)));
    }
    let md = this.#byKey.get(key);
    if (md === undefined) {
      const size = Number(this.#sym.dnnl_memory_desc_get_size(bytes));
      md = new MemDesc(bytes, size, key, this.#byKey.size + 1);
      this.#byKey.set(key, md);
    }
    return md;
  }

  #init(dims: readonly number[], dataType: number, tag: number): Uint8Array {
    if (dims.length < 1 || dims.length > 4) {
      throw new RangeError(`Cannot describe [${dims}]: the cpu backend uses 1 to 4 dimensions`);
    }
    const bytes = new Uint8Array(DNNL_SIZEOF.memoryDesc);
    const status = this.#sym.dnnl_memory_desc_init_by_tag(
      bytes,
      dims.length,
      dimsT(dims),
      dataType,
      tag,
    );
    checkStatus(status, `create a memory descriptor for [${dims}]`);
    return bytes;
  }
}
