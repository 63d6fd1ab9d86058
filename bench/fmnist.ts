/**
 * `deno task bench:fmnist` (issue 7): the fashion-mnist preset pretrained on the real Fashion-MNIST
 * (60,000 train images, labels unused) by this project and by a PyTorch script of the same recipe
 * (bench/fmnist_torch.py), each evaluated by weighted kNN (k=200, T=0.1) and a linear probe on the
 * 10,000 test images, beside baselines (kNN on raw pixels, kNN of the randomly initialised encoder,
 * logistic regression on raw pixels). Writes the table, the curves, the commands, the machine and a
 * discussion to docs/results.md.
 *
 * Evaluation of our runs: kNN with this project's `extractFeatures` + `knnClassify` (eval-mode BN,
 * no augmentation, L2-normalised features); the linear probe is the SAME Python routine for every
 * row (`fmnist_torch.py probe` on our exported, un-normalised features), so the probe protocol cannot
 * differ between the implementations. The Python side also recomputes kNN on our features as a
 * cross-check of the two kNN codes.
 *
 * Every step writes its result atomically into its own folder under `--root` and is reused when it
 * is there (unless `--fresh`): an interrupted run of ours resumes from its newest checkpoint, the
 * PyTorch run from its per-epoch checkpoint. `--quick` is the smoke configuration.
 *
 * @module
 */

import { dirname, join, relative, resolve } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import type { ImageDataset } from "../src/data/datasets/mod.ts";
import { foldIn, nameId, rngKey } from "../src/random/philox.ts";
import { extractFeatures } from "../src/eval/features.ts";
import { knnAccuracy, knnClassify } from "../src/eval/knn.ts";
import { listCheckpoints, readCheckpointMeta } from "../src/io/checkpoint.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { writeSafetensors } from "../src/io/safetensors.ts";
import { initResNet, type ResNetBuffers, type ResNetParams } from "../src/nn/mod.ts";
import { l2Normalize } from "../src/ops/mod.ts";
import { presetConfig, type TrainConfig } from "../src/ressl/config.ts";
import { backboneOptions } from "../src/ressl/state.ts";
import { loadBackbone, openTrainCheckpoint } from "../src/ressl/checkpoint.ts";
import { createContext, disposeTree, type TensorTree } from "../src/tensor/mod.ts";
import { type BenchOptions, parseBenchArgs, USAGE } from "./fmnist_args.ts";
import { exists, machine, pngs, readJson, REPO, run, writeJson } from "./fmnist_io.ts";
import { keptSections } from "./report.ts";
import {
  type Baselines,
  type ProbeResult,
  quote,
  renderReport,
  type RunResult,
} from "./fmnist_report.ts";

/** The interpreter with PyTorch 1.13 (Debian's python3-torch); override with RESSL_PYTHON. */
const PYTHON = Deno.env.get("RESSL_PYTHON") ?? "/usr/bin/python3";
const TORCH_SCRIPT = new URL("./fmnist_torch.py", import.meta.url).pathname;

export { parseBenchArgs, renderReport, USAGE };
export type { BenchOptions };

function evalLimits(o: BenchOptions): string[] {
  return [
    ...(o.evalTrainLimit ? ["--eval-train-limit", String(o.evalTrainLimit)] : []),
    ...(o.evalTestLimit ? ["--eval-test-limit", String(o.evalTestLimit)] : []),
    "--probe-epochs",
    String(o.probeEpochs),
  ];
}

// ------------------------------------------------------------------------------------------ results

/** Training time of a run from its metrics.jsonl: the sum of its segments (a resume restarts the
 * clock), the last step, and the per-epoch mean losses. */
async function trainingTime(
  metricsPath: string,
): Promise<{ seconds: number; steps: number; epochLoss: number[] }> {
  const lines = (await Deno.readTextFile(metricsPath)).split("\n").filter((l) => l.trim());
  let total = 0, last = 0, steps = 0;
  const epochLoss: number[] = [];
  for (const line of lines) {
    const r = JSON.parse(line) as { kind: string; step: number; seconds?: number; loss?: number };
    if (typeof r.seconds === "number") {
      if (r.seconds < last) total += last;
      last = r.seconds;
    }
    steps = Math.max(steps, r.step);
    if (r.kind === "epoch" && typeof r.loss === "number") epochLoss.push(r.loss);
  }
  return { seconds: total + last, steps, epochLoss };
}

// ------------------------------------------------------------------------------------------ ours

