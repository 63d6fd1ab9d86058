/**
 * WebP decoding with libwebp compiled to WebAssembly (npm `@cwasm/webp`: lossy VP8, lossless VP8L,
 * alpha; not animation). The module is compiled at import and instantiated on the first decode,
 * synchronously, so it needs no permission and no asynchronous start-up.
 *
 * @module
 */

import webpModule from "./webp_wasm.js";

interface WebpExports {
  memory: WebAssembly.Memory;
  malloc(size: number): number;
  free(ptr: number): void;
  /** Returns a malloc'ed RGBA buffer (0 on failure) and writes width and height as u32. */
  WebPDecodeRGBA(data: number, size: number, width: number, height: number): number;
}

let instance: WebpExports | undefined;

function wasm(): WebpExports {
  if (!instance) {
    const unused = (name: string) => () => {
      throw new Error(`WASI call ${name} is not available to the WebP decoder`);
    };
    instance = new WebAssembly.Instance(webpModule, {
      wasi_snapshot_preview1: {
        fd_close: unused("fd_close"),
        fd_seek: unused("fd_seek"),
        fd_write: unused("fd_write"),
      },
    }).exports as unknown as WebpExports;
  }
  return instance;
}

/** True when a WebP file is animated (VP8X with the animation flag): not decoded here. */
export function isAnimatedWebp(bytes: Uint8Array): boolean {
  return bytes.length > 20 && String.fromCharCode(...bytes.subarray(12, 16)) === "VP8X" &&
    (bytes[20] & 0x02) !== 0;
}

/**
 * Decodes a WebP image to RGBA (8 bits per channel). Returns undefined when libwebp refuses the
 * data (corrupt or truncated). The caller checks the declared size first: decoding allocates
 * `4 * width * height` bytes inside the WebAssembly memory.
 */
export function decodeWebpRgba(
  bytes: Uint8Array,
): { width: number; height: number; rgba: Uint8Array } | undefined {
  const w = wasm();
  const input = w.malloc(bytes.length);
  const dims = w.malloc(8);
  try {
    if (input === 0 || dims === 0) throw new Error("out of WebAssembly memory");
    new Uint8Array(w.memory.buffer, input, bytes.length).set(bytes);
    const out = w.WebPDecodeRGBA(input, bytes.length, dims, dims + 4);
    if (out === 0) return undefined;
    const [width, height] = new Uint32Array(w.memory.buffer, dims, 2);
    const rgba = new Uint8Array(w.memory.buffer, out, 4 * width * height).slice();
    w.free(out);
    return { width, height, rgba };
  } finally {
    w.free(input);
    w.free(dims);
  }
}
