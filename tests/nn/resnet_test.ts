import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { rngKey } from "../../src/random/philox.ts";
import {
  batchNormCounterNames,
  convInitStd,
  flattenSpec,
  headForward,
  headParamCount,
  headSpec,
  initHead,
  initResNet,
  initValues,
  linearInitBound,
  resnetFeatureDim,
  type ResNetOptions,
  resnetParamCount,
  resnetSpec,
} from "../../src/nn/mod.ts";
import {
  type Context,
  createContext,
  disposeTree,
  flattenTree,
  treeSize,
} from "../../src/tensor/mod.ts";
import { backendTest, forEachBackend } from "../backends.ts";
import { resnetForward } from "../../src/nn/resnet.ts";

const PY = "/usr/bin/python3";

/** A context on the reference backend (for the tests that do not depend on the backend). */
function newCtx() {
  return createContext(createReferenceBackend());
}

function stats(a: Float32Array): { mean: number; std: number; min: number; max: number } {
  let s = 0, s2 = 0, min = Infinity, max = -Infinity;
  for (const v of a) {
    s += v;
    s2 += v * v;
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean), min, max };
}

Deno.test("resnet: parameter counts match torchvision (fc removed)", () => {
  assert.equal(resnetParamCount({ depth: 18, stem: "cifar", inChannels: 3 }), 11_168_832);
  assert.equal(resnetParamCount({ depth: 18, stem: "imagenet", inChannels: 3 }), 11_176_512);
  assert.equal(resnetParamCount({ depth: 34, stem: "imagenet", inChannels: 3 }), 21_284_672);
  assert.equal(resnetParamCount({ depth: 50, stem: "imagenet", inChannels: 3 }), 23_508_032);
  assert.equal(headParamCount({ inDim: 512, hiddenDim: 2048, outDim: 128 }), 1_312_896);
  // An allocated tree holds exactly what its spec counts.
  const ctx = newCtx();
  const opts: ResNetOptions = { depth: 18, stem: "cifar", inChannels: 1, width: 4 };
  const { params, buffers } = initResNet(ctx, { ...opts, key: rngKey(1) });
  assert.equal(treeSize(params), resnetParamCount(opts));
  assert.deepEqual(
    flattenTree(buffers).map(([p, t]) => [p, t.shape]),
    flattenSpec(resnetSpec(opts).buffers).map(([p, s]) => [p, s.shape]),
  );
  disposeTree(params);
  disposeTree(buffers);
  assert.equal(ctx.liveTensors, 0);
});

Deno.test("resnet: options are validated", () => {
  assert.throws(
    () => resnetSpec({ depth: 101 as 50, stem: "cifar", inChannels: 3 }),
    /Cannot build ResNet: depth 101 is not 18, 34 or 50/,
  );
  assert.throws(
    () => resnetSpec({ depth: 18, stem: "cifar", inChannels: 3, width: 0 }),
    /width is 0, expected an integer >= 1/,
  );
  assert.throws(
    () => headSpec({ inDim: 4, hiddenDim: 2.5, outDim: 2 }),
    /hiddenDim is 2.5, expected an integer >= 1/,
  );
});

/** Whether /usr/bin/python3 can import torch and torchvision (decided once, at load). */
const haveTorch = await new Deno.Command(PY, { args: ["-c", "import torch, torchvision"] })
  .output()
  .then((r) => r.code === 0, () => false);

Deno.test({
  name: haveTorch
    ? "resnet: parameter and buffer names and shapes equal torchvision's state_dict"
    : "resnet: torchvision names (skipped: /usr/bin/python3 cannot import torch/torchvision)",
  ignore: !haveTorch,
  fn: async () => {
    const script = `
import json, torch, torchvision
torch.nn.init.kaiming_normal_ = lambda t, **k: t  # names only: skip the slow init
out = {}
for name in ["resnet18", "resnet50"]:
    m = getattr(torchvision.models, name)()
    out[name] = {
        "params": [[k, list(v.shape)] for k, v in m.named_parameters() if not k.startswith("fc.")],
        "buffers": [[k, list(v.shape)] for k, v in m.named_buffers()],
    }
print(json.dumps(out))
`;
    const res = await new Deno.Command(PY, { args: ["-c", script] }).output();
    const err = new TextDecoder().decode(res.stderr);
    assert.equal(res.code, 0, err);
    const tv = JSON.parse(new TextDecoder().decode(res.stdout));
    for (const [name, depth] of [["resnet18", 18], ["resnet50", 50]] as const) {
      const spec = resnetSpec({ depth, stem: "imagenet", inChannels: 3 });
      const ours = flattenSpec(spec.params).map(([p, s]) => [p, [...s.shape]]);
      assert.deepEqual(ours, tv[name].params, `${name} parameters`);
      const tvBuffers = tv[name].buffers as [string, number[]][];
      const ourBuffers = flattenSpec(spec.buffers).map(([p, s]) => [p, [...s.shape]]);
      assert.deepEqual(
        ourBuffers,
        tvBuffers.filter(([k]) => !k.endsWith("num_batches_tracked")),
        `${name} buffers`,
      );
      // The exporter's counter names complete the state_dict.
      const ctx = newCtx();
      const small = initResNet(ctx, {
        depth,
        stem: "imagenet",
        inChannels: 3,
        width: 1,
        key: rngKey(0),
      });
      assert.deepEqual(
        batchNormCounterNames(small.buffers, "backbone."),
        tvBuffers.filter(([k]) => k.endsWith("num_batches_tracked")).map(([k]) => `backbone.${k}`),
      );
    }
  },
});

