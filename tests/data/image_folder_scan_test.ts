/**
 * Image folder scanning (what is read, refused, skipped) and the survey helpers for a folder of
 * one's own images: size statistics and a seeded mean/std estimate.
 */
import assert from "node:assert/strict";
// @ts-types="@types/pngjs"
import { PNG } from "pngjs";
import jpeg from "jpeg-js";
import {
  estimateMeanStd,
  imageSizeStats,
  readImageFolder,
  sampleFiles,
  scanImageFolder,
} from "../../src/data/datasets/mod.ts";
import { resizeU8 } from "../../src/image/resize.ts";

const FIX = new URL("./fixtures/", import.meta.url).pathname;

/** A PNG of `h` x `w` whose pixels are `f(y, x, c)`. */
function png(h: number, w: number, f: (y: number, x: number, c: number) => number): Uint8Array {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) p.data[(y * w + x) * 4 + c] = f(y, x, c);
      p.data[(y * w + x) * 4 + 3] = 255;
    }
  }
  return new Uint8Array(PNG.sync.write(p));
}

function jpg(h: number, w: number): Uint8Array {
  const data = new Uint8Array(h * w * 4).fill(128);
  return new Uint8Array(jpeg.encode({ width: w, height: h, data }, 90).data);
}

async function tree(files: Record<string, Uint8Array | string>): Promise<string> {
  const root = await Deno.makeTempDir();
  for (const [p, b] of Object.entries(files)) {
    const dir = p.includes("/") ? `${root}/${p.slice(0, p.lastIndexOf("/"))}` : root;
    await Deno.mkdir(dir, { recursive: true });
    await Deno.writeFile(`${root}/${p}`, typeof b === "string" ? new TextEncoder().encode(b) : b);
  }
  return root;
}

const flat = png(4, 6, (y, x, c) => 10 * y + x + 60 * c);

