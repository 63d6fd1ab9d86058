/**
 * Loader benchmark: augmented images per second (weak + strong views, u8 read included) for the
 * cifar10 (32x32x3) and fashion-mnist (28x28x1) presets with 0 (inline), 1 and 2 Web Workers, and
 * torchvision's PIL pipeline of the same views in one process as the peer (when /usr/bin/python3
 * has it). The loader must stay well above the training step's images/s (at least 4x).
 *
 * `deno run -A bench/data.ts [--batches N] [--batch-size B] [--no-peer]`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadAverage, writeSection } from "./report.ts";
import { memoryDataset } from "../src/data/datasets/dataset.ts";
import { Loader } from "../src/data/loader.ts";
import { augmentationPreset } from "../src/data/pipelines.ts";
import { RandomStream, rngKey } from "../src/random/philox.ts";

/** One measured configuration. */
export interface DataBenchResult {
  preset: string;
  shape: string;
  workers: number | "torchvision";
  imagesPerSecond: number;
}

const PEER = `
import sys, time, numpy as np, torch
from PIL import Image, ImageFilter
import torchvision.transforms as T
size, ch, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
class Blur:
    def __call__(self, x):
        return x.filter(ImageFilter.GaussianBlur(radius=float(np.random.uniform(0.1, 2.0))))
norm = T.Normalize([0.5] * ch, [0.25] * ch)
weak = T.Compose([T.RandomResizedCrop(size, scale=(0.2, 1.)), T.RandomHorizontalFlip(), T.ToTensor(), norm])
jit = T.ColorJitter(0.4, 0.4, 0.4, 0.1) if ch == 3 else T.ColorJitter(0.4, 0.4)
strong = T.Compose([T.RandomResizedCrop(size, scale=(0.2, 1.)), T.RandomHorizontalFlip(),
    T.RandomApply([jit], p=0.8), T.RandomGrayscale(p=0.2 if ch == 3 else 0.0),
    T.RandomApply([Blur()], p=0.5), T.ToTensor(), norm])
rng = np.random.default_rng(0)
imgs = [Image.fromarray(rng.integers(0, 256, (size, size, ch) if ch == 3 else (size, size), dtype=np.uint8)) for _ in range(256)]
for im in imgs[:32]: weak(im); strong(im)
t = time.perf_counter()
for k in range(n):
    im = imgs[k % 256]; weak(im); strong(im)
print(n / (time.perf_counter() - t))
`;

async function peer(size: number, channels: number, n: number): Promise<number | undefined> {
  try {
    const out = await new Deno.Command("/usr/bin/python3", {
      args: ["-c", PEER, String(size), String(channels), String(n)],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return out.success ? Number(new TextDecoder().decode(out.stdout).trim()) : undefined;
  } catch {
    return undefined;
  }
}

async function measure(
  preset: string,
  workers: number,
  batches: number,
  batchSize: number,
): Promise<number> {
  const p = augmentationPreset(preset);
  const n = batchSize * (batches + 1);
  const rng = new RandomStream(rngKey(0));
  const images = Uint8Array.from({ length: n * p.size * p.size * p.channels }, () => rng.int(256));
  const dataset = memoryDataset({
    name: "bench",
    images,
    height: p.size,
    width: p.size,
    channels: p.channels,
  });
  await using loader = new Loader({
    dataset,
    weak: p.weak,
    strong: p.strong,
    key: rngKey(1),
    batchSize,
    workers,
  });
  let t0 = 0, seen = 0;
  for await (const b of loader.epoch(0)) {
    if (b.step === 0) t0 = performance.now(); // the first batch warms up workers and the JIT
    else seen += b.indices.length;
  }
  return seen / ((performance.now() - t0) / 1000);
}

/** Runs the benchmark; prints a table and returns the measurements. */
export async function main(args: string[]): Promise<DataBenchResult[]> {
  const { values } = parseArgs({
    args,
    options: {
      batches: { type: "string", default: "8" },
      "batch-size": { type: "string", default: "256" },
      "no-peer": { type: "boolean", default: false },
      write: { type: "string" },
    },
  });
  const batches = Number(values.batches), batchSize = Number(values["batch-size"]);
  const results: DataBenchResult[] = [];
  for (const preset of ["cifar10", "fashion-mnist"]) {
    const p = augmentationPreset(preset);
    const shape = `${p.size}x${p.size}x${p.channels}`;
    for (const workers of [0, 1, 2]) {
      const ips = await measure(preset, workers, batches, batchSize);
      results.push({ preset, shape, workers, imagesPerSecond: ips });
    }
    if (!values["no-peer"]) {
      const ips = await peer(p.size, p.channels, batches * batchSize);
      if (ips !== undefined) {
        results.push({ preset, shape, workers: "torchvision", imagesPerSecond: ips });
      }
    }
  }
  console.log("data loader: augmented images/s (weak + strong views of each image)");
  console.log("preset          shape      workers       images/s");
  for (const r of results) {
    console.log(
      `${r.preset.padEnd(15)} ${r.shape.padEnd(10)} ${
        String(r.workers === "torchvision" ? "torchvision (PIL, 1 proc)" : r.workers).padEnd(12)
      } ${r.imagesPerSecond.toFixed(0).padStart(9)}`,
    );
  }
  if (values.write) {
    const rows = results.map((r) =>
      `| ${r.preset} | ${r.shape} | ${
        r.workers === "torchvision" ? "torchvision (PIL, 1 process)" : r.workers
      } | ${r.imagesPerSecond.toFixed(0)} |`
    );
    const load = loadAverage();
    await writeSection(
      values.write,
      "data",
      [
        "## Data loader: augmented images/s (weak + strong view of each image)",
        "",
        `Produced by \`deno run --allow-all bench/data.ts ${args.join(" ")}\` on ${
          new Date().toISOString().slice(0, 10)
        } (load average before the write: ${load.split(" ").slice(0, 3).join(" ")}).`,
        "",
        "| preset | image | workers | images/s |",
        "|---|---|---|---:|",
        ...rows,
      ].join("\n"),
    );
  }
  return results;
}

if (import.meta.main) await main(Deno.args);
