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

import { parseArgs } from "node:util";
import { dirname, join, relative, resolve } from "node:path";
import { createBackend } from "../src/backend/select.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import type { ImageDataset } from "../src/data/datasets/mod.ts";
import { foldIn, nameId, rngKey } from "../src/data/rng.ts";
import { extractFeatures } from "../src/eval/features.ts";
import { knnAccuracy, knnClassify } from "../src/eval/knn.ts";
import { listCheckpoints, readCheckpointMeta } from "../src/io/checkpoint.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { readSafetensors, writeSafetensors } from "../src/io/safetensors.ts";
import { loadTreeLike } from "../src/io/tree_io.ts";
import { initResNet, type ResNetBuffers, type ResNetParams } from "../src/nn/mod.ts";
import { l2Normalize } from "../src/ops/mod.ts";
import { presetConfig, type TrainConfig } from "../src/ressl/config.ts";
import { backboneOptions } from "../src/ressl/state.ts";
import { createContext, disposeTree, type TensorTree } from "../src/tensor/mod.ts";

/** The interpreter with PyTorch 1.13 (Debian's python3-torch); override with RESSL_PYTHON. */
const PYTHON = Deno.env.get("RESSL_PYTHON") ?? "/usr/bin/python3";
const TORCH_SCRIPT = new URL("./fmnist_torch.py", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

/** Options of the benchmark (see {@link USAGE}). */
export interface BenchOptions {
  quick: boolean;
  width: number;
  seed: number;
  batchSize: number;
  oursEpochs: number;
  torchEpochs: number;
  /** 0 = no long run. */
  longEpochs: number;
  limit?: number;
  evalTrainLimit?: number;
  evalTestLimit?: number;
  probeEpochs: number;
  skipTorch: boolean;
  fresh: boolean;
  threads?: number;
  workers: number;
  root: string;
  doc: string;
}

/** The usage text of `deno task bench:fmnist --help`. */
export const USAGE = `Usage: deno task bench:fmnist [options]

Issue-7 protocol (no flags): ours width 16 for 10 epochs, PyTorch the same recipe for 10 epochs, ours
for 30 epochs, seed 0, on the 60,000 Fashion-MNIST training images; kNN (k=200, T=0.1) and linear
probe on the 10,000 test images; baselines; writes docs/results.md. Takes about 2.5 hours on 2 cores.
Finished steps under --root are reused; an interrupted training resumes.

Options:
  --ours-epochs <n>      epochs of our main run (default 10)
  --torch-epochs <n>     epochs of the PyTorch run (default 10)
  --long-epochs <n>      epochs of our longer run (default 30; 0 = none)
  --width <n>            ResNet-18 base width (default 16)
  --seed <n>             seed of both implementations (default 0)
  --batch-size <n>       images per step (default 256)
  --limit <n>            pretrain on the first n images only (smoke runs)
  --eval-train-limit <n> evaluate with the first n labelled train images only (smoke runs)
  --eval-test-limit <n>  evaluate on the first n test images only (smoke runs)
  --probe-epochs <n>     linear-probe epochs on cached features (default 100)
  --skip-torch           no PyTorch run (its row is left out)
  --threads <n>          oneDNN threads of ours (default: all cores); PyTorch uses 2
  --workers <n>          augmentation workers, both implementations (default 1)
  --root <dir>           where runs and results go (default runs/bench-fmnist)
  --doc <file>           the report (default docs/results.md; with --quick <root>/results.md)
  --fresh                delete --root first instead of reusing finished steps
  --quick                smoke configuration: --limit 2048 --width 4, 1 epoch each, long run 2
                         epochs, evaluation on 5,000 train / 1,000 test images, 10 probe epochs,
                         --root runs/bench-fmnist-quick
  --help                 this text
`;

function intFlag(name: string, v: string | undefined, min: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) {
    throw new RangeError(`Invalid flag --${name}: expected an integer >= ${min}, got '${v}'`);
  }
  return n;
}

