import assert from "node:assert/strict";
import { join } from "node:path";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { readSafetensors, type SafetensorsMap } from "../../src/io/safetensors.ts";
import { loadTreeLike, readTreeLike, treeToSafetensors, writeTree } from "../../src/io/tree_io.ts";
import { createContext, disposeTree, flattenTree } from "../../src/tensor/mod.ts";

function setup() {
  const ctx = createContext(createReferenceBackend());
  const tree = {
    conv1: { weight: ctx.fromArray([1, 2, 3, 4, 5, 6], [1, 1, 2, 3]) },
    layer1: [{ bn1: { weight: ctx.fromArray([0.5, -0.5], [2]) } }],
    ids: ctx.fromArray(Int32Array.of(3, -4), [2]),
    img: ctx.fromArray(Uint8Array.of(9), [1]),
  };
  return { ctx, tree };
}

Deno.test("tree_io: write a tree, read it back into a tree shaped like it", async () => {
  const { ctx, tree } = setup();
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "tree.safetensors");
    await writeTree(path, tree, { prefix: "backbone.", metadata: { epoch: "3" } });
    const file = await readSafetensors(path);
    assert.deepEqual(Object.keys(file.tensors), [
      "backbone.conv1.weight",
      "backbone.layer1.0.bn1.weight",
      "backbone.ids",
      "backbone.img",
    ]);
    assert.deepEqual(file.metadata, { epoch: "3" });
    assert.deepEqual(file.tensors["backbone.ids"], {
      dtype: "I32",
      shape: [2],
      data: Int32Array.of(3, -4),
    });
    const back = await readTreeLike(path, ctx, tree, { prefix: "backbone." });
    const a = flattenTree(tree), b = flattenTree(back);
    assert.deepEqual(
      b.map(([p, t]) => [p, t.shape, t.dtype]),
      a.map(([p, t]) => [p, t.shape, t.dtype]),
    );
    for (let i = 0; i < a.length; i++) assert.deepEqual(b[i][1].toArray(), a[i][1].toArray());
    assert.notEqual(b[0][1].storage, a[0][1].storage);
    disposeTree(back);
    disposeTree(tree);
    assert.equal(ctx.liveTensors, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("tree_io: loading names the tensor and leaves nothing allocated on failure", () => {
  const { ctx, tree } = setup();
  const good = treeToSafetensors(tree);
  const live = ctx.liveTensors;
  const fails = (map: SafetensorsMap, pattern: RegExp, opts = {}) => {
    assert.throws(
      () => loadTreeLike(ctx, tree, map, { source: "ck.safetensors", ...opts }),
      pattern,
    );
    assert.equal(ctx.liveTensors, live);
  };
  const without = { ...good };
  delete without["layer1.0.bn1.weight"];
  fails(
    without,
    /Cannot load 'ck\.safetensors': tensor 'layer1\.0\.bn1\.weight' is not in the file/,
  );
  fails(
    { ...good, "conv1.weight": { dtype: "F32", shape: [1, 1, 3, 2], data: new Float32Array(6) } },
    /'ck\.safetensors': tensor 'conv1\.weight' has shape \[1,1,3,2\] in the file, expected \[1,1,2,3\]/,
  );
  fails(
    { ...good, ids: { dtype: "F32", shape: [2], data: new Float32Array(2) } },
    /tensor 'ids' holds F32 in the file, expected i32/,
  );
  fails(
    { ...good, ids: { dtype: "I64", shape: [2], data: BigInt64Array.of(1n, 2n ** 40n) } },
    /tensor 'ids' holds the I64 value 1099511627776, which does not fit the expected i32/,
  );
  fails(
    { ...good, "fc.weight": good["conv1.weight"], "fc.bias": good.img },
    /Cannot load tensors from 'ck\.safetensors': 2 unexpected entries \('fc\.weight', 'fc\.bias'\)/,
  );
  // strict: false ignores extra entries; I64 values that fit load into an i32 tensor.
  const loaded = loadTreeLike(ctx, tree, {
    ...good,
    "fc.weight": good.img,
    ids: { dtype: "I64", shape: [2], data: BigInt64Array.of(-7n, 8n) },
  }, { strict: false });
  assert.deepEqual(loaded.ids.toArray(), Int32Array.of(-7, 8));
  assert.deepEqual(loaded.conv1.weight.toArray(), Float32Array.of(1, 2, 3, 4, 5, 6));
  disposeTree(loaded);
  disposeTree(tree);
  assert.equal(ctx.liveTensors, 0);
});

Deno.test("tree_io: NaN or infinite weights are refused at load, naming the tensor (issue 14.6)", () => {
  const { ctx, tree } = setup();
  const good = treeToSafetensors(tree);
  const live = ctx.liveTensors;
  const weights = (values: number[]) => ({
    ...good,
    "layer1.0.bn1.weight": { dtype: "F32" as const, shape: [2], data: Float32Array.from(values) },
  });
  for (
    const [values, what] of [
      [[0.5, NaN], /holds NaN at element 1 \(1 of 2 values are not finite\)/],
      [[Infinity, 1], /holds \+Infinity at element 0/],
      [[-Infinity, NaN], /holds -Infinity at element 0 \(2 of 2 values/],
    ] as const
  ) {
    assert.throws(
      () => loadTreeLike(ctx, tree, weights([...values]), { source: "w.safetensors" }),
      (e: Error) =>
        e.message.startsWith("Cannot load 'w.safetensors': tensor 'layer1.0.bn1.weight' ") &&
        what.test(e.message),
    );
    assert.equal(ctx.liveTensors, live, "nothing is left allocated");
  }
  // The extremes that are finite load.
  const loaded = loadTreeLike(ctx, tree, weights([3.4e38, -1e-45]));
  assert.deepEqual(loaded.layer1[0].bn1.weight.toArray(), Float32Array.of(3.4e38, -1e-45));
  disposeTree(loaded);
  disposeTree(tree);
});
