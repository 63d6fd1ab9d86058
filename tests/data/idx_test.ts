import assert from "node:assert/strict";
import {
  DEBIAN_FASHION_MNIST_DIR,
  parseIdx,
  readIdxDataset,
  readIdxFile,
} from "../../src/data/datasets/idx.ts";
import { gzipBomb } from "./bombs.ts";
import { openDataset } from "../../src/data/datasets/mod.ts";

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  const view = new DataView(out.buffer);
  dims.forEach((d, k) => view.setUint32(4 + 4 * k, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const s = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream()
    .pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(s).arrayBuffer());
}

Deno.test("IDX: raw and gzipped files read the same; shape, labels, pixels", async () => {
  const root = await Deno.makeTempDir();
  try {
    const pixels = Uint8Array.from({ length: 3 * 4 * 5 }, (_, k) => (k * 37) & 255);
    const images = idx([3, 4, 5], pixels);
    const labels = idx([3], new Uint8Array([9, 0, 4]));
    await Deno.writeFile(`${root}/train-images-idx3-ubyte`, images);
    await Deno.writeFile(`${root}/train-labels-idx1-ubyte`, labels);
    await Deno.writeFile(`${root}/t10k-images-idx3-ubyte.gz`, await gzip(images));
    await Deno.writeFile(`${root}/t10k-labels-idx1-ubyte.gz`, await gzip(labels));
    for (const split of ["train", "test"] as const) {
      const ds = await readIdxDataset({ root, split });
      assert.deepEqual([ds.length, ds.height, ds.width, ds.channels], [3, 4, 5, 1]);
      assert.deepEqual([...ds.labels!], [9, 0, 4]);
      assert.deepEqual(ds.images, pixels);
      assert.equal(ds.classes![9], "Ankle boot");
    }
    const m = await readIdxDataset({ root, split: "test", flavor: "mnist" });
    assert.equal(m.classes![4], "4");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("IDX: bad magic, element type, truncation, count mismatch and corrupt gzip", async () => {
  const ok = idx([2, 2, 2], new Uint8Array(8));
  assert.throws(() => parseIdx(new Uint8Array([1, 2, 8, 3]), "f"), /'f': bad magic 0x01020803/);
  const wrongType = ok.slice();
  wrongType[2] = 0x0d;
  assert.throws(() => parseIdx(wrongType, "f"), /element type 0xd is not supported/);
  assert.throws(
    () => parseIdx(ok.subarray(0, ok.length - 3), "f"),
    /'f': file is 3 bytes short of its 2x2x2 data \(truncated download\?\)/,
  );
  assert.throws(() => parseIdx(ok.subarray(0, 9), "f"), /short of its header/);
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${root}/train-images-idx3-ubyte`, ok);
    await Deno.writeFile(`${root}/train-labels-idx1-ubyte`, idx([3], new Uint8Array(3)));
    await assert.rejects(readIdxDataset({ root, split: "train" }), /has 3 labels for the 2 images/);
    const gz = await gzip(ok);
    await Deno.writeFile(`${root}/t10k-images-idx3-ubyte.gz`, gz.subarray(0, gz.length - 6));
    await Deno.writeFile(`${root}/t10k-labels-idx1-ubyte`, idx([2], new Uint8Array(2)));
    await assert.rejects(
      readIdxDataset({ root, split: "test" }),
      /t10k-images-idx3-ubyte\.gz': gzip data is corrupt or truncated/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("IDX: a gzip bomb stops inflating at the size its header declares", async () => {
  const root = await Deno.makeTempDir();
  try {
    // 1.5 MB of gzip that inflates to 1.5 GiB, behind a header declaring 2x28x28 images.
    const header = idx([2, 28, 28], new Uint8Array(0));
    const bomb = gzipBomb(header, 1536);
    assert.ok(bomb.length < 2e6, `bomb is ${bomb.length} bytes`);
    const path = `${root}/train-images-idx3-ubyte.gz`;
    await Deno.writeFile(path, bomb);
    await assert.rejects(
      readIdxFile(path),
      /Cannot read IDX file '.*train-images-idx3-ubyte\.gz': gzip data inflates beyond the 1584 bytes its header declares/,
    );
    // A header declaring more than the gzip can possibly hold is refused before inflating.
    const huge = gzipBomb(idx([3000, 1000, 1000], new Uint8Array(0)), 2);
    await Deno.writeFile(path, huge);
    await assert.rejects(
      readIdxFile(path),
      /its header declares 3000x1000x1000 data \(3000000016 bytes\) but \d+ bytes of gzip can hold at most \d+ \(corrupt header or truncated file\)/,
    );
    // ... and so is one above the limit, raw or gzipped.
    await Deno.writeFile(path, await gzip(idx([1000, 100, 100], new Uint8Array(1000 * 100 * 100))));
    await assert.rejects(
      readIdxFile(path, { maxBytes: 5_000_000 }),
      /declares 1000x100x100 data \(10000016 bytes\), above the limit of 5000000 bytes/,
    );
    assert.equal((await readIdxFile(path)).data.length, 10_000_000, "fine without the limit");
    const raw = `${root}/t10k-images-idx3-ubyte`;
    await Deno.writeFile(raw, idx([4, 2, 2], new Uint8Array(16)).subarray(0, 20));
    await assert.rejects(readIdxFile(raw), /file is 12 bytes short of its 4x2x2 data/);
    await Deno.writeFile(raw, idx([4, 2, 2], new Uint8Array(19)));
    await assert.rejects(readIdxFile(raw), /file has 3 bytes after its 4x2x2 data/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

const haveReal = (() => {
  try {
    Deno.statSync(`${DEBIAN_FASHION_MNIST_DIR}/train-images-idx3-ubyte.gz`);
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "Fashion-MNIST: the real files (Debian dataset-fashion-mnist) are the default",
  ignore: !haveReal,
  fn: async () => {
    const train = await openDataset("fashion-mnist", { dataDir: "/nonexistent", split: "train" });
    const test = await openDataset("fashion-mnist", { dataDir: "/nonexistent", split: "test" });
    assert.deepEqual([train.length, train.height, train.width, train.channels], [60000, 28, 28, 1]);
    assert.equal(test.length, 10000);
    // Published facts: balanced classes, first training image an ankle boot, first test one too.
    for (const [ds, per] of [[train, 6000], [test, 1000]] as const) {
      const counts = new Array(10).fill(0);
      for (const l of ds.labels!) counts[l]++;
      assert.deepEqual(counts, new Array(10).fill(per));
    }
    assert.equal(train.labels![0], 9);
    assert.equal(test.labels![0], 9);
    let sum = 0;
    for (const v of train.images!) sum += v;
    const mean = sum / train.images!.length / 255;
    assert.ok(Math.abs(mean - 0.2860) < 5e-4, `mean ${mean} vs the preset's 0.2860`);
  },
});
