/**
 * What `--data` resolves to (tasks/data_source.ts) and how an image folder is split and sized
 * (tasks/folder_data.ts): built-in files directly in the folder or in <folder>/<name>/, image
 * folders with or without train/ + val/, the errors naming the path, the fixed held-out split,
 * subsets, and the default image size.
 */
import assert from "node:assert/strict";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { DataError } from "../../src/data/errors.ts";
import { UsageError } from "../../tasks/cli_flags.ts";
import { holdsBuiltin, resolveData } from "../../tasks/data_source.ts";
import {
  defaultImageSize,
  heldOutSplit,
  indexSubset,
  MAX_DEFAULT_IMAGE_SIZE,
  openFolder,
} from "../../tasks/folder_data.ts";
import { pngBytes, writeClassPngs, writeFashionMnist } from "./cli_helpers.ts";

Deno.test("resolveData() finds a built-in dataset's files in the folder or in <folder>/<name>/", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_src_" });
  try {
    writeFashionMnist(`${dir}/top`, 10, 10);
    writeFashionMnist(`${dir}/nested/fashion-mnist`, 10, 10);
    await Deno.mkdir(`${dir}/cifar/cifar-10-batches-bin`, { recursive: true });
    await Deno.writeFile(`${dir}/cifar/cifar-10-batches-bin/data_batch_1.bin`, new Uint8Array(1));
    assert.deepEqual(resolveData("fashion-mnist", `${dir}/top`), {
      kind: "builtin",
      name: "fashion-mnist",
      root: `${dir}/top`,
      where: `${dir}/top`,
    });
    assert.equal(
      (resolveData("fashion-mnist", `${dir}/nested`) as { root: string }).root,
      `${dir}/nested/fashion-mnist`,
    );
    assert.equal((resolveData("cifar10", `${dir}/cifar`) as { root: string }).root, `${dir}/cifar`);
    assert.ok(holdsBuiltin(`${dir}/top`) && holdsBuiltin(`${dir}/cifar`));
    assert.ok(!holdsBuiltin(dir));
    // Another dataset's folder is not taken for this one.
    assert.throws(() => resolveData("cifar10", `${dir}/top`), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /Cannot use --data '.*top': it holds neither the cifar10 files/);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveData() takes image folders (train/ + val/ too) and names the path when wrong", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_src_" });
  try {
    writeClassPngs(`${dir}/flat`, 3, 0, 1, 8);
    writeClassPngs(`${dir}/split/train/a`, 3, 0, 1, 8);
    writeClassPngs(`${dir}/split/val/a`, 2, 0, 2, 8);
    assert.deepEqual(resolveData("fashion-mnist", `${dir}/flat`), {
      kind: "folder",
      root: `${dir}/flat`,
      trainDir: `${dir}/flat`,
      testDir: undefined,
    });
    assert.deepEqual(resolveData("image-folder", `${dir}/split`), {
      kind: "folder",
      root: `${dir}/split`,
      trainDir: `${dir}/split/train`,
      testDir: `${dir}/split/val`,
    });
    const usage = (f: () => unknown, re: RegExp) =>
      assert.throws(f, (e: Error) => e instanceof UsageError && re.test(e.message));
    usage(() => resolveData("fashion-mnist", `${dir}/none`), /--data: '.*none' does not exist/);
    usage(() => resolveData("image-folder", `${dir}/flat/img000.png`), /is a file/);
    usage(() => resolveData("image-folder", undefined), /Missing flag --data/);
    await Deno.mkdir(`${dir}/empty`);
    assert.throws(
      () => resolveData("image-folder", `${dir}/empty`),
      /Cannot use --data '.*empty'.*no JPEG, PNG or WebP images/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("heldOutSplit() is fixed, disjoint and complete; indexSubset() reads through", () => {
  for (const n of [2, 10, 48, 1001]) {
    const a = heldOutSplit(n), b = heldOutSplit(n);
    assert.deepEqual(a, b, "the same split every time (train and eval agree)");
    assert.equal(a.test.length, Math.max(1, Math.min(n - 1, Math.ceil(n / 10))));
    const all = [...a.train, ...a.test].sort((x, y) => x - y);
    assert.deepEqual(all, Array.from({ length: n }, (_, i) => i));
  }
  assert.throws(() => heldOutSplit(1), /1 image/);
  const images = Uint8Array.from({ length: 5 * 4 }, (_, i) => i);
  const ds = memoryDataset({
    name: "m",
    images,
    height: 2,
    width: 2,
    channels: 1,
    labels: Int32Array.from([0, 1, 0, 1, 2]),
  });
  const sub = indexSubset(ds, Int32Array.from([4, 1]), "m[sub]");
  assert.deepEqual([...sub.labels!], [2, 1]);
  const out = new Uint8Array(8);
  sub.readInto([1, 0], out);
  assert.deepEqual([...out], [4, 5, 6, 7, 16, 17, 18, 19]);
});

Deno.test("defaultImageSize() takes the most common size's shorter side, capped at 224", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_src_" });
  try {
    const write = (name: string, w: number, h: number) =>
      Deno.writeFileSync(`${dir}/${name}.png`, pngBytes(w, h, () => 100));
    write("a", 40, 30);
    write("b", 40, 30);
    write("c", 12, 12);
    const files = ["a", "b", "c"].map((n) => `${dir}/${n}.png`);
    const d = defaultImageSize(files);
    assert.equal(d.size, 30);
    assert.match(d.note, /most common size is 40x30, 2 of 3 images; sizes range 12-40 x 12-30/);
    write("big", 300, 260);
    const big = defaultImageSize([`${dir}/big.png`]);
    assert.equal(big.size, MAX_DEFAULT_IMAGE_SIZE);
    assert.match(big.note, /capped at 224/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openFolder(): class folders give labels and the held-out split; val/ classes must match", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_src_" });
  try {
    writeClassPngs(`${dir}/c/a`, 6, 0, 1, 8);
    writeClassPngs(`${dir}/c/b`, 4, 1, 2, 8);
    const fd = openFolder(
      { kind: "folder", root: `${dir}/c`, trainDir: `${dir}/c` },
      { size: 8, channels: 3 },
    );
    assert.equal(fd.pretrain.length, 10);
    assert.equal(fd.test!.length, 1);
    assert.equal(fd.train!.length, 9);
    assert.equal(fd.split, "held out");
    writeClassPngs(`${dir}/s/train/a`, 3, 0, 1, 8);
    writeClassPngs(`${dir}/s/val/z`, 2, 0, 1, 8);
    assert.throws(
      () =>
        openFolder(
          { kind: "folder", root: `${dir}/s`, trainDir: `${dir}/s/train`, testDir: `${dir}/s/val` },
          { size: 8, channels: 3 },
        ),
      /class folders \["z"\] differ from the training ones \["a"\]/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
