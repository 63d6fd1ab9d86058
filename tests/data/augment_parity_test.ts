/**
 * Parity of every augmentation with torchvision's functional ops (Debian python3-torchvision via
 * /usr/bin/python3): for fixed parameters each op, and whole sampled views, must match within 1/255
 * per pixel on real images (Fashion-MNIST when installed) and on random colour noise.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  applyView,
  type AugmentOp,
  type OpParams,
  sampleView,
  type ViewPipeline,
} from "../../src/data/augment.ts";
import { centralCropBox, sampleResizedCropBox } from "../../src/data/augment_params.ts";
import { resizeU8 } from "../../src/image/resize.ts";
import { DEBIAN_FASHION_MNIST_DIR, readIdxDataset } from "../../src/data/datasets/idx.ts";
import { augmentationPreset } from "../../src/data/pipelines.ts";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

const PYTHON = "/usr/bin/python3";
const TORCHVISION = "/usr/lib/python3/dist-packages/torchvision/__init__.py";
const why = (() => {
  for (const f of [PYTHON, TORCHVISION]) {
    try {
      Deno.statSync(f);
    } catch {
      return `${f} is absent: torchvision parity cannot be checked here`;
    }
  }
  return undefined;
})();
if (why) console.warn(`skipping torchvision parity: ${why}`);

interface Img {
  name: string;
  data: Uint8Array;
  height: number;
  width: number;
  channels: number;
}

/** Real images: Fashion-MNIST test images, three of them stacked as R, G, B for colour cases. */
async function images(): Promise<Img[]> {
  const rng = new RandomStream(rngKey(7));
  const noise = Uint8Array.from({ length: 32 * 32 * 3 }, () => rng.int(256));
  let gray: Uint8Array;
  try {
    const ds = await readIdxDataset({ root: DEBIAN_FASHION_MNIST_DIR, split: "test" });
    gray = ds.images!.slice(0, 4 * 784);
  } catch {
    console.warn("Fashion-MNIST is absent: parity runs on synthetic images only");
    gray = Uint8Array.from(
      { length: 4 * 784 },
      (_, k) => (Math.sin(k / 9) * 100 + 120 + rng.int(30)) | 0,
    );
  }
  const stack = (size: number) => {
    const planes = [0, 1, 2].map((k) =>
      resizeU8(gray.subarray(k * 784, (k + 1) * 784), 28, 28, 1, size, size)
    );
    const out = new Uint8Array(size * size * 3);
    for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) out[3 * p + c] = planes[c][p];
    return out;
  };
  return [
    { name: "real32", data: stack(32), height: 32, width: 32, channels: 3 },
    { name: "real96", data: stack(96), height: 96, width: 96, channels: 3 },
    { name: "noise32", data: noise, height: 32, width: 32, channels: 3 },
    { name: "fmnist", data: gray.slice(3 * 784), height: 28, width: 28, channels: 1 },
  ];
}

type TvOp = { op: string; arg?: unknown };
interface Case {
  id: string;
  img: Img;
  pipeline: ViewPipeline;
  params: OpParams[];
}

/** The torchvision op list equivalent to a view with fixed parameters. */
function toTorchvision(c: Case): TvOp[] {
  const { pipeline: p, params, img } = c;
  const first = params[0];
  const box = first?.op === "randomResizedCrop"
    ? first.box
    : { top: 0, left: 0, height: img.height, width: img.width };
  const ops: TvOp[] = [{
    op: "resized_crop",
    arg: [box.top, box.left, box.height, box.width, p.size, p.size],
  }];
  params.forEach((q, k) => {
    const o = p.ops[k];
    if (q.op === "horizontalFlip" && q.flip) ops.push({ op: "hflip" });
    if (q.op === "randomGrayscale" && q.gray && img.channels === 3) ops.push({ op: "grayscale" });
    if (q.op === "gaussianBlur" && q.sigma !== null && o.op === "gaussianBlur") {
      ops.push({ op: "blur", arg: [o.kernelSize, q.sigma] });
    }
    if (q.op === "colorJitter" && q.jitter) {
      const j = q.jitter;
      for (const w of j.order) {
        if (w === 0 && j.brightness !== undefined) {
          ops.push({ op: "brightness", arg: j.brightness });
        }
        if (w === 1 && j.contrast !== undefined) ops.push({ op: "contrast", arg: j.contrast });
        if (img.channels === 3 && w === 2 && j.saturation !== undefined) {
          ops.push({ op: "saturation", arg: j.saturation });
        }
        if (img.channels === 3 && w === 3 && j.hue !== undefined) {
          ops.push({ op: "hue", arg: j.hue });
        }
      }
    }
  });
  ops.push({ op: "normalize", arg: [p.mean, p.std] });
  return ops;
}

