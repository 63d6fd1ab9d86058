/**
 * Image decoding: WebP (lossless exact, lossy against the pattern and PIL, alpha, animation
 * refused), every PNG colour type and bit depth, size limits checked from the header before any
 * allocation (PNG, JPEG, WebP), missing pixel data refused, other formats refused by name.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { decodeImage } from "../../src/data/image_decode.ts";
import { readImageInfo, sniffImageFormat } from "../../src/data/image_info.ts";
import { pngRawBytes } from "../../src/data/image_png.ts";
import { rawPng } from "./bombs.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;
const PY = "/usr/bin/python3";

/** The fixtures' pattern (make_fixtures.py), u8 HWC RGB. */
function pattern(h: number, w: number, seed: number): Uint8Array {
  const out = new Uint8Array(h * w * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) {
        out[(y * w + x) * 3 + c] = (seed * 40 + y * 9 + x * 5 + c * 80) & 255;
      }
    }
  }
  return out;
}

const maxDiff = (a: Uint8Array, b: Uint8Array) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const refuses = (bytes: Uint8Array, re: RegExp, limits = {}) =>
  assert.throws(() => decodeImage(bytes, "x.img", 3, limits), (e: Error) => {
    assert.equal(e.name, "DataError");
    assert.match(e.message, /^Cannot decode image 'x\.img': /);
    assert.match(e.message, re);
    return true;
  });

const havePil = (() => {
  try {
    return new Deno.Command(PY, { args: ["-c", "import PIL"] }).outputSync().success;
  } catch {
    return false;
  }
})();

Deno.test("WebP: lossless decodes exactly, lossy close to the source, alpha dropped", () => {
  const lossless = decodeImage(Deno.readFileSync(`${FIX}pattern_lossless.webp`), "l.webp");
  assert.deepEqual([lossless.height, lossless.width, lossless.channels], [6, 8, 3]);
  assert.deepEqual(lossless.data, pattern(6, 8, 0));
  const lossy = decodeImage(Deno.readFileSync(`${FIX}pattern_lossy.webp`), "q.webp");
  const err = maxDiff(lossy.data, pattern(6, 8, 1));
  let sum = 0;
  for (let i = 0; i < lossy.data.length; i++) sum += Math.abs(lossy.data[i] - pattern(6, 8, 1)[i]);
  const mean = sum / lossy.data.length;
  assert.ok(err > 0 && mean < 16, `lossy: mean error ${mean}, max ${err}`);
  const rgba = decodeImage(Deno.readFileSync(`${FIX}rgba_lossless.webp`), "a.webp");
  assert.deepEqual(rgba.data, pattern(3, 4, 2), "colour kept, alpha dropped");
  const gray = decodeImage(Deno.readFileSync(`${FIX}pattern_lossless.webp`), "l.webp", 1);
  const p = pattern(6, 8, 0);
  assert.equal(gray.data[7], Math.round(0.299 * p[21] + 0.587 * p[22] + 0.114 * p[23]));
});

