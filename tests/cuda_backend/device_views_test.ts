/**
 * Views made on the device (`viewsOn: "device"`: the loader draws only the parameter rows, the
 * backend's `augmentViews` makes the pixels) against the loader's host views of the same batches:
 * within f32 rounding of the parameters through the reference backend (the same TypeScript view
 * code), within 1/255 of the pixel range through the cuda backend's kernel. Then `train --device
 * cuda` end to end on the emulated device on a Fashion-MNIST subset: it makes its views on the
 * device, and its losses follow the reference backend's host-augmented run.
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../../src/backend/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { memoryDataset } from "../../src/data/datasets/dataset.ts";
import { type HostBatch, Loader } from "../../src/data/loader.ts";
import { augmentationPreset } from "../../src/data/pipelines.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";
import { deviceBatchViews } from "../../src/run/device_views.ts";
import { createContext } from "../../src/tensor/mod.ts";
import { emulatedEnv, emulatorSkip, ROOT, testBackend } from "./helpers.ts";

const skip = emulatorSkip();

async function batches(viewsOn: "host" | "device", preset: string, h: number, c: number) {
  const rng = new RandomStream(rngKey(3));
  const dataset = memoryDataset({
    name: "random",
    images: Uint8Array.from({ length: 12 * h * h * c }, () => rng.int(256)),
    height: h,
    width: h,
    channels: c,
  });
  const p = augmentationPreset(preset);
  const small = { ...p.strong, size: 12 };
  await using loader = new Loader({
    dataset,
    weak: { ...p.weak, size: 16 },
    strong: small,
    extra: [{ ...small, size: 8 }],
    key: rngKey(9),
    batchSize: 4,
    viewsOn,
  });
  const out: HostBatch[] = [];
  for await (const b of loader.epoch(1)) out.push(b);
  const views = { weak: loader.options.weak, strong: small, extra: loader.options.extra };
  return { out, views, dataset };
}

async function compare(make: () => Backend, tol: (std: number) => number) {
  for (const [preset, h, c] of [["cifar10", 20, 3], ["fashion-mnist", 14, 1]] as const) {
    const host = await batches("host", preset, h, c);
    const dev = await batches("device", preset, h, c);
    const ctx = createContext(make());
    try {
      dev.out.forEach((b, k) => {
        assert.equal(b.weak.length, 0, "no host views with viewsOn device");
        const want = [host.out[k].weak, host.out[k].strong, host.out[k].extra[0]];
        ctx.scope(() => {
          const v = deviceBatchViews(ctx, b, dev.views, dev.dataset);
          [v.weak, v.strong, v.extraStrong[0]].forEach((t, i) => {
            const got = t.toFloat32();
            const std = Math.min(...dev.views.weak.std);
            assert.equal(got.length, want[i].length);
            got.forEach((x, j) =>
              assert.ok(Math.abs(x - want[i][j]) <= tol(std), `${preset} view ${i}[${j}]`)
            );
          });
        });
      });
      assert.equal(ctx.liveTensors, 0);
    } finally {
      ctx.backend.dispose();
    }
  }
}

Deno.test(
  "device views: the reference backend's augmentViews equals the host views (f32 parameter rows)",
  // The rows hold the drawn jitter factors and blur sigma in f32, the host path their f64 values.
  () => compare(createReferenceBackend, (std) => 1e-5 / std),
);

Deno.test({
  name: "device views: the cuda kernel's views equal the host views within 1/255" + skip,
  ignore: skip !== "",
  fn: () => compare(() => testBackend(), (std) => 1 / 255 / std + 1e-5),
});

const FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const dataSkip = skip ||
  (existsSync(FMNIST)
    ? ""
    : " (skipped: Fashion-MNIST not installed, apt-get install dataset-fashion-mnist)");

Deno.test({
  name: "train --device cuda on the emulated device: views on the device, losses as reference" +
    dataSkip,
  ignore: dataSkip !== "",
  async fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ressl_cuda_train_" });
    try {
      const config = join(dir, "tiny.json");
      Deno.writeTextFileSync(
        config,
        JSON.stringify({ logEvery: 1, ressl: { queueSize: 128 }, head: { hidden: 32, out: 16 } }),
      );
      const train = async (device: string) => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "--allow-all",
            join(ROOT, "tasks", "train.ts"),
            ...["--device", device, "--limit", "128", "--width", "4", "--batch-size", "32"],
            ...["--max-steps", "3", "--threads", "1", "--workers", "0", "--plain"],
            ...["--config", config, "--out", join(dir, device)],
          ],
          env: emulatedEnv(),
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
        assert.equal(out.code, 0, text);
        const losses = readMetrics(join(dir, device, "metrics.jsonl"))
          .filter((r) => r.kind === "step").map((r) => r.loss as number);
        return { text, losses };
      };
      const cuda = await train("cuda");
      assert.match(cuda.text, /backend cuda \(.*emulated true/);
      const ref = await train("reference");
      assert.doesNotMatch(ref.text, /backend cuda/);
      assert.equal(cuda.losses.length, 3);
      cuda.losses.forEach((l, i) => {
        assert.ok(Number.isFinite(l) && l > 0);
        // Other kernels, and views within 1/255 of the host's: close, not equal.
        assert.ok(Math.abs(l - ref.losses[i]) <= 1e-4 * ref.losses[i], `${l} vs ${ref.losses[i]}`);
      });
      assert.notEqual(cuda.losses[0], cuda.losses[2]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