function unitView(img: Img, op: AugmentOp | null, size = img.height): ViewPipeline {
  return {
    size,
    ops: op ? [op] : [],
    mean: new Array(img.channels).fill(0),
    std: new Array(img.channels).fill(1),
  };
}

function opCases(imgs: Img[]): Case[] {
  const cases: Case[] = [];
  const add = (img: Img, name: string, op: AugmentOp | null, params: OpParams[], size?: number) =>
    cases.push({ id: `${img.name}-${name}`, img, pipeline: unitView(img, op, size), params });
  const crop: AugmentOp = { op: "randomResizedCrop", scale: [0.2, 1], ratio: [3 / 4, 4 / 3] };
  const jitterOp: AugmentOp = {
    op: "colorJitter",
    p: 1,
    brightness: 0.4,
    contrast: 0.4,
    saturation: 0.4,
    hue: 0.5,
  };
  const rng = new RandomStream(rngKey(11));
  for (const img of imgs) {
    const sizes = img.height === 96 ? [64, 96, 40] : [img.height];
    for (const size of sizes) {
      for (let t = 0; t < 4; t++) {
        const box = sampleResizedCropBox(rng, img.height, img.width, [0.05, 1], [3 / 4, 4 / 3]);
        add(img, `crop${size}-${t}`, crop, [{ op: "randomResizedCrop", box }], size);
      }
      add(img, `crop${size}-thin`, crop, [{
        op: "randomResizedCrop",
        box: { top: 3, left: 5, height: 20, width: 1 },
      }], size);
    }
    add(img, "whole", null, []);
    add(img, "flip", { op: "horizontalFlip", p: 1 }, [{ op: "horizontalFlip", flip: true }]);
    add(img, "gray", { op: "randomGrayscale", p: 1 }, [{ op: "randomGrayscale", gray: true }]);
    const one = (name: string, w: number, f: number) => {
      const j = {
        order: [w],
        brightness: w === 0 ? f : undefined,
        contrast: w === 1 ? f : undefined,
        saturation: w === 2 ? f : undefined,
        hue: w === 3 ? f : undefined,
      };
      add(img, `${name}${f}`, jitterOp, [{ op: "colorJitter", jitter: j }]);
    };
    for (const f of [0.6, 1.4, 0]) one("brightness", 0, f);
    for (const f of [0.6, 1.4, 0]) one("contrast", 1, f);
    for (const f of [0.6, 1.4, 0]) one("saturation", 2, f);
    for (const f of [-0.1, 0.1, 0.5, -0.5, 0.37]) one("hue", 3, f);
    add(img, "jitter-all", jitterOp, [{
      op: "colorJitter",
      jitter: { order: [3, 1, 0, 2], brightness: 1.3, contrast: 0.7, saturation: 1.2, hue: -0.08 },
    }]);
    for (const [k, sigma] of [[3, 0.1], [3, 1], [3, 2], [7, 1.3], [9, 0.6]]) {
      if ((k - 1) / 2 >= img.height) continue;
      add(img, `blur${k}-${sigma}`, { op: "gaussianBlur", p: 1, kernelSize: k, sigma: [0.1, 2] }, [{
        op: "gaussianBlur",
        sigma,
      }]);
    }
  }
  return cases;
}

function viewCases(imgs: Img[]): Case[] {
  const cases: Case[] = [];
  const pick = (n: string) => imgs.find((i) => i.name === n)!;
  const plan: [string, string][] = [
    ["cifar10", "real32"],
    ["cifar10", "noise32"],
    ["stl10", "real96"],
    ["fashion-mnist", "fmnist"],
    ["imagenet", "real96"],
  ];
  for (const [preset, imgName] of plan) {
    const pr = augmentationPreset(preset);
    const img = pick(imgName);
    for (let s = 0; s < 6; s++) {
      for (const [vName, v] of [["weak", pr.weak], ["strong", pr.strong]] as const) {
        const view = preset === "imagenet"
          ? {
            ...v,
            size: 64,
            ops: v.ops.map((o) => o.op === "gaussianBlur" ? { ...o, kernelSize: 7 } : o),
          }
          : v;
        const rng = new RandomStream(rngKey(1000 + s));
        cases.push({
          id: `${preset}-${imgName}-${vName}-${s}`,
          img,
          pipeline: view,
          params: sampleView(view, img.height, img.width, rng),
        });
      }
    }
  }
  return cases;
}

