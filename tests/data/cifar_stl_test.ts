import assert from "node:assert/strict";
import { readCifar10, readCifar100 } from "../../src/data/datasets/cifar.ts";
import { readStl10 } from "../../src/data/datasets/stl10.ts";
import { DataError } from "../../src/data/errors.ts";

/** A deterministic pixel value for image `i`, channel `c`, row `y`, column `x`. */
const px = (i: number, c: number, y: number, x: number) => (i * 31 + c * 71 + y * 7 + x * 3) & 255;

/** CIFAR records in the file layout: label bytes, then the R, G, B planes row-major. */
function cifarFile(first: number, labels: number[][]): Uint8Array {
  const rec = labels[0].length + 3072;
  const out = new Uint8Array(labels.length * rec);
  labels.forEach((lab, k) => {
    out.set(lab, k * rec);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          out[k * rec + lab.length + c * 1024 + y * 32 + x] = px(first + k, c, y, x);
        }
      }
    }
  });
  return out;
}

function checkNhwc(images: Uint8Array, i: number, h: number, w: number, image = i) {
  for (const [y, x, c] of [[0, 0, 0], [0, 1, 1], [5, 9, 2], [h - 1, w - 1, 2], [h - 1, 0, 1]]) {
    assert.equal(images[((i * h + y) * w + x) * 3 + c], px(image, c, y, x), `pixel ${y},${x},${c}`);
  }
}