Deno.test("init: torchvision statistics, one key per path (independent of creation order)", () => {
  const key = rngKey(42);
  // Conv: N(0, 2 / fan_out), fan_out = K * R * S.
  for (const shape of [[64, 3, 3, 3], [128, 64, 3, 3], [256, 128, 1, 1]]) {
    const spec = flattenSpec(resnetSpec({ depth: 18, stem: "cifar", inChannels: 3 }).params)
      .find(([, s]) => s.shape.join() === shape.join())!;
    const v = initValues(spec[1], key, spec[0]);
    const st = stats(v);
    const std = convInitStd(shape);
    assert.equal(std, Math.sqrt(2 / (shape[0] * shape[2] * shape[3])));
    const n = v.length;
    assert.ok(
      Math.abs(st.std / std - 1) < 5 / Math.sqrt(2 * n),
      `${spec[0]}: std ${st.std} vs ${std}`,
    );
    assert.ok(Math.abs(st.mean) < 5 * std / Math.sqrt(n), `${spec[0]}: mean ${st.mean}`);
  }
  // Linear weight and bias: U(-1/sqrt(in), 1/sqrt(in)).
  const head = headSpec({ inDim: 512, hiddenDim: 2048, outDim: 128 });
  for (const [path, s] of flattenSpec(head)) {
    const v = initValues(s, key, path);
    const b = linearInitBound(s.fanIn!);
    assert.equal(b, 1 / Math.sqrt(512 * (path.startsWith("0.") ? 1 : 4)));
    const st = stats(v);
    assert.ok(st.min >= -b && st.max <= b, `${path} within ±${b}`);
    const n = v.length;
    const tol = 6 / Math.sqrt(n);
    assert.ok(Math.abs(st.std / (b / Math.sqrt(3)) - 1) < tol, `${path}: std ${st.std}`);
    assert.ok(st.max > b * (1 - tol) && st.min < -b * (1 - tol), `${path} spans the range`);
  }
  // Same path, same key => same values, whatever network it is created in; other paths differ.
  const ctx = newCtx();
  const a = initResNet(ctx, { depth: 18, stem: "cifar", inChannels: 3, width: 4, key });
  const b = initResNet(ctx, { depth: 34, stem: "cifar", inChannels: 3, width: 4, key });
  const aFlat = new Map(flattenTree(a.params));
  const bFlat = new Map(flattenTree(b.params));
  for (const path of ["conv1.weight", "layer1.0.conv1.weight", "layer4.1.conv2.weight"]) {
    assert.deepEqual(aFlat.get(path)!.toFloat32(), bFlat.get(path)!.toFloat32(), path);
  }
  assert.notDeepEqual(
    aFlat.get("layer1.0.conv1.weight")!.toFloat32(),
    aFlat.get("layer1.0.conv2.weight")!.toFloat32(),
  );
  const other = initResNet(ctx, {
    depth: 18,
    stem: "cifar",
    inChannels: 3,
    width: 4,
    key: rngKey(43),
  });
  assert.notDeepEqual(
    new Map(flattenTree(other.params)).get("conv1.weight")!.toFloat32(),
    aFlat.get("conv1.weight")!.toFloat32(),
  );
  // BN: weight 1, bias 0, running mean 0, running var 1.
  for (const [path, t] of [...flattenTree(a.params), ...flattenTree(a.buffers)]) {
    const expect = /(bn\d|downsample\.1)\.(weight|running_var)$/.test(path)
      ? 1
      : /(bias|running_mean)$/.test(path)
      ? 0
      : undefined;
    if (expect !== undefined) assert.ok(t.toFloat32().every((v) => v === expect), path);
  }
  for (const tree of [a.params, a.buffers, b.params, b.buffers, other.params, other.buffers]) {
    disposeTree(tree);
  }
  assert.equal(ctx.liveTensors, 0);
});

function randomInput(ctx: Context, shape: number[], seed: number) {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    data[i] = s / 2 ** 31 - 1;
  }
  return ctx.fromArray(data, shape);
}

