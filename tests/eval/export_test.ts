/**
 * `deno task export` round trip against PyTorch: a checkpoint of an untrained network (random BN
 * statistics) is exported by the real command, loaded into torchvision's ResNet class with
 * `load_state_dict(strict=True)` by tests/eval/export_torch.py, and its eval-mode features (and
 * head outputs with --head) must match ours within 1e-4.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { normalArray, rngKey } from "../../src/random/philox.ts";
import { disposeBackbone } from "../../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../../src/ressl/checkpoint.ts";
import { writeNpy } from "../../src/io/npy.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { headForward, resnetForward } from "../../src/nn/mod.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { type FixtureOptions, writeFixtureCheckpoint } from "./checkpoint_fixture.ts";

const PY = "/usr/bin/python3";
const SCRIPT = new URL("./export_torch.py", import.meta.url).pathname;
const EXPORT = new URL("../../tasks/export.ts", import.meta.url).pathname;

async function torchAvailable(): Promise<boolean> {
  if (!existsSync(PY)) return false;
  const r = await new Deno.Command(PY, { args: ["-c", "import torch, torchvision"] }).output();
  return r.code === 0;
}
const haveTorch = await torchAvailable();

async function exportCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", EXPORT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

/** Exports a fixture checkpoint and compares PyTorch's features with ours on `inputSize` images. */
async function roundTrip(
  fixture: FixtureOptions,
  opts: { network: "student" | "teacher"; head: boolean; inputSize: number },
) {
  const dir = await Deno.makeTempDir({ prefix: "ressl_export_" });
  try {
    const ckpt = `${dir}/ckpt.safetensors`;
    const config = await writeFixtureCheckpoint(ckpt, fixture);
    const exported = `${dir}/backbone.safetensors`;
    const flags = ["--checkpoint", ckpt, "--out", exported, "--network", opts.network];
    const r = await exportCli(opts.head ? [...flags, "--head"] : flags);
    assert.equal(r.code, 0, r.text);

    const file = await readSafetensors(exported);
    const counters = Object.entries(file.tensors).filter(([k]) =>
      k.endsWith("num_batches_tracked")
    );
    assert.ok(counters.length > 0);
    for (const [, e] of counters) {
      assert.equal(e.dtype, "I64");
      assert.deepEqual(e.shape, []);
      assert.equal((e.data as BigInt64Array)[0], BigInt(fixture.step ?? 7));
    }
    assert.equal(Object.keys(file.tensors).some((k) => k.startsWith("fc.")), opts.head);

    const ctx = createContext(createReferenceBackend());
    const net = await loadCheckpointBackbone(ctx, ckpt, { network: opts.network, head: true });
    const c = config.model.inChannels, s = opts.inputSize;
    const x = normalArray(rngKey(11), 2 * c * s * s);
    const ours = ctx.scope(() => {
      const input = ctx.fromArray(x, [2, c, s, s]);
      const f = resnetForward(net.params, net.buffers, input, {
        training: false,
        maxPool: net.options.maxPool,
      }).features;
      return {
        features: f.toFloat32(),
        head: headForward(net.head!, f).toFloat32(),
        d: f.shape[1],
      };
    });
    disposeBackbone(net);
    await writeNpy(`${dir}/x.npy`, { data: x, shape: [2, c, s, s] });
    await writeNpy(`${dir}/f.npy`, { data: ours.features, shape: [2, ours.d] });
    await writeNpy(`${dir}/h.npy`, { data: ours.head, shape: [2, config.head.out] });
    const py = await new Deno.Command(PY, {
      args: [SCRIPT, exported, `${dir}/x.npy`, `${dir}/f.npy`, `${dir}/h.npy`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(py.stdout);
    assert.equal(
      py.code,
      0,
      `export_torch.py failed: ${stdout}${new TextDecoder().decode(py.stderr)}`,
    );
    const summary = JSON.parse(stdout);
    assert.ok(summary.maxDiff <= 1e-4, `features differ by ${summary.maxDiff}`);
    assert.ok(summary.featureScale > 1e-2, "features are too small to compare");
    assert.deepEqual(summary.featureShape, [2, ours.d]);
    assert.deepEqual(summary.numBatchesTracked, [fixture.step ?? 7]);
    if (opts.head) {
      assert.ok(summary.headMaxDiff <= 1e-4, `head outputs differ by ${summary.headMaxDiff}`);
      assert.deepEqual(summary.headShape, [2, config.head.out]);
    }
    return summary;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const skip = haveTorch ? "" : " (skipped: /usr/bin/python3 with torch + torchvision not found)";

Deno.test({
  name:
    `export: torchvision resnet18 (width 64, CIFAR 1-channel stem) loads strict, same features + head${skip}`,
  ignore: !haveTorch,
  fn: async () => {
    const s = await roundTrip(
      { preset: "fashion-mnist", width: 64, step: 123 },
      { network: "student", head: true, inputSize: 12 },
    );
    assert.equal(s.torchvision, "resnet18");
  },
});

Deno.test({
  name:
    `export: ResNet-50 ImageNet stem + max-pool (width 4, teacher) loads strict, same features${skip}`,
  ignore: !haveTorch,
  fn: async () => {
    await roundTrip(
      { preset: "cifar10", width: 4, depth: 50, stem: "imagenet", maxPool: true },
      { network: "teacher", head: false, inputSize: 32 },
    );
  },
});

Deno.test({
  name: `export: ResNet-34 CIFAR stem + max-pool (STL-10 style, width 8) loads strict${skip}`,
  ignore: !haveTorch,
  fn: async () => {
    await roundTrip(
      { preset: "stl10", width: 8, depth: 34 },
      { network: "student", head: true, inputSize: 16 },
    );
  },
});