/** Parses the command line; null on `--help`. Throws a clear error on a bad flag. */
export function parseBenchArgs(args: string[]): BenchOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        "ours-epochs": { type: "string" },
        "torch-epochs": { type: "string" },
        "long-epochs": { type: "string" },
        width: { type: "string" },
        seed: { type: "string" },
        "batch-size": { type: "string" },
        limit: { type: "string" },
        "eval-train-limit": { type: "string" },
        "eval-test-limit": { type: "string" },
        "probe-epochs": { type: "string" },
        "skip-torch": { type: "boolean" },
        threads: { type: "string" },
        workers: { type: "string" },
        root: { type: "string" },
        doc: { type: "string" },
        fresh: { type: "boolean" },
        quick: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new TypeError(`Invalid command line: ${(e as Error).message} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) return null;
  const quick = v.quick ?? false;
  const root = v.root ?? (quick ? "runs/bench-fmnist-quick" : "runs/bench-fmnist");
  return {
    quick,
    width: intFlag("width", v.width, 1) ?? (quick ? 4 : 16),
    seed: intFlag("seed", v.seed, 0) ?? 0,
    batchSize: intFlag("batch-size", v["batch-size"], 1) ?? 256,
    oursEpochs: intFlag("ours-epochs", v["ours-epochs"], 1) ?? (quick ? 1 : 10),
    torchEpochs: intFlag("torch-epochs", v["torch-epochs"], 1) ?? (quick ? 1 : 10),
    longEpochs: intFlag("long-epochs", v["long-epochs"], 0) ?? (quick ? 2 : 30),
    limit: intFlag("limit", v.limit, 1) ?? (quick ? 2048 : undefined),
    evalTrainLimit: intFlag("eval-train-limit", v["eval-train-limit"], 1) ??
      (quick ? 5000 : undefined),
    evalTestLimit: intFlag("eval-test-limit", v["eval-test-limit"], 1) ??
      (quick ? 1000 : undefined),
    probeEpochs: intFlag("probe-epochs", v["probe-epochs"], 1) ?? (quick ? 10 : 100),
    skipTorch: v["skip-torch"] ?? false,
    fresh: v.fresh ?? false,
    threads: intFlag("threads", v.threads, 1),
    workers: intFlag("workers", v.workers, 0) ?? 1,
    root,
    doc: v.doc ?? (quick ? join(root, "results.md") : "docs/results.md"),
  };
}

// ------------------------------------------------------------------------------------------ helpers

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

async function readJson<T>(path: string): Promise<T> {
  try {
    return JSON.parse(await Deno.readTextFile(path)) as T;
  } catch (e) {
    throw new Error(`Cannot read result file '${path}': ${(e as Error).message}`);
  }
}

async function writeJson(path: string, value: unknown): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/** Shell-quotes one argument for the commands shown in the report. */
function quote(a: string): string {
  return /^[\w./=:-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

/** Runs a command with inherited output; throws naming it when it fails. */
async function run(cmd: string[], what: string): Promise<void> {
  console.log(`\n== ${what}\n$ ${cmd.map(quote).join(" ")}`);
  let status;
  try {
    status = await new Deno.Command(cmd[0], {
      args: cmd.slice(1),
      cwd: REPO,
      stdout: "inherit",
      stderr: "inherit",
    }).output();
  } catch (e) {
    throw new Error(`Cannot start ${what} (${cmd[0]}): ${(e as Error).message}`);
  }
  if (!status.success) {
    throw new Error(`${what} failed with exit status ${status.code}: ${cmd.map(quote).join(" ")}`);
  }
}

async function capture(cmd: string[]): Promise<string> {
  try {
    const r = await new Deno.Command(cmd[0], { args: cmd.slice(1), stderr: "null" }).output();
    return new TextDecoder().decode(r.stdout).trim();
  } catch {
    return "unavailable";
  }
}

function evalLimits(o: BenchOptions): string[] {
  return [
    ...(o.evalTrainLimit ? ["--eval-train-limit", String(o.evalTrainLimit)] : []),
    ...(o.evalTestLimit ? ["--eval-test-limit", String(o.evalTestLimit)] : []),
    "--probe-epochs",
    String(o.probeEpochs),
  ];
}

// ------------------------------------------------------------------------------------------ results

/** A linear-probe result of fmnist_torch.py. */
interface ProbeResult {
  top1: number;
  best: number;
  bestEpoch: number;
  curve: number[];
  protocol: Record<string, unknown>;
}

/** One trained row of the table. */
interface RunResult {
  implementation: "ours" | "pytorch";
  dir: string;
  width: number;
  epochs: number;
  seed: number;
  batchSize: number;
  images: number;
  steps: number;
  wallSeconds: number;
  imagesPerSecond: number;
  epochLoss: number[];
  knnTop1: number;
  /** kNN recomputed by the Python code on the same features (ours only). */
  knnTop1Python?: number;
  probe: ProbeResult;
  versions: Record<string, unknown>;
  evalImages: { train: number; test: number };
}

/** The Python baselines. */
interface Baselines {
  rawPixelKnnTop1: number;
  logregRawPixels: ProbeResult;
  randomInitTorchKnnTop1: number;
  evalImages: { train: number; test: number };
  versions: Record<string, unknown>;
}

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
  const file = await readSafetensors(done.path);
  const featuresPath = join(dir, "features.safetensors");
  const ev = await evaluateOurs(o, done.config, (ctx) => {
    const key = foldIn(rngKey(done.config.seed), nameId("init"));
    const like = initResNet(ctx, { ...backboneOptions(done.config), key });
    try {
      const src = `'${done.path}'`;
      return {
        params: loadTreeLike(ctx, like.params, file.tensors, {
          prefix: "student/backbone.",
          strict: false,
          source: src,
        }),
        buffers: loadTreeLike(ctx, like.buffers, file.tensors, {
          prefix: "student_buffers/",
          strict: false,
          source: src,
        }),
      };
    } finally {
      disposeTree(like as unknown as TensorTree);
    }
  }, featuresPath);
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

async function pngs(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && e.name.endsWith(".png")) out.push(join(dir, e.name));
  }
  return out.sort();
}

// ------------------------------------------------------------------------------------------ report

async function machine(): Promise<Record<string, string>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown";
  const meminfo = await Deno.readTextFile("/proc/meminfo").catch(() => "");
  const kb = Number(meminfo.match(/^MemTotal:\s*(\d+)/m)?.[1] ?? NaN);
  return {
    cores: String(navigator.hardwareConcurrency),
    cpu: model,
    memory: Number.isFinite(kb) ? `${(kb / 1024 / 1024).toFixed(1)} GiB` : "unknown",
    os: await capture(["uname", "-srm"]),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
  };
}

const pct = (v: number | undefined) => (v === undefined ? "-" : `${v.toFixed(2)} %`);
const dur = (s: number) => s >= 3600 ? `${(s / 3600).toFixed(2)} h` : `${(s / 60).toFixed(1)} min`;

/** The whole report as Markdown. */
export function renderReport(r: {
  o: BenchOptions;
  args: string[];
  runs: RunResult[];
  base: Baselines;
  randomOurs: number;
  plots: Record<string, string[]>;
  machine: Record<string, string>;
  commands: string[];
}): string {
  const { o, runs, base } = r;
  const ours = runs.find((x) => x.implementation === "ours" && x.epochs === o.oursEpochs);
  const torch = runs.find((x) => x.implementation === "pytorch");
  const long = runs.find((x) => x.implementation === "ours" && x.epochs === o.longEpochs);
  const ev = ours?.evalImages ?? torch?.evalImages ?? base.evalImages;
  const rows = runs.map((x) =>
    `| ${
      x.implementation === "ours" ? "ours (Deno + oneDNN)" : "PyTorch 1.13 (same recipe)"
    } | ${x.width} | ${x.epochs} | ${x.seed} | ${dur(x.wallSeconds)} | ${
      x.imagesPerSecond.toFixed(1)
    } | ${pct(x.knnTop1)} | ${pct(x.probe.top1)} (best ${
      pct(x.probe.best)
    }, ep. ${x.probe.bestEpoch}) |`
  );
  const lines: string[] = [];
  const p = (s = "") => lines.push(s);
  p("# Results: ReSSL on Fashion-MNIST (issue 7)");
  p();
  p(
    `Generated by \`${["deno task bench:fmnist", ...r.args.map(quote)].join(" ")}\` on ${
      new Date().toISOString().slice(0, 10)
    }. Every number below comes from that one command (its intermediate files are under \`${o.root}/\`).`,
  );
  if (o.quick) p("\n**Smoke configuration (`--quick`): the numbers say nothing about quality.**");
  p();
  p("## Table");
  p();
  p(
    `Pretraining on ${
      o.limit ? `the first ${o.limit}` : "the 60,000"
    } Fashion-MNIST training images (labels unused), batch ${o.batchSize}. ` +
      `Evaluation: ${ev.train} labelled training images as the kNN memory / probe training set, ` +
      `${ev.test} test images. kNN: weighted, k=200, T=0.1, L2-normalised backbone features (eval-mode BN, no augmentation). ` +
      `Linear probe: see the protocol below; the last epoch is the reported number, the best test epoch is shown beside it (the paper reports the best epoch). ` +
      `Wall time and images/s: the training loop only (no evaluation, no start-up).`,
  );
  p();
  p("| implementation | width | epochs | seed | train wall time | images/s | kNN top-1 | linear probe top-1 |");
  p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const row of rows) p(row);
  p(`| baseline: raw pixels | - | - | - | - | - | ${pct(base.rawPixelKnnTop1)} | - |`);
  p(
    `| baseline: logistic regression on raw pixels (the probe routine on pixels) | - | - | - | - | - | - | ${
      pct(base.logregRawPixels.top1)
    } (best ${pct(base.logregRawPixels.best)}) |`,
  );
  p(`| baseline: random-init encoder, ours | ${o.width} | 0 | ${o.seed} | - | - | ${
    pct(r.randomOurs)
  } | - |`);
  p(
    `| baseline: random-init encoder, PyTorch | ${o.width} | 0 | ${o.seed} | - | - | ${
      pct(base.randomInitTorchKnnTop1)
    } | - |`,
  );
  p();
  p("## Acceptance criteria of issue 7");
  p();
  if (ours && torch) {
    const dk = ours.knnTop1 - torch.knnTop1, dp = ours.probe.top1 - torch.probe.top1;
    const ok = (d: number) => (Math.abs(d) <= 1 ? "met" : "NOT met");
    p(`- ${o.oursEpochs}-epoch kNN, ours - PyTorch: ${dk.toFixed(2)} points (within 1 point: ${
      ok(dk)
    }).`);
    p(`- ${o.oursEpochs}-epoch linear probe, ours - PyTorch: ${
      dp.toFixed(2)
    } points (within 1 point: ${ok(dp)}).`);
  } else {p(
      "- No PyTorch run in this report (`--skip-torch`): the parity criterion is not assessed.",
    );}
  if (long) {
    const d = long.probe.top1 - base.logregRawPixels.top1;
    p(
      `- ${o.longEpochs}-epoch linear probe ${
        pct(long.probe.top1)
      } vs logistic regression on raw pixels ${pct(base.logregRawPixels.top1)}: ${
        d > 0 ? "beats it" : "does NOT beat it"
      } by ${d.toFixed(2)} points.`,
    );
  }
  for (const x of runs.filter((x) => x.knnTop1Python !== undefined)) {
    p(
      `- Cross-check: the Python kNN on our ${x.epochs}-epoch features gives ${
        pct(x.knnTop1Python)
      } (ours: ${pct(x.knnTop1)}).`,
    );
  }
  p();
  p("## Training curves");
  p();
  for (const x of runs) {
    p(`- ${x.implementation} ${x.epochs} epochs, mean loss per epoch: ${
      x.epochLoss.map((l) => l.toFixed(3)).join(", ")
    }`);
  }
  p();
  const imgs = Object.entries(r.plots).flatMap(([name, list]) => list.map((f) => ({ name, f })));
  if (imgs.length === 0) {
    p("(No plot: `tasks/plot.ts` was not available when this report was generated; `deno task plot <run folder>` draws one from `metrics.jsonl`, written in the same format by both implementations.)");
  }
  for (const { name, f } of imgs) p(`![${name}](${f})`);
  p();
  p("## Protocol");
  p();
  p(
    "Recipe (both implementations): ResNet-18 (BasicBlock) with the CIFAR stem (3x3/1, no max-pool), 1 input channel, head Linear(8 x width, 2048)-ReLU-Linear(2048, 128), torchvision initialisation; " +
      "teacher = copy of the student, EMA m = 0.99 (constant) at the start of each step; teacher forward on the weak view in training-mode BN with its own running statistics; " +
      "queue 4096 x 128 initialised with L2-normalised Gaussian rows, enqueued after the loss; tau_s 0.1, tau_t 0.04; SGD momentum 0.9, weight decay 5e-4, lr 0.06 x batch / 256, " +
      "linear warm-up from 0 for min(5 epochs, floor(2.5 % of all steps)) then per-iteration cosine to 0. Views: weak = RandomResizedCrop(28, scale (0.2, 1), ratio (3/4, 4/3)) + flip; " +
      "strong = the same + ColorJitter(brightness 0.4, contrast 0.4) with p 0.8 + GaussianBlur(3, sigma U[0.1, 2]) with p 0.5; Normalize(0.2860, 0.3530). " +
      "PyTorch uses torchvision 0.14 transforms on float tensors, a DataLoader with the same number of workers as ours and `torch.set_num_threads(2)`.",
  );
  p();
  p(
    "Seed policy: both implementations take the same seed number, but draw from different generators (ours: counter-based Philox streams of (seed, epoch, image); PyTorch: `torch.manual_seed` and a per-epoch DataLoader generator), " +
      "so the two runs see different initial weights, orders and augmentations: the comparison is statistical, one seed each.",
  );
  p();
  p(
    `Linear probe (the same Python code for every row; ours exports its features to safetensors): frozen backbone in eval mode, features of the un-augmented images cached once; Linear(D, 10) with weights N(0, 0.01), bias 0; ` +
      `SGD nesterov momentum 0.9, no weight decay, batch 256, ${o.probeEpochs} epochs, lr 0.2 with a per-iteration cosine to 0. ` +
      "This departs from the paper's protocol (100 epochs with RandomResizedCrop + flip on the images), which is too slow on 2 cores; cached features make the probe a convex problem that converges in these epochs.",
  );
  p();
  p("## Commands");
  p();
  p("```sh");
  p(["deno task bench:fmnist", ...r.args.map(quote)].join(" "));
  p("```");
  p();
  p("which ran (steps already finished under the root are reused, interrupted trainings resumed):");
  p();
  p("```sh");
  for (const c of r.commands) p(c);
  p("```");
  p();
  p("## Machine");
  p();
  const tv = (torch?.versions ?? base.versions) as Record<string, unknown>;
  const ov = (ours?.versions ?? long?.versions ?? {}) as Record<string, unknown>;
  p(`- CPU: ${r.machine.cpu}, ${r.machine.cores} cores visible (shared), memory ${r.machine.memory}; ${r.machine.os}`);
  p(`- Deno ${r.machine.deno} (V8 ${r.machine.v8}); ours: backend ${ov.backend ?? "?"} (${
    Object.entries(ov).filter(([k]) => k !== "backend" && k !== "deno").map(([k, v]) => `${k} ${v}`)
      .join(", ") || "versions not recorded"
  })`);
  p(`- PyTorch ${tv.torch ?? "?"}, torchvision ${tv.torchvision ?? "?"}, Python ${
    tv.python ?? "?"
  }`);
  p();
  p("## Discussion");
  p();
  if (ours && torch) {
    const speed = ours.imagesPerSecond / torch.imagesPerSecond;
    p(
      `- Quality: after ${o.oursEpochs} epochs ours reaches kNN ${pct(ours.knnTop1)} / probe ${
        pct(ours.probe.top1)
      }, PyTorch ${pct(torch.knnTop1)} / ${pct(torch.probe.top1)}. ` +
        "With one seed per implementation and different random streams, differences of a few tenths of a point are within seed-to-seed noise; a gap beyond 1 point would point to a difference in the recipe.",
    );
    p(
      `- Speed: ours trains at ${ours.imagesPerSecond.toFixed(1)} images/s, PyTorch at ${
        torch.imagesPerSecond.toFixed(1)
      } images/s (ratio ${
        speed.toFixed(2)
      }), on the same shared cores; other jobs on the machine during the runs inflate both wall times.`,
    );
  }
  p(
    `- Baselines: Fashion-MNIST is easy for raw pixels (kNN ${
      pct(base.rawPixelKnnTop1)
    }, logistic regression ${pct(base.logregRawPixels.top1)}); ` +
      `a short self-supervised run with a width-${o.width} network need not beat them in kNN; the random-init encoder (ours ${
        pct(r.randomOurs)
      }, PyTorch ${pct(base.randomInitTorchKnnTop1)}) shows what training adds.`,
  );
  p(
    "- Caveats: single seed; the probe on cached features is not the paper's augmented probe (it usually gives slightly lower numbers); the kNN and probe are evaluated on the test set, and the best-epoch figure is optimistic.",
  );
  return lines.join("\n") + "\n";
}

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
  await writeFileAtomic(o.doc, report);
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