// Forward passes on every backend (small widths: the cpu runs stay fast).
forEachBackend("resnet", (b) => {
  const test = backendTest(b);
  test("resnet: output shapes for CIFAR, Fashion-MNIST, STL (stem + pool) and ImageNet inputs", () => {
    const ctx = createContext(b.create());
    const cases: [ResNetOptions, number[]][] = [
      [{ depth: 18, stem: "cifar", inChannels: 3, width: 8 }, [2, 3, 32, 32]],
      [{ depth: 18, stem: "cifar", inChannels: 1, width: 8 }, [2, 1, 28, 28]],
      [{ depth: 34, stem: "cifar", inChannels: 3, width: 4, maxPool: true }, [2, 3, 64, 64]],
      [{ depth: 50, stem: "imagenet", inChannels: 3, width: 8 }, [1, 3, 224, 224]],
    ];
    for (const [opts, inShape] of cases) {
      ctx.scope(() => {
        const { params, buffers } = initResNet(ctx, { ...opts, key: rngKey(7) });
        const x = randomInput(ctx, inShape, 3);
        const r = resnetForward(params, buffers, x, { training: true, maxPool: opts.maxPool });
        const label = `depth ${opts.depth} ${opts.stem} ${inShape}`;
        assert.deepEqual(r.features.shape, [inShape[0], resnetFeatureDim(opts)], label);
        assert.equal(resnetFeatureDim(opts), 8 * opts.width! * (opts.depth === 50 ? 4 : 1));
        // Features after ReLU + average pooling are finite and non-negative, not all zero.
        const f = r.features.toFloat32();
        assert.ok(f.every((v) => Number.isFinite(v) && v >= 0) && f.some((v) => v > 0), label);
        // New buffers: same paths and shapes; training moved the running statistics.
        const before = flattenTree(buffers);
        const after = flattenTree(r.buffers);
        assert.deepEqual(after.map(([p, t]) => [p, t.shape]), before.map(([p, t]) => [p, t.shape]));
        const mean0 = after.find(([p]) => p === "bn1.running_mean")![1].toFloat32();
        assert.ok(mean0.some((v) => v !== 0), `${label}: running mean updated`);
        assert.ok(
          before[0][1].toFloat32().every((v) => v === 0),
          `${label}: input buffers untouched`,
        );
      });
    }
    assert.equal(ctx.liveTensors, 0);
  });

  test("resnet: eval mode uses running statistics; maxPool changes the cifar-stem network", () => {
    const ctx = createContext(b.create());
    ctx.scope(() => {
      const opts: ResNetOptions = { depth: 18, stem: "cifar", inChannels: 3, width: 4 };
      const { params, buffers } = initResNet(ctx, { ...opts, key: rngKey(9) });
      const x = randomInput(ctx, [2, 3, 16, 16], 5);
      const x0 = ctx.view(x, x.shape);
      const ev = resnetForward(params, buffers, x, { training: false });
      // Eval: the same image gives the same features alone or in a batch (no batch statistics).
      const single = resnetForward(
        params,
        buffers,
        ctx.fromArray(x0.toFloat32().slice(0, 768), [1, 3, 16, 16]),
        {
          training: false,
        },
      );
      const a = ev.features.toFloat32().slice(0, 32), b = single.features.toFloat32();
      for (let i = 0; i < 32; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-5 * (1 + Math.abs(b[i])));
      assert.deepEqual(
        flattenTree(ev.buffers).map(([, t]) => t.toFloat32()),
        flattenTree(buffers).map(([, t]) => t.toFloat32()),
      );
      const pooled = resnetForward(params, buffers, x, { training: false, maxPool: true });
      assert.notDeepEqual(pooled.features.toFloat32(), ev.features.toFloat32());
    });
    assert.equal(ctx.liveTensors, 0);
  });

  test("head: Linear -> ReLU -> Linear with PyTorch names", () => {
    const ctx = createContext(b.create());
    ctx.scope(() => {
      const head = initHead(ctx, { inDim: 3, hiddenDim: 4, outDim: 2, key: rngKey(1) });
      assert.deepEqual(flattenTree(head).map(([p, t]) => [p, t.shape]), [
        ["0.weight", [4, 3]],
        ["0.bias", [4]],
        ["2.weight", [2, 4]],
        ["2.bias", [2]],
      ]);
      const x = [0.5, -1, 2, 1, 0, -3];
      const y = headForward(head, ctx.fromArray(x, [2, 3])).toFloat32();
      const [w0, b0, w2, b2] = flattenTree(head).map(([, t]) => t.toFloat32());
      for (let n = 0; n < 2; n++) {
        const h = [0, 1, 2, 3].map((j) =>
          Math.max(0, b0[j] + [0, 1, 2].reduce((s, i) => s + w0[j * 3 + i] * x[n * 3 + i], 0))
        );
        for (let o = 0; o < 2; o++) {
          const want = b2[o] + h.reduce((s, v, j) => s + w2[o * 4 + j] * v, 0);
          assert.ok(
            Math.abs(y[n * 2 + o] - want) < 1e-6,
            `y[${n},${o}] = ${y[n * 2 + o]} vs ${want}`,
          );
        }
      }
    });
    assert.equal(ctx.liveTensors, 0);
  });
});
