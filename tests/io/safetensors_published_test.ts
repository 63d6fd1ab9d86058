/**
 * F16 / BF16 / F64 where users meet them: a torchvision backbone published in half precision (most
 * published checkpoints) or in double loads through `readTorchvisionBackbone` (`train --init`,
 * the backbone readers) with each value exactly the file's; a bf16 tensor of ours is written as
 * BF16 and read back bit for bit; and the files we write are read by PyTorch 1.13 itself
 * (`torch.frombuffer` of each entry's bytes as float16 / bfloat16 / float64, the header parsed as
 * the safetensors spec says: the Python `safetensors` package is not installed here).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { disposeBackbone, readTorchvisionBackbone } from "../../src/eval/backbone_io.ts";
import { torchvisionStateDict } from "../../src/eval/export.ts";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/io/float_convert.ts";
import {
  readSafetensors,
  type SafetensorsEntry,
  type SafetensorsMap,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { readTreeLike, writeTree } from "../../src/io/tree_io.ts";
import { loadCheckpointBackbone } from "../../src/ressl/checkpoint.ts";
import { backboneOptions } from "../../src/ressl/state.ts";
import { createContext, disposeTree, flattenTree, type TensorTree } from "../../src/tensor/mod.ts";
import { fixtureConfig, writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";

const PY = "/usr/bin/python3";
const HELPER = new URL("./safetensors_rw.py", import.meta.url).pathname;
const haveTorch = (() => {
  try {
    return new Deno.Command(PY, { args: ["-c", "import torch"] }).outputSync().success;
  } catch {
    return false;
  }
})();

const ctx = createContext(createReferenceBackend());

/** The F32 entries of `file` as `dtype` (rounded to nearest even), the others as they are. */
function convert(file: SafetensorsMap, dtype: "F16" | "BF16" | "F64"): SafetensorsMap {
  const out: SafetensorsMap = {};
  for (const [name, e] of Object.entries(file)) {
    if (e.dtype !== "F32") {
      out[name] = e;
      continue;
    }
    const v = e.data as Float32Array;
    const data = dtype === "F16"
      ? f32ToF16(v)
      : dtype === "BF16"
      ? f32ToBf16(v)
      : Float64Array.from(v);
    out[name] = { dtype, shape: e.shape, data } as SafetensorsEntry;
  }
  return out;
}

/** What a reader must see: each F16/BF16 value widened exactly, F64 as it is. */
function widened(e: SafetensorsEntry): number[] {
  if (e.dtype === "F16") return [...f16ToF32(e.data as Uint16Array)];
  if (e.dtype === "BF16") return [...bf16ToF32(e.data as Uint16Array)];
  return Array.from(e.data as ArrayLike<number>, Number);
}

/** A torchvision backbone file of the exporter (width 4) and its tensors. */
async function exported(dir: string): Promise<SafetensorsMap> {
  const ckpt = `${dir}/ckpt.safetensors`;
  await writeFixtureCheckpoint(ckpt, { width: 4, seed: 5 });
  const net = await loadCheckpointBackbone(ctx, ckpt, {});
  const file = torchvisionStateDict(net, { numBatchesTracked: 3 });
  disposeBackbone(net);
  return file;
}

Deno.test("a torchvision backbone published as F16, BF16 or F64 loads with the file's values", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_pub_" });
  try {
    const file = await exported(dir);
    const options = backboneOptions(fixtureConfig({ width: 4 }));
    const live = ctx.liveTensors;
    for (const dtype of ["F16", "BF16", "F64"] as const) {
      const path = join(dir, `${dtype}.safetensors`);
      const converted = convert(file, dtype);
      await writeSafetensors(path, converted);
      assert.equal((await readSafetensors(path)).tensors["conv1.weight"].dtype, dtype);
      const b = await readTorchvisionBackbone(ctx, path, options);
      const got = new Map(
        [b.params, b.buffers].flatMap((t) => flattenTree(t as unknown as TensorTree))
          .map(([p, t]) => [p, [...t.toFloat32()]]),
      );
      let compared = 0;
      for (const [name, e] of Object.entries(converted)) {
        if (e.dtype !== dtype) continue;
        assert.deepEqual(got.get(name), widened(e), `${dtype} ${name}`);
        compared++;
      }
      assert.ok(compared >= 60, `${dtype}: ${compared} tensors`);
      disposeBackbone(b);
    }
    assert.equal(ctx.liveTensors, live);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bf16 tensor is written as BF16 and read back bit for bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_pub_" });
  try {
    const bits = f32ToBf16(Float32Array.of(1, -2.5, 0.1, 3e38, -0, 1e-40));
    const tree = { w: ctx.fromArray(bits, [2, 3], "bf16"), b: ctx.fromArray([0.5, 2], [2]) };
    const path = join(dir, "tree.safetensors");
    await writeTree(path, tree);
    const file = (await readSafetensors(path)).tensors;
    assert.equal(file.w.dtype, "BF16");
    assert.deepEqual(file.w.data, bits);
    assert.equal(file.b.dtype, "F32");
    const back = await readTreeLike(path, ctx, tree);
    assert.equal(back.w.dtype, "bf16");
    assert.deepEqual(back.w.toArray(), tree.w.toArray());
    disposeTree(back);
    disposeTree(tree);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: haveTorch
    ? "PyTorch reads our F16, BF16 and F64 files with the values we wrote"
    : "PyTorch reads our F16/BF16/F64 files (skipped: /usr/bin/python3 with torch not found)",
  ignore: !haveTorch,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_pub_" });
    try {
      const file = await exported(dir);
      for (const dtype of ["F16", "BF16", "F64"] as const) {
        const path = join(dir, `${dtype}.safetensors`);
        const converted = convert(file, dtype);
        await writeSafetensors(path, converted);
        const out = await new Deno.Command(PY, { args: [HELPER, "torchread", path] }).output();
        assert.ok(out.success, new TextDecoder().decode(out.stderr));
        const read = JSON.parse(new TextDecoder().decode(out.stdout)).tensors;
        assert.deepEqual(Object.keys(read).sort(), Object.keys(converted).sort());
        for (const [name, e] of Object.entries(converted)) {
          assert.equal(read[name].dtype, e.dtype, name);
          assert.deepEqual(read[name].shape, e.shape, name);
          if (e.dtype === dtype) {
            assert.deepEqual(read[name].values, widened(e), `${dtype} ${name}`);
          }
        }
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