Deno.test("image folder: WebP is read, never skipped; non-images are skipped and counted", async () => {
  const webp = Deno.readFileSync(`${FIX}pattern_lossless.webp`);
  const root = await tree({
    "cats/a.webp": webp,
    "cats/b.png": png(6, 8, () => 9),
    "cats/noext": jpg(6, 8), // a JPEG without an extension: found by its content
    "cats/notes.txt": "not an image",
    "cats/.DS_Store": "\0\0\0\x01Bud1",
    "cats/._a.webp": "\0\x05\x16\x07AppleDouble", // macOS metadata beside a copied file
    ".ipynb_checkpoints/x.png": png(6, 8, () => 1),
  });
  try {
    const scan = scanImageFolder(root);
    assert.deepEqual(scan.files.map((f) => f.slice(root.length + 1)), [
      "cats/a.webp",
      "cats/b.png",
      "cats/noext",
    ]);
    assert.deepEqual(scan.classes, ["cats"]);
    assert.deepEqual(
      scan.skipped.map((f) => f.slice(root.length + 1)).sort(),
      [".ipynb_checkpoints/", "cats/.DS_Store", "cats/._a.webp", "cats/notes.txt"],
    );
    const lines: string[] = [];
    const ds = readImageFolder({ root, log: (l) => lines.push(l) });
    assert.equal(ds.length, 3);
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /image folder '.*': skipped 4 file\(s\) that are not images \('.*', '.*', '.*', \.\.\.\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("image folder: GIF, BMP, TIFF, HEIC files are refused by name with the supported formats", async () => {
  const root = await tree({
    "a/ok.png": flat,
    "a/anim.gif": "GIF89a...",
    "b/scan.tiff": "II*\0....",
    "b/photo.HEIC": "\0\0\0\x18ftypheic",
    "b/icon.bmp": "BM......",
    "b/renamed.dat": "GIF89a...", // unknown extension: found by content
  });
  try {
    assert.throws(() => scanImageFolder(root), (e: Error) => {
      assert.equal(e.name, "DataError");
      assert.match(
        e.message,
        /^Cannot read image folder '.*': 5 images are in a format that is not supported: '.*a\/anim\.gif' \(GIF\), '.*b\/icon\.bmp' \(BMP\), '.*b\/photo\.HEIC' \(HEIC\), \.\.\.\. Supported formats: JPEG, PNG, WebP; convert them/,
      );
      return true;
    });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("image folder: images beside class folders are refused, an empty folder says what it skipped", async () => {
  const root = await tree({ "loose.png": flat, "cls/x.png": flat });
  try {
    assert.throws(
      () => scanImageFolder(root),
      /holds 1 image\(s\) directly \('.*loose\.png'\) beside class subfolders \(cls\); move every image/,
    );
    await Deno.remove(`${root}/loose.png`);
    await Deno.remove(`${root}/cls`, { recursive: true });
    await Deno.writeFile(`${root}/readme.md`, new TextEncoder().encode("# data"));
    assert.throws(
      () => scanImageFolder(root),
      /no JPEG, PNG or WebP images found .*; 1 other file\(s\) skipped \('.*readme\.md'\)/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("image folder: a symlinked class folder is followed", async () => {
  const root = await tree({ "real/x.png": flat });
  const data = `${root}/data`;
  try {
    await Deno.mkdir(data);
    await Deno.symlink(`${root}/real`, `${data}/linked`);
    const scan = scanImageFolder(data);
    assert.deepEqual(scan.classes, ["linked"]);
    assert.equal(scan.files.length, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("image sizes: counts per size from headers, most common first; unreadable header named", async () => {
  const root = await tree({
    "a.png": png(4, 6, () => 0),
    "b.jpg": jpg(4, 6),
    "c.webp": Deno.readFileSync(`${FIX}pattern_lossless.webp`), // 8x6
    "d.png": png(10, 3, () => 0),
    "e.jpg": jpg(4, 6),
  });
  try {
    const { files } = scanImageFolder(root);
    const s = imageSizeStats(files);
    assert.equal(s.images, 5);
    assert.deepEqual(s.mostCommon, { width: 6, height: 4, count: 3 });
    assert.deepEqual(s.sizes.slice(1), [{ width: 8, height: 6, count: 1 }, {
      width: 3,
      height: 10,
      count: 1,
    }]);
    assert.deepEqual([s.minWidth, s.maxWidth, s.minHeight, s.maxHeight], [3, 8, 4, 10]);
    assert.equal(imageSizeStats(files, { sample: 2, seed: 1 }).images, 2);
    await Deno.writeFile(`${root}/b.jpg`, new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 2]));
    assert.throws(
      () => imageSizeStats(files),
      /Cannot read the size of image '.*b\.jpg': bad image header: no frame header/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("mean/std: exact on known pixels, seeded sample is deterministic, resize applied", async () => {
  // Image k is constant per channel: R = 10k, G = 100, B = 200 - 10k (k = 0..9).
  const files: Record<string, Uint8Array> = {};
  for (let k = 0; k < 10; k++) {
    files[`img${k}.png`] = png(3, 5, (_y, _x, c) => [10 * k, 100, 200 - 10 * k][c]);
  }
  const root = await tree(files);
  try {
    const { files: list } = scanImageFolder(root);
    const all = estimateMeanStd(list);
    assert.equal(all.images, 10);
    assert.equal(all.pixels, 150);
    const r = Array.from({ length: 10 }, (_, k) => 10 * k / 255);
    const mean = r.reduce((a, b) => a + b) / 10;
    const std = Math.sqrt(r.reduce((a, b) => a + (b - mean) ** 2, 0) / 10);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} vs ${b}`);
    close(all.mean[0], mean);
    close(all.mean[1], 100 / 255);
    close(all.mean[2], 200 / 255 - mean);
    close(all.std[0], std);
    close(all.std[1], 0);
    close(all.std[2], std);
    const a = estimateMeanStd(list, { sample: 4, seed: 7 });
    assert.deepEqual(estimateMeanStd(list, { sample: 4, seed: 7 }), a, "same seed, same result");
    const picked = sampleFiles(list, { sample: 4, seed: 7 });
    assert.equal(picked.length, 4);
    const ks = picked.map((f) => Number(/img(\d)/.exec(f)![1]));
    close(a.mean[0], ks.reduce((s, k) => s + 10 * k, 0) / 4 / 255);
    assert.notDeepEqual(
      sampleFiles(list, { sample: 4, seed: 8 }),
      picked,
      "another seed, another sample",
    );
    const gray = estimateMeanStd(list, { channels: 1, sample: 10 });
    assert.equal(gray.mean.length, 1);
    // Resizing is applied before the statistics (a gradient image, 8x8 -> 3x3).
    const grad = await tree({ "g.png": png(8, 8, (y, x) => 30 * x + y) });
    try {
      const g = estimateMeanStd([`${grad}/g.png`], { size: 3 });
      const img = new Uint8Array(8 * 8 * 3).map((_, i) => {
        const p = Math.floor(i / 3);
        return 30 * (p % 8) + Math.floor(p / 8);
      });
      const small = resizeU8(img, 8, 8, 3, 3, 3);
      close(g.mean[0], small.filter((_, i) => i % 3 === 0).reduce((s, v) => s + v, 0) / 9 / 255);
      assert.equal(g.pixels, 9);
    } finally {
      await Deno.remove(grad, { recursive: true });
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
