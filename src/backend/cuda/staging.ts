/**
 * Host <-> device transfers of the cuda backend through pinned (page-locked) staging memory.
 *
 * Uploads are asynchronous: the host bytes are copied into one of a ring of pinned slots, and
 * `cuMemcpyHtoDAsync_v2` from that slot is queued on the stream, followed by an event. A slot is
 * reused only after its event has completed, so the host never overwrites bytes a queued copy
 * has yet to read, and it runs ahead of the device by up to the ring's size. Large uploads go
 * through the ring in chunks, so pinned memory stays bounded (`slots * chunk`). Pinned sources
 * are also what CUDA graph capture requires.
 *
 * Downloads are the synchronisation point: queued on the stream into a pinned buffer, then the
 * stream is synchronised and the bytes copied out, chunk by chunk.
 *
 * @module
 */

import type { CudaDriver } from "../../../ffi/cuda/driver.ts";
import {
  allocPinned,
  copyDtoHAsync,
  copyHtoDAsync,
  type PinnedBuffer,
} from "../../../ffi/cuda/memory.ts";
import {
  createEvent,
  destroyEvent,
  recordEvent,
  syncEvent,
  syncStream,
} from "../../../ffi/cuda/stream.ts";
import { CU_FLAGS } from "../../../ffi/cuda/driver_symbols.ts";

/** Bytes per chunk of a transfer (and the largest pinned slot). */
export const STAGING_CHUNK = 8 << 20;
/** Pinned upload slots in the ring. */
export const STAGING_SLOTS = 8;
const MIN_SLOT = 64 << 10;

interface Slot {
  buf: PinnedBuffer | null;
  event: Deno.PointerObject;
  pending: boolean;
}

/** Transfer counters (tests and benchmarks). */
export interface StagingStats {
  /** Upload chunks queued. */
  uploads: number;
  /**
   * Times an upload synchronised on the event of a slot's earlier copy (at once when the copy has
   * run; a wait only when the host is a ring's worth of uploads ahead of the device).
   */
  slotWaits: number;
  /** Pinned bytes held. */
  pinnedBytes: number;
}

/** Pinned staging for one stream; see the module documentation. */
export class Staging {
  readonly #drv: CudaDriver;
  readonly #stream: Deno.PointerObject;
  readonly #slots: Slot[] = [];
  #next = 0;
  #download: PinnedBuffer | null = null;
  #uploads = 0;
  #slotWaits = 0;

  constructor(drv: CudaDriver, stream: Deno.PointerObject) {
    this.#drv = drv;
    this.#stream = stream;
    try {
      for (let i = 0; i < STAGING_SLOTS; i++) {
        const event = createEvent(drv, CU_FLAGS.EVENT_DISABLE_TIMING);
        this.#slots.push({ buf: null, event, pending: false });
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Queues a copy of `src`'s bytes to device address `dst` (returns before it runs). */
  upload(dst: bigint, src: ArrayBufferView): void {
    const all = new Uint8Array(src.buffer, src.byteOffset, src.byteLength);
    for (let at = 0; at < all.length; at += STAGING_CHUNK) {
      const part = all.subarray(at, Math.min(at + STAGING_CHUNK, all.length));
      const slot = this.#slotFor(part.length);
      new Uint8Array(slot.buf!.buffer, 0, part.length).set(part);
      copyHtoDAsync(this.#drv, dst + BigInt(at), slot.buf!.pointer, part.length, this.#stream);
      recordEvent(this.#drv, slot.event, this.#stream);
      slot.pending = true;
      this.#uploads++;
    }
  }

  /** Fills `dst` with the bytes at device address `src` once the stream's work is done. */
  download(dst: ArrayBufferView, src: bigint): void {
    const all = new Uint8Array(dst.buffer, dst.byteOffset, dst.byteLength);
    if (all.length === 0) return;
    const want = Math.min(STAGING_CHUNK, all.length);
    if (this.#download === null || this.#download.bytes < want) {
      this.#download?.free();
      this.#download = null;
      this.#download = allocPinned(this.#drv, Math.max(MIN_SLOT, pow2(want)));
    }
    const buf = this.#download;
    for (let at = 0; at < all.length; at += STAGING_CHUNK) {
      const n = Math.min(STAGING_CHUNK, all.length - at);
      copyDtoHAsync(this.#drv, buf.pointer, src + BigInt(at), n, this.#stream);
      syncStream(this.#drv, this.#stream);
      this.markIdle();
      all.set(new Uint8Array(buf.buffer, 0, n), at);
    }
  }

  /** Notes that the stream has finished all queued work (every slot is free again). */
  markIdle(): void {
    for (const s of this.#slots) s.pending = false;
  }

  /** Counters of transfers and pinned memory. */
  stats(): StagingStats {
    let pinned = this.#download?.bytes ?? 0;
    for (const s of this.#slots) pinned += s.buf?.bytes ?? 0;
    return { uploads: this.#uploads, slotWaits: this.#slotWaits, pinnedBytes: pinned };
  }

  /** Frees the pinned memory and events (after the stream's copies are done). */
  dispose(): void {
    for (const s of this.#slots.splice(0)) {
      if (s.pending) syncEvent(this.#drv, s.event);
      s.buf?.free();
      destroyEvent(this.#drv, s.event);
    }
    this.#download?.free();
    this.#download = null;
  }

  #slotFor(bytes: number): Slot {
    const slot = this.#slots[this.#next];
    this.#next = (this.#next + 1) % this.#slots.length;
    if (slot.pending) {
      syncEvent(this.#drv, slot.event);
      slot.pending = false;
      this.#slotWaits++;
    }
    if (slot.buf === null || slot.buf.bytes < bytes) {
      slot.buf?.free();
      slot.buf = null;
      slot.buf = allocPinned(this.#drv, Math.max(MIN_SLOT, pow2(bytes)));
    }
    return slot;
  }
}

function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