function trainCommand(o: BenchOptions, epochs: number, dir: string, resume: boolean): string[] {
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    "tasks/train.ts",
    "--preset",
    "fashion-mnist",
    "--epochs",
    String(epochs),
    "--width",
    String(o.width),
    "--seed",
    String(o.seed),
    "--batch-size",
    String(o.batchSize),
    "--workers",
    String(o.workers),
    ...(o.threads ? ["--threads", String(o.threads)] : []),
    ...(o.limit ? ["--limit", String(o.limit)] : []),
    "--out",
    dir,
    "--plain",
    ...(resume ? ["--resume"] : []),
  ];
}

/** The labelled train and test sets of the evaluation (with the smoke limits). */
async function evalData(o: BenchOptions): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const train = await openDataset("fashion-mnist", { split: "train" });
  const test = await openDataset("fashion-mnist", { split: "test" });
  return {
    train: o.evalTrainLimit ? firstImages(train, o.evalTrainLimit) : train,
    test: o.evalTestLimit ? firstImages(test, o.evalTestLimit) : test,
  };
}

/**
 * Our evaluation of a backbone: features of the labelled sets (eval-mode BN, no augmentation),
 * our kNN on the L2-normalised features, and the raw features written to `featuresPath` for the
 * shared Python probe.
 */
async function evaluateOurs(
  o: BenchOptions,
  config: TrainConfig,
  load: (
    ctx: ReturnType<typeof createContext>,
  ) => { params: ResNetParams; buffers: ResNetBuffers },
  featuresPath: string,
): Promise<{ knnTop1: number; evalImages: { train: number; test: number } }> {
  const backend = createBackend("auto", { threads: o.threads });
  const ctx = createContext(backend);
  const data = await evalData(o);
  try {
    const { params, buffers } = load(ctx);
    const view = {
      size: config.image.size,
      ops: [],
      mean: config.image.mean,
      std: config.image.std,
    };
    const common = { params, buffers, view, maxPool: config.model.maxPool, normalize: false };
    const trainLabels = data.train.labels, testLabels = data.test.labels;
    if (!trainLabels || !testLabels) {
      throw new Error("Cannot evaluate: Fashion-MNIST has no labels");
    }
    const result = ctx.scope(() => {
      const train = extractFeatures(ctx, { ...common, dataset: data.train });
      const test = extractFeatures(ctx, { ...common, dataset: data.test });
      const res = knnClassify({
        trainFeatures: ctx.noGrad(() => l2Normalize(train)),
        trainLabels,
        testFeatures: ctx.noGrad(() => l2Normalize(test)),
        numClasses: Math.max(...trainLabels) + 1,
        k: config.knn.k,
        temperature: config.knn.temperature,
      });
      return {
        knn: knnAccuracy(res, testLabels).top1,
        train: { shape: [...train.shape], data: train.toFloat32() },
        test: { shape: [...test.shape], data: test.toFloat32() },
      };
    });
    await writeSafetensors(featuresPath, {
      train: { dtype: "F32", shape: result.train.shape, data: result.train.data },
      test: { dtype: "F32", shape: result.test.shape, data: result.test.data },
      train_labels: { dtype: "I32", shape: [trainLabels.length], data: trainLabels },
      test_labels: { dtype: "I32", shape: [testLabels.length], data: testLabels },
    });
    disposeTree({ params, buffers } as unknown as TensorTree);
    return {
      knnTop1: result.knn,
      evalImages: { train: data.train.length, test: data.test.length },
    };
  } finally {
    data.train.close();
    data.test.close();
    backend.dispose();
  }
}

