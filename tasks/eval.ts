/**
 * `deno task eval`: evaluates the backbone of a training checkpoint by the weighted kNN classifier
 * or the linear probe (RESSL_SPEC §7; `--fast`: probe on cached features). The architecture, the
 * dataset and its normalisation come from the checkpoint's configuration (`--preset` evaluates on
 * another dataset). Prints a table and writes the result as JSON (`--out`, written atomically).
 * Exit status: 0 done, 1 error (unreadable checkpoint or data), 2 bad command line.
 *
 * @module
 */

import { createBackend } from "../src/backend/select.ts";
import type { ImageDataset } from "../src/data/datasets/dataset.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { disposeBackbone } from "../src/eval/backbone_io.ts";
import { loadCheckpointBackbone } from "../src/ressl/checkpoint.ts";
import { extractFeatures, type ExtractFeaturesOptions } from "../src/eval/features.ts";
import { knnAccuracy, knnClassify } from "../src/eval/knn.ts";
import type { LinearProbeResult } from "../src/eval/linear_probe.ts";
import { datasetClasses, datasetLabels, linearProbe } from "../src/eval/linear_probe_images.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";
import { type Context, createContext } from "../src/tensor/mod.ts";
import { type CommandSpec, parseCommand, required } from "./cli_flags.ts";
import { helpText } from "./help.ts";
import {
  checkNotInput,
  checkOutputPath,
  CHECKPOINT_FLAG,
  DATA_FLAG,
  DEVICE_FLAG,
  resolveCheckpoint,
  runCommand,
  THREADS_FLAG,
  UsageError,
} from "./cli_util.ts";
import { checkEvalPreset, evalSource, evalViews, openLabelled } from "./eval_data.ts";

/** The command table of `eval`. */
export const EVAL_SPEC: CommandSpec = {
  name: "eval",
  usage: "--checkpoint <file> --protocol knn|linear [options]",
  description:
    "Evaluates a checkpoint's backbone (frozen, eval-mode BN) on the labelled train/test " +
    "images of its dataset (or of --data): weighted kNN (k, temperature) or the linear probe of " +
    "the paper (Linear(D, C), SGD nesterov, batch 256, cosine lr 0.2, RandomResizedCrop + flip; " +
    "best and last epoch reported). The architecture and normalisation come from the checkpoint. " +
    "Exit status: 0 done, 1 error (unreadable checkpoint or data), 2 bad command line.",
  flags: [
    CHECKPOINT_FLAG,
    {
      name: "protocol",
      kind: "choice",
      value: "knn|linear",
      choices: ["knn", "linear"],
      help: "evaluation protocol",
    },
    {
      name: "fast",
      kind: "boolean",
      help: "linear: train the probe on features cached once (no augmentation)",
    },
    DATA_FLAG,
    {
      name: "preset",
      kind: "string",
      value: "<name>",
      help: "evaluate with this dataset's normalisation and images instead of the checkpoint's",
    },
    DEVICE_FLAG,
    THREADS_FLAG,
    {
      name: "network",
      kind: "choice",
      value: "<n>",
      choices: ["student", "teacher"],
      default: "student",
      help: "which network's backbone: student | teacher",
    },
    {
      name: "epochs",
      kind: "int",
      value: "<n>",
      min: 1,
      default: 100,
      help: "linear: probe epochs",
    },
    {
      name: "batch-size",
      kind: "int",
      value: "<n>",
      min: 1,
      default: 256,
      help: "linear: probe batch",
    },
    {
      name: "lr",
      kind: "number",
      value: "<x>",
      min: 0,
      exclusiveMin: true,
      default: 0.2,
      help: "linear: initial learning rate",
    },
    {
      name: "seed",
      kind: "int",
      value: "<n>",
      min: 0,
      default: 0,
      help: "linear: probe initialisation and shuffling seed",
    },
    {
      name: "k",
      kind: "int",
      value: "<n>",
      min: 1,
      help: "knn: neighbours",
      defaultText: "the checkpoint's config (200)",
    },
    {
      name: "temperature",
      kind: "number",
      value: "<x>",
      min: 0,
      exclusiveMin: true,
      help: "knn: vote temperature",
      defaultText: "the checkpoint's config (0.1)",
    },
    {
      name: "limit-train",
      kind: "int",
      value: "<n>",
      min: 1,
      help: "use the first n training images",
    },
    { name: "limit-test", kind: "int", value: "<n>", min: 1, help: "use the first n test images" },
    {
      name: "out",
      kind: "string",
      value: "<file.json>",
      help: "write the result as JSON (atomically; checked before the work)",
    },
  ],
  examples: [
    "deno task eval --checkpoint runs/quick --protocol knn",
    "deno task eval --checkpoint runs/quick/checkpoint-000000702.safetensors --protocol linear --fast",
    "deno task eval --checkpoint runs/photos --protocol knn --data ~/photos",
  ],
};