Deno.test({
  name: havePil
    ? "WebP: lossy decode matches PIL's (libwebp) within 1"
    : "WebP vs PIL (skipped: /usr/bin/python3 with PIL not found)",
  ignore: !havePil,
  fn: async () => {
    const script = `from PIL import Image; import sys
sys.stdout.buffer.write(Image.open(sys.argv[1]).convert("RGB").tobytes())`;
    const out = await new Deno.Command(PY, {
      args: ["-c", script, `${FIX}pattern_lossy.webp`],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const ours = decodeImage(Deno.readFileSync(`${FIX}pattern_lossy.webp`), "q.webp");
    assert.ok(
      maxDiff(ours.data, out.stdout) <= 1,
      `differs from PIL by ${maxDiff(ours.data, out.stdout)}`,
    );
  },
});

Deno.test("WebP: animated, truncated and oversized files are refused by name", () => {
  refuses(
    Deno.readFileSync(`${FIX}animated.webp`),
    /it is a animated WebP image, a format that is not supported \(supported: JPEG, PNG, WebP\)/,
  );
  const good = Deno.readFileSync(`${FIX}pattern_lossy.webp`);
  refuses(good.subarray(0, good.length - 20), /corrupt or truncated WebP/);
  refuses(good.subarray(0, 20), /header is cut short \(corrupt or truncated WebP/);
  // A lossless header declaring 16384x16384 (268 megapixels).
  const big = Deno.readFileSync(`${FIX}pattern_lossless.webp`).slice();
  const bits = 16383 | (16383 << 14);
  big.set([bits & 255, (bits >>> 8) & 255, (bits >>> 16) & 255], 21);
  big[24] = (big[24] & 0xf0) | ((bits >>> 24) & 0x0f);
  assert.deepEqual(readImageInfo(big), { format: "WebP", width: 16384, height: 16384 });
  refuses(big, /declares 16384x16384 pixels \(268\.4 megapixels\), above the limit of 89\.5/);
});

/** Filter-0 rows of `samples` (one row = width * spp samples) at 8 or 16 bits, big-endian. */
function rows(samples: number[], rowLen: number, depth: 8 | 16): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < samples.length; i += rowLen) {
    out.push(0);
    for (const v of samples.slice(i, i + rowLen)) {
      out.push(...(depth === 16 ? [v >> 8, v & 255] : [v]));
    }
  }
  return Uint8Array.from(out);
}

Deno.test("PNG: gray, gray+alpha, RGBA, palette, 16-bit and tRNS decode to the stored colours", () => {
  const w = 3, h = 2;
  const gray = [0, 17, 255, 128, 64, 1];
  const rgbOf = (g: number[]) => Uint8Array.from(g.flatMap((v) => [v, v, v]));
  assert.deepEqual(decodeImage(rawPng(w, h, rows(gray, 3, 8), 0), "g.png").data, rgbOf(gray));
  const g16 = [0, 257 * 17, 65535, 32896, 300, 65534];
  const scaled = g16.map((v) => Math.floor((v * 255) / 65535 + 0.5));
  assert.deepEqual(
    decodeImage(rawPng(w, h, rows(g16, 3, 16), 0, 16), "g16.png").data,
    rgbOf(scaled),
  );
  const ga = gray.flatMap((v, k) => [v, k * 40]);
  assert.deepEqual(decodeImage(rawPng(w, h, rows(ga, 6, 8), 4), "ga.png").data, rgbOf(gray));
  const rgb = pattern(h, w, 3);
  const rgba = [...rgb].flatMap((v, k) => (k % 3 === 2 ? [v, 7] : [v]));
  assert.deepEqual(decodeImage(rawPng(w, h, rows(rgba, 12, 8), 6), "rgba.png").data, rgb);
  const rgb16 = [...rgb].map((v) => v * 257 + 3);
  assert.deepEqual(decodeImage(rawPng(w, h, rows(rgb16, 9, 16), 2, 16), "rgb16.png").data, rgb);
  const palette = Uint8Array.of(10, 20, 30, 200, 100, 0, 5, 5, 5);
  const idx = [0, 1, 2, 2, 1, 0];
  const want = Uint8Array.from(idx.flatMap((i) => [...palette.subarray(3 * i, 3 * i + 3)]));
  const pal = rawPng(w, h, rows(idx, 3, 8), 3, 8, [["PLTE", palette]]);
  assert.deepEqual(decodeImage(pal, "p.png").data, want);
  const palT = rawPng(w, h, rows(idx, 3, 8), 3, 8, [["PLTE", palette], [
    "tRNS",
    Uint8Array.of(0, 255),
  ]]);
  assert.deepEqual(
    decodeImage(palT, "pt.png").data,
    want,
    "transparent palette entries keep colour",
  );
  // tRNS on RGB marks one colour transparent: its colour is kept (as PIL's convert("RGB")).
  const t = Uint8Array.of(0, rgb[0], 0, rgb[1], 0, rgb[2]);
  assert.deepEqual(
    decodeImage(rawPng(w, h, rows([...rgb], 9, 8), 2, 8, [["tRNS", t]]), "t.png").data,
    rgb,
  );
});

Deno.test("PNG: a tiny file claiming 20000x20000 and missing pixel data are refused before decoding", () => {
  const bomb = rawPng(20000, 20000, new Uint8Array(0));
  assert.ok(bomb.length < 80, `bomb is ${bomb.length} bytes`);
  refuses(
    bomb,
    /header declares 20000x20000 pixels \(400\.0 megapixels\), above the limit of 89\.5 \(decompression bomb/,
  );
  refuses(
    bomb,
    /pixel data is missing: 20000x20000 pixels need 1200020000 bytes, but its \d+ compressed bytes inflate to at most \d+ \(truncated or corrupt PNG\)/,
    { maxPixels: 1e9 },
  );
  const row = new Uint8Array(1 + 8 * 3).fill(200);
  row[0] = 0;
  const twoRows = new Uint8Array([...row, ...row]);
  refuses(
    rawPng(8, 8, twoRows),
    /pixel data is 150 of 200 bytes short for its 8x8 pixels \(truncated PNG\?\)/,
  );
  const noise = Uint8Array.from(
    { length: 200 },
    (_, k) => (k % 25 === 0 ? 0 : (k * 2654435761) >>> 24),
  );
  const full = rawPng(8, 8, noise);
  refuses(
    full.subarray(0, full.length - 40),
    /pixel data is \d+ of 200 bytes short for its 8x8 pixels, and the file ends before its IEND chunk \(truncated PNG\?\)/,
  );
  refuses(full.subarray(0, 30), /no valid IHDR header/);
  const noIdat = full.slice(0, 33);
  refuses(noIdat, /no pixel data \(no IDAT chunk\) for its 8x8 pixels/);
  assert.equal(decodeImage(full, "ok.png").data.length, 192);
});

Deno.test("PNG: raw sizes of interlaced and sub-byte images follow the PNG specification", () => {
  const hdr = (
    width: number,
    height: number,
    colorType: number,
    bitDepth: number,
    interlace = 0,
  ) => ({ width, height, colorType, bitDepth, interlace });
  assert.equal(pngRawBytes(hdr(8, 8, 2, 8)), 8 * (1 + 24));
  assert.equal(pngRawBytes(hdr(10, 3, 0, 1)), 3 * (1 + 2));
  assert.equal(pngRawBytes(hdr(5, 5, 6, 16)), 5 * (1 + 40));
  // Adam7 of 3x3 RGB8: passes 1x1, -, 1x1, -, 2x1, 1x1... (x0,y0,dx,dy) give 1x1,0,1x1,1x1,2x1,1x2? count by hand:
  // p1 (0,0,8,8): 1x1; p2 (4,0): none; p3 (0,4): none; p4 (2,0,4,4): 1x1; p5 (0,2,2,4): 2x1;
  // p6 (1,0,2,2): 1x2; p7 (0,1,1,2): 3x1.
  const rowsOf = (w: number, n: number) => n * (1 + 3 * w);
  assert.equal(
    pngRawBytes(hdr(3, 3, 2, 8, 1)),
    rowsOf(1, 1) + rowsOf(1, 1) + rowsOf(2, 1) + rowsOf(1, 2) + rowsOf(3, 1),
  );
});

Deno.test("JPEG: size read from the frame header; a huge declared size is refused before decoding", () => {
  const w = 40, h = 24;
  const rgba = new Uint8Array(w * h * 4).map((_, k) => (k * 13) & 255);
  const j = new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 90).data);
  assert.deepEqual(readImageInfo(j), { format: "JPEG", width: 40, height: 24 });
  const big = j.slice();
  let at = 2;
  while (!(big[at + 1] >= 0xc0 && big[at + 1] <= 0xc2)) {
    at += 2 + ((big[at + 2] << 8) | big[at + 3]);
  }
  big.set([20000 >> 8, 20000 & 255, 20000 >> 8, 20000 & 255], at + 5);
  assert.deepEqual(readImageInfo(big), { format: "JPEG", width: 20000, height: 20000 });
  refuses(big, /declares 20000x20000 pixels \(400\.0 megapixels\), above the limit/);
  refuses(j.subarray(0, Math.floor(j.length * 0.7)), /corrupt or truncated JPEG/);
});

Deno.test("other image formats are refused naming the format and the supported ones", () => {
  const enc = (s: string) => new TextEncoder().encode(s.padEnd(32, "\0"));
  const cases: [Uint8Array, string][] = [
    [enc("GIF89a"), "GIF"],
    [enc("BM6\0\0\0"), "BMP"],
    [enc("II*\0"), "TIFF"],
    [enc("\0\0\0\x18ftypheic"), "HEIC"],
    [enc("\0\0\0\x1cftypavif"), "AVIF"],
  ];
  for (const [bytes, format] of cases) {
    assert.equal(sniffImageFormat(bytes), format);
    refuses(
      bytes,
      new RegExp(
        `it is a ${format} image, a format that is not supported \\(supported: JPEG, PNG, WebP\\)`,
      ),
    );
  }
  refuses(enc("hello"), /not a JPEG, PNG or WebP file/);
});