Deno.test("CIFAR-10: five train batches and the test batch decode to NHWC with labels", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/cifar-10-batches-bin`;
    await Deno.mkdir(dir);
    for (let b = 1; b <= 5; b++) {
      await Deno.writeFile(`${dir}/data_batch_${b}.bin`, cifarFile(2 * (b - 1), [[b], [9 - b]]));
    }
    await Deno.writeFile(`${dir}/test_batch.bin`, cifarFile(100, [[3], [4], [5]]));
    const train = await readCifar10({ root, split: "train" });
    assert.equal(train.length, 10);
    assert.deepEqual([...train.labels!], [1, 8, 2, 7, 3, 6, 4, 5, 5, 4]);
    assert.equal(train.classes![0], "airplane");
    for (let i = 0; i < 10; i++) checkNhwc(train.images!, i, 32, 32);
    const test = await readCifar10({ root: dir, split: "test" });
    assert.deepEqual([...test.labels!], [3, 4, 5]);
    checkNhwc(test.images!, 2, 32, 32, 102);
    const out = new Uint8Array(2 * 3072);
    test.readInto([2, 0], out);
    assert.deepEqual(out.subarray(0, 3072), test.images!.subarray(2 * 3072, 3 * 3072));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("CIFAR-10: truncated, mislabelled and missing batches name the file and the fault", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/cifar-10-batches-bin`;
    await Deno.mkdir(dir);
    for (let b = 1; b <= 5; b++) {
      await Deno.writeFile(`${dir}/data_batch_${b}.bin`, cifarFile(0, [[1], [2]]));
    }
    await Deno.writeFile(`${dir}/data_batch_3.bin`, cifarFile(0, [[1], [2]]).subarray(0, 3073 + 1));
    await assert.rejects(readCifar10({ root, split: "train" }), (e: Error) => {
      assert.ok(e instanceof DataError);
      assert.equal(
        e.message,
        "Cannot read CIFAR-10 batch 'data_batch_3.bin': file is 3072 bytes short (truncated download?)",
      );
      return true;
    });
    await Deno.writeFile(`${dir}/data_batch_3.bin`, cifarFile(0, [[1], [200]]));
    await assert.rejects(
      readCifar10({ root, split: "train" }),
      /record 1 has label 200, expected 0\.\.9/,
    );
    await assert.rejects(
      readCifar10({ root, split: "test" }),
      /test_batch\.bin': file not found \(run with --download/,
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("CIFAR-100: fine and coarse labels, class names from the label files", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/cifar-100-binary`;
    await Deno.mkdir(dir);
    await Deno.writeFile(`${dir}/train.bin`, cifarFile(0, [[19, 99], [0, 42], [7, 7]]));
    const fine = Array.from({ length: 100 }, (_, k) => `fine${k}`).join("\n");
    await Deno.writeTextFile(`${dir}/fine_label_names.txt`, fine + "\n");
    const f = await readCifar100({ root, split: "train" });
    assert.deepEqual([...f.labels!], [99, 42, 7]);
    assert.equal(f.classes![42], "fine42");
    checkNhwc(f.images!, 1, 32, 32);
    const c = await readCifar100({ root, split: "train", labels: "coarse" });
    assert.deepEqual([...c.labels!], [19, 0, 7]);
    assert.equal(c.classes, undefined);
    await Deno.writeFile(`${dir}/test.bin`, cifarFile(0, [[20, 1]]));
    await assert.rejects(readCifar100({ root, split: "test" }), /label 20, expected 0\.\.19/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** STL-10 images in the file layout: channel planes, each column-major. */
function stlFile(first: number, n: number): Uint8Array {
  const out = new Uint8Array(n * 27648);
  for (let k = 0; k < n; k++) {
    for (let c = 0; c < 3; c++) {
      for (let x = 0; x < 96; x++) {
        for (let y = 0; y < 96; y++) {
          out[k * 27648 + c * 9216 + x * 96 + y] = px(first + k, c, y, x);
        }
      }
    }
  }
  return out;
}

Deno.test("STL-10: column-major planes become NHWC; train+unlabeled joins labelled and lazy parts", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/stl10_binary`;
    await Deno.mkdir(dir);
    await Deno.writeFile(`${dir}/train_X.bin`, stlFile(0, 2));
    await Deno.writeFile(`${dir}/train_y.bin`, new Uint8Array([1, 10]));
    await Deno.writeFile(`${dir}/unlabeled_X.bin`, stlFile(2, 3));
    const train = await readStl10({ root, split: "train" });
    assert.deepEqual([...train.labels!], [0, 9]);
    checkNhwc(train.images!, 1, 96, 96);
    const all = await readStl10({ root, split: "train+unlabeled" });
    try {
      assert.equal(all.length, 5);
      assert.deepEqual([...all.labels!], [0, 9, -1, -1, -1]);
      assert.equal(all.images, undefined, "the unlabeled part is lazy");
      const out = new Uint8Array(3 * 27648);
      all.readInto([4, 1, 2], out);
      checkNhwc(out, 0, 96, 96, 4);
      checkNhwc(out, 1, 96, 96, 1);
      checkNhwc(out, 2, 96, 96, 2);
      assert.throws(() => all.readInto([5], new Uint8Array(27648)), /index out of range/);
    } finally {
      all.close();
    }
    const lazyTrain = await readStl10({ root: dir, split: "train", lazy: true });
    const one = new Uint8Array(27648);
    lazyTrain.readInto([1], one);
    lazyTrain.close();
    assert.deepEqual(one, train.images!.subarray(27648));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("STL-10: truncated images and bad labels are reported with the file", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${root}/train_X.bin`, stlFile(0, 2).subarray(0, 27648 + 100));
    await Deno.writeFile(`${root}/train_y.bin`, new Uint8Array([1, 2]));
    await assert.rejects(
      readStl10({ root, split: "train" }),
      /train_X\.bin': file is 27548 bytes short of a whole number of 96x96x3 images \(truncated download\?\)/,
    );
    await Deno.writeFile(`${root}/train_X.bin`, stlFile(0, 2));
    await Deno.writeFile(`${root}/train_y.bin`, new Uint8Array([1, 11]));
    await assert.rejects(
      readStl10({ root, split: "train" }),
      /train_y\.bin': label 1 is 11, expected 1\.\.10/,
    );
    await Deno.writeFile(`${root}/train_y.bin`, new Uint8Array([1]));
    await assert.rejects(readStl10({ root, split: "train" }), /1 labels for 2 images/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("inspect CLI: a truncated CIFAR-10 batch exits 1 naming the file; a good one prints the shape", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = `${root}/cifar-10-batches-bin`;
    await Deno.mkdir(dir);
    await Deno.writeFile(`${dir}/test_batch.bin`, cifarFile(0, [[1], [2]]).subarray(0, 5000));
    const script = new URL("../../src/data/inspect.ts", import.meta.url).pathname;
    const run = () =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", script, "cifar10", "--data-dir", root, "--split", "test"],
        stdout: "piped",
        stderr: "piped",
      }).output();
    const bad = await run();
    assert.equal(bad.code, 1);
    assert.match(
      new TextDecoder().decode(bad.stderr),
      /^error: Cannot read CIFAR-10 batch 'test_batch\.bin': file is 1146 bytes short \(truncated download\?\)\n$/,
    );
    await Deno.writeFile(`${dir}/test_batch.bin`, cifarFile(0, [[1], [2], [1]]));
    const good = await run();
    assert.equal(good.code, 0);
    assert.equal(
      new TextDecoder().decode(good.stdout),
      "cifar10/test: 3 images of 32x32x3\nlabels: automobile: 2, bird: 1\n",
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