/** Trains (or resumes, or reuses) one run of ours and evaluates it; returns its row. */
async function oursRun(o: BenchOptions, epochs: number): Promise<RunResult> {
  const dir = join(o.root, `ours-w${o.width}-e${epochs}-s${o.seed}`);
  const resultPath = join(dir, "bench-result.json");
  if (await exists(resultPath)) {
    console.log(`\n== ours, ${epochs} epochs: reusing ${resultPath}`);
    return await readJson<RunResult>(resultPath);
  }
  const images = o.limit ? Math.min(o.limit, 60000) : 60000;
  const totalSteps = epochs * Math.floor(images / o.batchSize);
  const finished = async () => {
    const last = listCheckpoints(dir).at(-1);
    if (!last) return undefined;
    const meta = await readCheckpointMeta<{ step: number; config: TrainConfig }>(last);
    return meta.step >= totalSteps ? { path: last, config: meta.config } : undefined;
  };
  if (!(await finished())) {
    const resume = listCheckpoints(dir).length > 0;
    await run(
      trainCommand(o, epochs, dir, resume),
      `ours: train ${epochs} epochs${resume ? " (resuming)" : ""}`,
    );
  }
  const done = await finished();
  if (!done) throw new Error(`Training in '${dir}' ended without its final checkpoint`);
  console.log(`\n== ours, ${epochs} epochs: evaluating ${done.path}`);
  const ckpt = await openTrainCheckpoint(done.path);
  const featuresPath = join(dir, "features.safetensors");
  const ev = await evaluateOurs(o, done.config, (ctx) => loadBackbone(ctx, ckpt), featuresPath);
  const probePath = join(dir, "probe.json");
  await run(
    [
      PYTHON,
      TORCH_SCRIPT,
      "probe",
      "--features",
      featuresPath,
      "--out",
      probePath,
      ...evalLimits(o),
    ],
    "shared probe on our features",
  );
  const probe = await readJson<{ knnTop1: number; probe: ProbeResult }>(probePath);
  const time = await trainingTime(join(dir, "metrics.jsonl"));
  const cfg = await readJson<{ run?: { versions?: Record<string, string>; backend?: string } }>(
    join(dir, "config.json"),
  );
  const result: RunResult = {
    implementation: "ours",
    dir,
    width: done.config.model.width,
    epochs,
    seed: done.config.seed,
    batchSize: done.config.batchSize,
    images,
    steps: time.steps,
    wallSeconds: time.seconds,
    imagesPerSecond: time.steps * done.config.batchSize / time.seconds,
    epochLoss: time.epochLoss,
    knnTop1: ev.knnTop1,
    knnTop1Python: probe.knnTop1,
    probe: probe.probe,
    versions: { backend: cfg.run?.backend, ...cfg.run?.versions, deno: Deno.version.deno },
    evalImages: ev.evalImages,
  };
  await writeJson(resultPath, result);
  return result;
}

/** kNN of our randomly initialised encoder (the run's init: eval-mode BN with running stats 0/1). */
async function oursRandomInit(o: BenchOptions): Promise<number> {
  const path = join(o.root, `random-init-ours-w${o.width}-s${o.seed}.json`);
  if (await exists(path)) return (await readJson<{ knnTop1: number }>(path)).knnTop1;
  console.log(`\n== ours: kNN of the randomly initialised encoder (width ${o.width})`);
  const config = presetConfig("fashion-mnist");
  config.model.width = o.width;
  config.seed = o.seed;
  const dir = join(o.root, "random-init");
  await Deno.mkdir(dir, { recursive: true });
  const ev = await evaluateOurs(o, config, (ctx) =>
    initResNet(ctx, {
      ...backboneOptions(config),
      key: foldIn(rngKey(o.seed), nameId("init")),
    }), join(dir, `features-w${o.width}-s${o.seed}.safetensors`));
  await writeJson(path, { width: o.width, seed: o.seed, ...ev });
  return ev.knnTop1;
}

// ------------------------------------------------------------------------------------------ torch

function torchCommand(o: BenchOptions, dir: string): string[] {
  return [
    PYTHON,
    TORCH_SCRIPT,
    "train",
    "--epochs",
    String(o.torchEpochs),
    "--width",
    String(o.width),
    "--seed",
    String(o.seed),
    "--batch-size",
    String(o.batchSize),
    "--workers",
    String(o.workers),
    ...(o.limit ? ["--limit", String(o.limit)] : []),
    ...evalLimits(o),
    "--reuse",
    "--out",
    dir,
  ];
}

async function torchRun(o: BenchOptions): Promise<RunResult> {
  const dir = join(o.root, `torch-w${o.width}-e${o.torchEpochs}-s${o.seed}`);
  await run(torchCommand(o, dir), `PyTorch: train ${o.torchEpochs} epochs + evaluate`);
  const r = await readJson<Omit<RunResult, "dir" | "implementation">>(join(dir, "result.json"));
  return { ...r, implementation: "pytorch", dir };
}