function parse(args: string[]) {
  const p = parseCommand(EVAL_SPEC, args);
  if (p === null) return null;
  const v = p.values;
  const checkpoint = required(EVAL_SPEC, p, "checkpoint");
  if (v.protocol === undefined) {
    throw new UsageError("Missing flag --protocol: expected one of knn, linear (see --help)");
  }
  const protocol = v.protocol as "knn" | "linear";
  if (v.fast && protocol !== "linear") {
    throw new UsageError("Invalid flag --fast: it applies to --protocol linear only");
  }
  const out = v.out as string | undefined;
  if (out !== undefined) {
    checkOutputPath("out", out);
    checkNotInput("out", out, { checkpoint });
  }
  return {
    checkpoint,
    protocol,
    fast: v.fast === true,
    data: v.data as string | undefined,
    preset: checkEvalPreset(v.preset as string | undefined),
    device: v.device as "auto" | "cpu" | "cuda" | "reference",
    threads: v.threads as number | undefined,
    network: v.network as "student" | "teacher",
    epochs: v.epochs as number,
    batchSize: v["batch-size"] as number,
    lr: v.lr as number,
    seed: v.seed as number,
    k: v.k as number | undefined,
    temperature: v.temperature as number | undefined,
    limitTrain: v["limit-train"] as number | undefined,
    limitTest: v["limit-test"] as number | undefined,
    out,
  };
}

function knn(
  ctx: Context,
  common: Omit<ExtractFeaturesOptions, "dataset">,
  train: ImageDataset,
  test: ImageDataset,
  k: number,
  temperature: number,
) {
  return ctx.scope(() => {
    const trainF = extractFeatures(ctx, { ...common, dataset: train });
    const testF = extractFeatures(ctx, { ...common, dataset: test });
    const result = knnClassify({
      trainFeatures: trainF,
      trainLabels: datasetLabels(train),
      testFeatures: testF,
      numClasses: datasetClasses(train, test),
      k,
      temperature,
    });
    return knnAccuracy(result, datasetLabels(test));
  });
}

function fmt(x: number): string {
  return x.toFixed(2).padStart(6);
}

function printLinear(r: LinearProbeResult): void {
  console.log("linear probe   top-1   top-5  epoch");
  for (const [name, e] of [["best", r.best], ["last", r.last]] as const) {
    console.log(
      `${name.padEnd(13)} ${fmt(e.top1)}  ${fmt(e.top5)}  ${String(e.epoch).padStart(5)}`,
    );
  }
}

async function main(args: string[]): Promise<number> {
  const o = parse(args);
  if (o === null) {
    console.log(helpText(EVAL_SPEC));
    return 0;
  }
  const checkpoint = resolveCheckpoint("checkpoint", o.checkpoint);
  const backend = createBackend(o.device, { threads: o.threads });
  const ctx = createContext(backend);
  let close = () => {};
  try {
    const net = await loadCheckpointBackbone(ctx, checkpoint, { network: o.network });
    try {
      const { config } = net.meta;
      const v = evalViews(config, o.preset);
      const data = await openLabelled(
        evalSource(v.name, o.data),
        v.test.size,
        net.options.inChannels,
      );
      close = data.close;
      const limited = (ds: ImageDataset, limit?: number) => {
        if (ds.channels !== net.options.inChannels) {
          throw new Error(
            `Cannot evaluate on '${ds.name}': its images have ${ds.channels} channel(s), the backbone takes ${net.options.inChannels}`,
          );
        }
        return limit ? firstImages(ds, limit) : ds;
      };
      const train = limited(data.train, o.limitTrain);
      const test = limited(data.test, o.limitTest);
      console.log(
        `eval ${o.protocol}${o.fast ? " (fast)" : ""}: ${o.network} of ${checkpoint} ` +
          `(ResNet-${net.options.depth} width ${net.options.width}, step ${net.meta.step}), ` +
          `${train.length} train / ${test.length} test images of ${v.name} in ${data.where}, backend ${backend.name}`,
      );
      const common = {
        params: net.params,
        buffers: net.buffers,
        maxPool: net.options.maxPool,
        view: v.test,
      };
      const base = {
        checkpoint,
        network: o.network,
        step: net.meta.step,
        epoch: net.meta.epoch,
        dataset: v.name,
        trainImages: train.length,
        testImages: test.length,
        backend: backend.name,
        protocol: o.protocol,
      };
      let record: Record<string, unknown>;
      if (o.protocol === "knn") {
        const k = o.k ?? config.knn.k, temperature = o.temperature ?? config.knn.temperature;
        const acc = knn(ctx, common, train, test, k, temperature);
        console.log(
          `kNN (k ${k}, T ${temperature}): top-1 ${fmt(acc.top1)}  top-5 ${fmt(acc.top5)}`,
        );
        record = { ...base, k, temperature, top1: acc.top1, top5: acc.top5 };
      } else {
        const r = linearProbe(ctx, {
          backbone: net,
          maxPool: net.options.maxPool,
          train,
          test,
          trainView: v.train,
          testView: v.test,
          fast: o.fast,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          seed: o.seed,
          onEpoch: (e) =>
            console.log(
              `epoch ${e.epoch}/${o.epochs}: lr ${e.lr.toFixed(4)}, loss ${
                e.trainLoss.toFixed(4)
              }, ` +
                `top-1 ${e.top1.toFixed(2)}, top-5 ${e.top5.toFixed(2)}`,
            ),
        });
        printLinear(r);
        record = {
          ...base,
          fast: o.fast,
          epochs: o.epochs,
          batchSize: o.batchSize,
          lr: o.lr,
          seed: o.seed,
          numClasses: r.numClasses,
          featureDim: r.featureDim,
          best: r.best,
          last: r.last,
          history: r.history,
        };
      }
      if (o.out) {
        await writeFileAtomic(o.out, JSON.stringify(record, null, 2) + "\n");
        console.log(`wrote ${o.out}`);
      }
      return 0;
    } finally {
      disposeBackbone(net);
    }
  } finally {
    close();
    backend.dispose();
  }
}

if (import.meta.main) await runCommand(main);
