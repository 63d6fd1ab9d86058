/**
 * `deno task embed` output is readable: the safetensors embeddings equal the features computed
 * in-process, labels and file names are in row order, and the .npy file parses back (by our
 * reader and by numpy.load). Plus .npy encoder properties.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import fc from "fast-check";
import { PNG } from "pngjs";
import type { Buffer } from "node:buffer";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { readImageFolder } from "../../src/data/datasets/mod.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { disposeBackbone } from "../../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../../src/ressl/checkpoint.ts";
import { extractFeatures } from "../../src/eval/features.ts";
import { decodeNpy, encodeNpy } from "../../src/io/npy.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { writeFixtureCheckpoint } from "./checkpoint_fixture.ts";

const PY = "/usr/bin/python3";
const EMBED = new URL("../../tasks/embed.ts", import.meta.url).pathname;

async function embed(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", EMBED, "--device", "reference", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** Writes `n` random 9x7 RGB PNGs named 0.png.. into `dir`. */
function writePngs(dir: string, n: number, seed: number): void {
  Deno.mkdirSync(dir, { recursive: true });
  const rng = new RandomStream(rngKey(seed));
  for (let i = 0; i < n; i++) {
    const png = new PNG({ width: 9, height: 7 });
    for (let p = 0; p < 9 * 7 * 4; p++) png.data[p] = p % 4 === 3 ? 255 : rng.int(256);
    Deno.writeFileSync(`${dir}/${i}.png`, new Uint8Array(PNG.sync.write(png) as Buffer));
  }
}

Deno.test("encodeNpy/decodeNpy round trip f32 and i32 arrays; data starts 64-byte aligned", () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      (shape, isFloat) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = isFloat
          ? Float32Array.from({ length: n }, (_, i) => Math.fround(i * 0.37 - 1.5))
          : Int32Array.from({ length: n }, (_, i) => i * 7919 - 3);
        const bytes = encodeNpy({ data, shape });
        const headerLen = new DataView(bytes.buffer).getUint16(8, true);
        assert.equal((10 + headerLen) % 64, 0);
        assert.equal(bytes[10 + headerLen - 1], 0x0a, "the header ends with a newline");
        const back = decodeNpy(bytes);
        assert.deepEqual(back.shape, shape);
        assert.deepEqual(back.data, data);
      },
    ),
    { numRuns: 40 },
  );
  assert.throws(() => encodeNpy({ data: new Float32Array(3), shape: [2, 2] }), /does not hold 3/);
  assert.throws(() => decodeNpy(new Uint8Array(20), "x.npy"), /Cannot read \.npy file 'x\.npy'/);
});

Deno.test({
  name: existsSync(PY) ? "numpy.load reads our .npy files" : "numpy interop (skipped: no python3)",
  ignore: !existsSync(PY),
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_npy_" });
    try {
      await Deno.writeFile(
        `${dir}/a.npy`,
        encodeNpy({ data: Float32Array.of(1.5, -2, 3.25, 0, 1e-8, 7), shape: [2, 3] }),
      );
      await Deno.writeFile(`${dir}/b.npy`, encodeNpy({ data: Int32Array.of(-5, 9), shape: [2] }));
      const code = `import numpy as np, json
a = np.load("${dir}/a.npy"); b = np.load("${dir}/b.npy")
print(json.dumps([str(a.dtype), list(a.shape), a.ravel().tolist(), str(b.dtype), list(b.shape), b.tolist()]))`;
      const r = await new Deno.Command(PY, { args: ["-c", code], stdout: "piped" }).output();
      assert.equal(r.code, 0);
      const got = JSON.parse(new TextDecoder().decode(r.stdout));
      assert.deepEqual(got, [
        "float32",
        [2, 3],
        [1.5, -2, 3.25, 0, Math.fround(1e-8), 7],
        "int32",
        [2],
        [-5, 9],
      ]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("embed: an image folder to safetensors (+ labels, file names) and .npy, equal to in-process features", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_embed_" });
  try {
    const ckpt = `${dir}/ckpt.safetensors`;
    const config = await writeFixtureCheckpoint(ckpt);
    writePngs(`${dir}/imgs/cat`, 3, 1);
    writePngs(`${dir}/imgs/dog`, 2, 2);
    const out = `${dir}/emb.safetensors`, npy = `${dir}/emb.npy`;
    const r = await embed([
      "--checkpoint",
      ckpt,
      "--data",
      `${dir}/imgs`,
      "--out",
      out,
      "--npy",
      npy,
    ]);
    assert.equal(r.code, 0, r.text);
    const file = await readSafetensors(out);
    const emb = file.tensors.embeddings;
    assert.deepEqual(emb.shape, [5, 8 * config.model.width]);
    assert.deepEqual([...(file.tensors.labels.data as Int32Array)], [0, 0, 0, 1, 1]);
    assert.deepEqual(JSON.parse(file.metadata.files), [
      "cat/0.png",
      "cat/1.png",
      "cat/2.png",
      "dog/0.png",
      "dog/1.png",
    ]);
    assert.deepEqual(JSON.parse(file.metadata.classes), ["cat", "dog"]);
    assert.equal(file.metadata.step, "7");
    const fromNpy = decodeNpy(await Deno.readFile(npy), npy);
    assert.deepEqual(fromNpy.shape, emb.shape);
    assert.deepEqual(fromNpy.data, emb.data);

    // The same features in-process: folder read as 1-channel 28x28, config normalisation.
    const ctx = createContext(createReferenceBackend());
    const net = await loadCheckpointBackbone(ctx, ckpt);
    const ds = readImageFolder({ root: `${dir}/imgs`, size: 28, channels: 1 });
    const want = ctx.scope(() =>
      extractFeatures(ctx, {
        params: net.params,
        buffers: net.buffers,
        dataset: ds,
        view: { size: 28, ops: [], mean: config.image.mean, std: config.image.std },
        normalize: false,
      }).toFloat32()
    );
    disposeBackbone(net);
    assert.deepEqual(emb.data, want);
    assert.equal(ctx.liveTensors, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embed: a flat folder has file names but no labels; --normalize gives unit rows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_embed_" });
  try {
    const ckpt = `${dir}/ckpt.safetensors`;
    await writeFixtureCheckpoint(ckpt);
    writePngs(`${dir}/flat`, 3, 5);
    const out = `${dir}/emb.safetensors`;
    const r = await embed([
      "--checkpoint",
      ckpt,
      "--data",
      `${dir}/flat`,
      "--out",
      out,
      "--normalize",
    ]);
    assert.equal(r.code, 0, r.text);
    const file = await readSafetensors(out);
    assert.equal(file.tensors.labels, undefined);
    assert.deepEqual(JSON.parse(file.metadata.files), ["0.png", "1.png", "2.png"]);
    assert.equal(file.metadata.normalized, "true");
    const [n, d] = file.tensors.embeddings.shape;
    const e = file.tensors.embeddings.data as Float32Array;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += e[i * d + j] ** 2;
      assert.ok(Math.abs(Math.sqrt(s) - 1) < 1e-5, `row ${i} has norm ${Math.sqrt(s)}`);
    }
    assert.ok(!existsSync(`${dir}/emb.npy`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