async function baselines(o: BenchOptions): Promise<Baselines> {
  const path = join(o.root, `baselines-w${o.width}-s${o.seed}.json`);
  if (!(await exists(path))) {
    await Deno.mkdir(o.root, { recursive: true });
    await run(
      [
        PYTHON,
        TORCH_SCRIPT,
        "baselines",
        "--width",
        String(o.width),
        "--seed",
        String(o.seed),
        ...evalLimits(o),
        "--out",
        path,
      ],
      "baselines (raw pixels, random-init encoder, logistic regression)",
    );
  }
  return await readJson<Baselines>(path);
}

// ------------------------------------------------------------------------------------------ plots

/** Runs `deno task plot <run>` when tasks/plot.ts exists; copies the run's PNGs beside the doc. */
async function plot(o: BenchOptions, result: RunResult): Promise<string[]> {
  if (!(await exists(join(REPO, "tasks/plot.ts")))) return [];
  try {
    await run(
      [Deno.execPath(), "run", "--allow-all", "tasks/plot.ts", result.dir],
      `plot ${result.dir}`,
    );
  } catch (e) {
    console.error(
      `plot of '${result.dir}' failed (the report goes on without it): ${(e as Error).message}`,
    );
    return [];
  }
  const imgDir = join(dirname(o.doc), "results");
  await Deno.mkdir(imgDir, { recursive: true });
  const out: string[] = [];
  for (const p of await pngs(result.dir)) {
    const name = `${result.dir.split("/").at(-1)}-${p.split("/").at(-1)}`;
    await Deno.copyFile(p, join(imgDir, name));
    out.push(relative(dirname(o.doc), join(imgDir, name)));
  }
  return out;
}

// ------------------------------------------------------------------------------------------ report

/** Runs the whole benchmark; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  let o: BenchOptions | null;
  try {
    o = parseBenchArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (o === null) {
    console.log(USAGE);
    return 0;
  }
  if (o.fresh) await Deno.remove(o.root, { recursive: true }).catch(() => {});
  await Deno.mkdir(o.root, { recursive: true });
  const commands = [
    `${PYTHON} ${relative(REPO, TORCH_SCRIPT)} baselines --width ${o.width} --seed ${o.seed} ${
      evalLimits(o).join(" ")
    } --out ${join(o.root, `baselines-w${o.width}-s${o.seed}.json`)}`,
  ];
  const base = await baselines(o);
  const randomOurs = await oursRandomInit(o);
  const runs: RunResult[] = [];
  const oursDir = (e: number) => join(o.root, `ours-w${o.width}-e${e}-s${o.seed}`);
  const showTrain = (e: number) =>
    ["deno task train", ...trainCommand(o, e, oursDir(e), false).slice(4).map(quote)].join(" ");
  const showProbe = (e: number) =>
    `${PYTHON} ${relative(REPO, TORCH_SCRIPT)} probe --features ${
      join(oursDir(e), "features.safetensors")
    } --out ${join(oursDir(e), "probe.json")} ${evalLimits(o).join(" ")}`;
  runs.push(await oursRun(o, o.oursEpochs));
  commands.push(showTrain(o.oursEpochs), showProbe(o.oursEpochs));
  if (!o.skipTorch) {
    const dir = join(o.root, `torch-w${o.width}-e${o.torchEpochs}-s${o.seed}`);
    runs.push(await torchRun(o));
    commands.push(
      torchCommand(o, dir).map((a) => (a === TORCH_SCRIPT ? relative(REPO, a) : a)).map(quote)
        .join(" "),
    );
  }
  if (o.longEpochs > 0 && o.longEpochs !== o.oursEpochs) {
    runs.push(await oursRun(o, o.longEpochs));
    commands.push(showTrain(o.longEpochs), showProbe(o.longEpochs));
  }
  const plots: Record<string, string[]> = {};
  for (const x of runs) plots[`${x.implementation} ${x.epochs} epochs`] = await plot(o, x);
  const report = renderReport({
    o,
    args,
    runs,
    base,
    randomOurs,
    plots,
    machine: await machine(),
    commands,
  });
  await Deno.mkdir(dirname(o.doc), { recursive: true });
  await writeFileAtomic(o.doc, report + await keptSections(o.doc));
  // `deno task check` runs `deno fmt --check` on docs/: keep the generated Markdown formatted.
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", resolve(o.doc)], cwd: REPO })
    .output()
    .catch(() => undefined);
  await writeJson(join(o.root, "summary.json"), { options: o, runs, baselines: base, randomOurs });
  console.log(`\nreport written to ${o.doc}`);
  return 0;
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    console.error(`bench:fmnist: ${(e as Error).message}`);
    code = 1;
  }
  Deno.exit(code);
}
