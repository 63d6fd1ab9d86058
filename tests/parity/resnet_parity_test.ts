/**
 * ResNet-18 (width 16, CIFAR stem, no max-pool) forward + backward on the reference backend versus
 * PyTorch (torchvision's ResNet/BasicBlock, float64), exchanging weights and results through our
 * safetensors files. Training-mode BN with perturbed affine parameters and running statistics.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { foldIn, nameId, normalArray, rngKey, uniformArray } from "../../src/random/philox.ts";
import {
  readSafetensors,
  type SafetensorsMap,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { loadTreeLike, treeToSafetensors } from "../../src/io/tree_io.ts";
import { batchNormCounterNames, initResNet, resnetForward } from "../../src/nn/mod.ts";
import { mul, sum } from "../../src/ops/mod.ts";
import {
  createContext,
  disposeTree,
  flattenTree,
  type Tensor,
  valueAndGrad,
} from "../../src/tensor/mod.ts";

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./resnet_parity.py", import.meta.url).pathname;
const WIDTH = 16;
const BATCH = 2;
const RTOL = 1e-4;

/** Whether /usr/bin/python3 can import torch and torchvision (decided once, at load). */
const haveTorch = await new Deno.Command(PY, { args: ["-c", "import torch, torchvision"] })
  .output()
  .then((r) => r.code === 0, () => false);

interface Comparison {
  name: string;
  relNorm: number;
  worstElem: number;
}

/**
 * Per-tensor ||a - b|| / ||b|| and the worst elementwise ratio |a - b| / (|b| + 0.01 max|b|),
 * both to be <= RTOL.
 */
function compare(name: string, a: Float32Array, b: Float32Array): Comparison {
  assert.equal(a.length, b.length, `${name}: ${a.length} vs ${b.length} values`);
  let num = 0, den = 0, maxAbs = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  }
  let worstElem = 0;
  for (let i = 0; i < b.length; i++) {
    const denom = Math.abs(b[i]) + 1e-2 * maxAbs;
    const err = Math.abs(a[i] - b[i]);
    worstElem = Math.max(worstElem, denom > 0 ? err / denom : err === 0 ? 0 : Infinity);
  }
  return { name, relNorm: den > 0 ? Math.sqrt(num / den) : Math.sqrt(num), worstElem };
}

/** Host weights: torchvision init, then BN affine parameters and running stats perturbed. */
function perturb(map: SafetensorsMap, seed: number): SafetensorsMap {
  const out: SafetensorsMap = {};
  for (const [name, e] of Object.entries(map)) {
    const n = e.data.length;
    const key = foldIn(rngKey(seed), nameId(name));
    let data = e.data;
    if (/\.running_var$/.test(name)) data = uniformArray(key, n, 0.5, 1.5);
    else if (/\.running_mean$/.test(name)) data = normalArray(key, n, 0, 0.1);
    else if (e.shape.length === 1 && name.endsWith(".weight")) data = normalArray(key, n, 1, 0.2);
    else if (name.endsWith(".bias")) data = normalArray(key, n, 0, 0.2);
    out[name] = { ...e, data };
  }
  return out;
}

Deno.test({
  name: haveTorch
    ? "parity: ResNet-18 width 16 forward, gradients and BN running stats match PyTorch (rel 1e-4)"
    : "parity: ResNet-18 vs PyTorch (skipped: /usr/bin/python3 cannot import torch/torchvision)",
  ignore: !haveTorch,
  fn: async () => {
    const ctx = createContext(createReferenceBackend());
    const dir = await Deno.makeTempDir({ prefix: "resnet_parity_" });
    try {
      const init = initResNet(ctx, {
        depth: 18,
        stem: "cifar",
        inChannels: 3,
        width: WIDTH,
        key: rngKey(2024),
      });
      const hostParams = perturb(treeToSafetensors(init.params), 1);
      const hostBuffers = perturb(treeToSafetensors(init.buffers), 2);
      const params = loadTreeLike(ctx, init.params, hostParams);
      const buffers = loadTreeLike(ctx, init.buffers, hostBuffers);
      disposeTree(init.params);
      disposeTree(init.buffers);

      // The state_dict as torchvision has it: parameters, buffers and the BN counters.
      const counters: SafetensorsMap = {};
      for (const name of batchNormCounterNames(buffers)) {
        counters[name] = { dtype: "I64", shape: [], data: BigInt64Array.of(0n) };
      }
      const modelPath = join(dir, "model.safetensors");
      await writeSafetensors(modelPath, { ...hostParams, ...hostBuffers, ...counters });
      const xHost = normalArray(rngKey(11), BATCH * 3 * 32 * 32);
      const rHost = normalArray(rngKey(12), BATCH * 8 * WIDTH);
      const inputsPath = join(dir, "inputs.safetensors");
      await writeSafetensors(inputsPath, {
        x: { dtype: "F32", shape: [BATCH, 3, 32, 32], data: xHost },
        r: { dtype: "F32", shape: [BATCH, 8 * WIDTH], data: rHost },
      });

      const outPath = join(dir, "torch.safetensors");
      const py = new Deno.Command(PY, {
        args: [SCRIPT, modelPath, inputsPath, outPath, String(WIDTH)],
      }).output();

      const x = ctx.fromArray(xHost, [BATCH, 3, 32, 32]);
      const r = ctx.fromArray(rHost, [BATCH, 8 * WIDTH]);
      const step = valueAndGrad((p: typeof params) => {
        const out = resnetForward(p, buffers, x, { training: true });
        return { value: sum(mul(out.features, r)), aux: out };
      });
      const { value, grads, aux } = step(params);

      const res = await py;
      assert.equal(res.code, 0, `PyTorch side failed:\n${new TextDecoder().decode(res.stderr)}`);
      const torch = (await readSafetensors(outPath)).tensors;
      const get = (name: string): Float32Array => {
        const e = torch[name];
        assert.ok(e, `PyTorch output lacks '${name}'`);
        return e.data as Float32Array;
      };

      const results: Comparison[] = [
        compare("features", aux.features.toFloat32(), get("features")),
      ];
      const gradList = flattenTree(grads);
      for (const [path, g] of gradList) {
        results.push(compare(`grad.${path}`, g.toFloat32(), get(`grad.${path}`)));
      }
      for (const [path, b] of flattenTree(aux.buffers)) {
        results.push(compare(`buffer.${path}`, b.toFloat32(), get(`buffer.${path}`)));
      }
      // Every tensor PyTorch wrote was compared (60 gradients, 40 buffers, the features).
      assert.equal(results.length, Object.keys(torch).length);
      assert.equal(gradList.length, 60);

      const worstNorm = results.reduce((a, b) => (b.relNorm > a.relNorm ? b : a));
      const worstElem = results.reduce((a, b) => (b.worstElem > a.worstElem ? b : a));
      console.log(
        `worst per-tensor relative error ${
          worstNorm.relNorm.toExponential(2)
        } (${worstNorm.name}); ` +
          `worst elementwise ${worstElem.worstElem.toExponential(2)} (${worstElem.name})`,
      );
      const bad = results.filter((c) => !(c.relNorm <= RTOL && c.worstElem <= RTOL));
      assert.deepEqual(bad, [], `tensors beyond rtol ${RTOL}`);

      for (const t of [x, r, value, aux.features] as Tensor[]) t.dispose();
      for (const tree of [grads, aux.buffers, params, buffers]) disposeTree(tree);
      assert.equal(ctx.liveTensors, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
