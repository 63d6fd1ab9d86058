import assert from "node:assert/strict";
import { DEBIAN_FASHION_MNIST_DIR, parseIdx, readIdxDataset } from "../../src/data/datasets/idx.ts";
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
