import assert from "node:assert/strict";
// @ts-types="@types/pngjs"
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import { decodeImage, readImageFolder } from "../../src/data/datasets/image_folder.ts";
import { resizeU8 } from "../../src/image/resize.ts";

/** RGB test pattern, u8 HWC. */
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

function rgba(rgb: Uint8Array): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(n * 4);
  for (let p = 0; p < n; p++) out.set([rgb[3 * p], rgb[3 * p + 1], rgb[3 * p + 2], 255], 4 * p);
  return out;
}

function png(rgb: Uint8Array, h: number, w: number): Uint8Array {
  const p = new PNG({ width: w, height: h });
  p.data.set(rgba(rgb));
  return new Uint8Array(PNG.sync.write(p));
}

function jpg(rgb: Uint8Array, h: number, w: number): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba(rgb) }, 95).data);
}

Deno.test("image folder: class subfolders (nested), PNG exact, JPEG close, lazy equals eager", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/n02/images`, { recursive: true });
    await Deno.mkdir(`${root}/n01`);
    await Deno.mkdir(`${root}/empty`);
    await Deno.writeFile(`${root}/n01/b.png`, png(pattern(8, 6, 1), 8, 6));
    await Deno.writeFile(`${root}/n01/a.PNG`, png(pattern(8, 6, 0), 8, 6));
    await Deno.writeFile(`${root}/n01/notes.txt`, new TextEncoder().encode("not an image"));
    await Deno.writeFile(`${root}/n02/images/c.JPEG`, jpg(pattern(8, 6, 2), 8, 6));
    const ds = readImageFolder({ root });
    assert.deepEqual(ds.classes, ["n01", "n02"]);
    assert.deepEqual([...ds.labels!], [0, 0, 1]);
    assert.deepEqual([ds.length, ds.height, ds.width, ds.channels], [3, 8, 6, 3]);
    assert.deepEqual(ds.images!.subarray(0, 144), pattern(8, 6, 0));
    assert.deepEqual(ds.images!.subarray(144, 288), pattern(8, 6, 1));
    const want = pattern(8, 6, 2), got = ds.images!.subarray(288);
    let maxErr = 0;
    for (let k = 0; k < want.length; k++) maxErr = Math.max(maxErr, Math.abs(want[k] - got[k]));
    assert.ok(maxErr <= 24, `JPEG quality 95 error ${maxErr}`);
    const lazy = readImageFolder({ root, lazy: true });
    const out = new Uint8Array(2 * 144);
    lazy.readInto([2, 0], out);
    assert.deepEqual(
      out,
      new Uint8Array([...ds.images!.subarray(288), ...ds.images!.subarray(0, 144)]),
    );
    const gray = readImageFolder({ root, channels: 1 });
    const p = pattern(8, 6, 0);
    assert.equal(gray.images![5], Math.round(0.299 * p[15] + 0.587 * p[16] + 0.114 * p[17]));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("image folder: unlabelled folder, resize on load, size mismatch and undecodable files", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${root}/a.png`, png(pattern(8, 6, 0), 8, 6));
    await Deno.writeFile(`${root}/b.png`, png(pattern(4, 4, 1), 4, 4));
    assert.throws(
      () => readImageFolder({ root }),
      /b\.png': it is 4x4, the folder's first image is 6x8 \(pass a size to resize on load\)/,
    );
    const ds = readImageFolder({ root, size: 4 });
    assert.equal(ds.labels, undefined);
    assert.deepEqual([ds.length, ds.height, ds.width], [2, 4, 4]);
    assert.deepEqual(ds.images!.subarray(0, 48), resizeU8(pattern(8, 6, 0), 8, 6, 3, 4, 4));
    assert.deepEqual(ds.images!.subarray(48), pattern(4, 4, 1), "same size: untouched");
    await Deno.writeFile(`${root}/c.jpg`, new TextEncoder().encode("GIF89a..."));
    assert.throws(
      () => readImageFolder({ root, size: 4 }),
      /c\.jpg': it is a GIF image, a format that is not supported \(supported: JPEG, PNG, WebP\)/,
    );
    const trunc = png(pattern(8, 6, 0), 8, 6);
    await Deno.writeFile(`${root}/c.jpg`, trunc.subarray(0, 40));
    assert.throws(
      () => readImageFolder({ root, size: 4 }),
      /Cannot decode image '.*c\.jpg': no pixel data .* \(truncated PNG\?\)/,
    );
    const jt = jpg(pattern(8, 6, 0), 8, 6);
    assert.throws(
      () => decodeImage(jt.subarray(0, 30), "x.jpg"),
      /'x\.jpg': .*corrupt or truncated JPEG/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
  assert.throws(() => readImageFolder({ root: `${root}-missing` }), /Cannot read image folder/);
});