async function runTorchvision(dir: string, cases: object[]): Promise<void> {
  await Deno.writeTextFile(`${dir}/cases.json`, JSON.stringify(cases));
  const script = fileURLToPath(new URL("./torchvision_ops.py", import.meta.url));
  const out = await new Deno.Command(PYTHON, {
    args: [script, dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`torchvision reference failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
}

Deno.test({
  name: "augment parity: every op and sampled views match torchvision within 1/255",
  ignore: why !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const imgs = await images();
      for (const img of imgs) await Deno.writeFile(`${dir}/${img.name}.u8`, img.data);
      const cases = [...opCases(imgs), ...viewCases(imgs)];
      await runTorchvision(
        dir,
        cases.map((c) => ({
          kind: "ops",
          id: c.id,
          input: `${c.img.name}.u8`,
          height: c.img.height,
          width: c.img.width,
          channels: c.img.channels,
          ops: toTorchvision(c),
        })),
      );
      let worst = 0, worstId = "";
      for (const c of cases) {
        const n = c.img.channels * c.pipeline.size * c.pipeline.size;
        const ours = new Float32Array(n);
        applyView(c.pipeline, c.params, { ...c.img, offset: 0 }, ours, 0);
        const ref = new Float32Array((await Deno.readFile(`${dir}/out_${c.id}.bin`)).buffer);
        assert.equal(ref.length, n, `${c.id}: output size`);
        const plane = c.pipeline.size * c.pipeline.size;
        for (let k = 0; k < n; k++) {
          // Compare in pixel units: undo the normalisation's division by std.
          const err = Math.abs(ours[k] - ref[k]) * c.pipeline.std[Math.floor(k / plane)] * 255;
          if (err > worst) {
            [worst, worstId] = [err, `${c.id}[${k}] ours ${ours[k]} torchvision ${ref[k]}`];
          }
        }
      }
      console.log(`${cases.length} cases, worst error ${worst.toFixed(4)}/255 at ${worstId}`);
      assert.ok(worst <= 1, `worst error ${worst}/255 at ${worstId}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "RandomResizedCrop parameters: fallback equals torchvision's, sampled boxes follow its law",
  ignore: why !== undefined,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const fallback = [[10, 100], [100, 10], [50, 50], [30, 37], [37, 30], [7, 9]];
      const n = 4000;
      await runTorchvision(dir, [
        ...fallback.map(([h, w], k) => ({
          kind: "rrc",
          id: `fb${k}`,
          height: h,
          width: w,
          n: 1,
          seed: k,
          scale: [5, 6],
          ratio: [3 / 4, 4 / 3],
        })),
        {
          kind: "rrc",
          id: "law",
          height: 32,
          width: 48,
          n,
          seed: 1,
          scale: [0.2, 1],
          ratio: [3 / 4, 4 / 3],
        },
      ]);
      for (const [k, [h, w]] of fallback.entries()) {
        const [[top, left, bh, bw]] = JSON.parse(await Deno.readTextFile(`${dir}/rrc_fb${k}.json`));
        assert.deepEqual(
          centralCropBox(h, w, [3 / 4, 4 / 3]),
          { top, left, height: bh, width: bw },
          `${h}x${w}`,
        );
        assert.deepEqual(
          sampleResizedCropBox(new RandomStream(rngKey(k)), h, w, [5, 6], [3 / 4, 4 / 3]),
          { top, left, height: bh, width: bw },
        );
      }
      const theirs: number[][] = JSON.parse(await Deno.readTextFile(`${dir}/rrc_law.json`));
      const rng = new RandomStream(rngKey(3));
      const ours = Array.from({ length: n }, () => {
        const b = sampleResizedCropBox(rng, 32, 48, [0.2, 1], [3 / 4, 4 / 3]);
        return [b.top, b.left, b.height, b.width];
      });
      for (
        const [name, f] of [["height", (b: number[]) => b[2]], ["width", (b: number[]) => b[3]], [
          "top",
          (b: number[]) => b[0],
        ], ["area", (b: number[]) => b[2] * b[3]]] as const
      ) {
        const stats = (bs: number[][]) => {
          const v = bs.map(f);
          const m = v.reduce((a, b) => a + b, 0) / v.length;
          return { m, sd: Math.sqrt(v.reduce((a, b) => a + (b - m) ** 2, 0) / v.length) };
        };
        const a = stats(ours), b = stats(theirs);
        const se = Math.sqrt((a.sd ** 2 + b.sd ** 2) / n);
        assert.ok(
          Math.abs(a.m - b.m) < 4 * se,
          `${name}: mean ${a.m} vs torchvision ${b.m} (se ${se})`,
        );
        assert.ok(
          Math.abs(a.sd - b.sd) < 0.06 * b.sd,
          `${name}: sd ${a.sd} vs torchvision ${b.sd}`,
        );
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
