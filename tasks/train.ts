/**
 * `deno task train`: ReSSL pretraining from the command line (flags: `--help`, tasks/train_args.ts).
 * Exit status: 0 done (or stopped by a signal after its checkpoint), 1 error, 2 bad command line,
 * 3 the loss became NaN or infinite.
 *
 * @module
 */

import { createBackend } from "../src/backend/select.ts";
import { openDataset } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { downloadDataset } from "../src/data/download.ts";
import { Progress } from "../src/io/progress.ts";
import { plotRun } from "../src/plot/curves.ts";
import { effectiveLr } from "../src/ressl/config.ts";
import { runTraining } from "../src/run/trainer.ts";
import { NonFiniteLossError } from "../src/run/non_finite.ts";
import { createContext } from "../src/tensor/mod.ts";
import { loadBackboneInit } from "../src/run/init_weights.ts";
import { parseTrainArgs, TRAIN_USAGE } from "./train_args.ts";

const DATA_NAMES: Record<string, string> = { tinyimagenet: "tiny-imagenet" };

async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = await parseTrainArgs(args);
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  }
  if (parsed === null) {
    console.log(TRAIN_USAGE);
    return 0;
  }
  const { config, runtime } = parsed;
  const dataName = DATA_NAMES[config.dataset] ?? config.dataset;
  const dataDir = runtime.data ?? "data";
  if (runtime.download) {
    const r = await downloadDataset(dataName, { dataDir });
    console.log(
      r.alreadyPresent
        ? `dataset ${dataName}: present in ${dataDir}`
        : `dataset ${dataName}: downloaded into ${dataDir}`,
    );
  }
  const backend = createBackend(runtime.device, { threads: runtime.threads });
  const ctx = createContext(backend);
  const full = await openDataset(dataName, {
    dataDir,
    split: "pretrain",
    imageSize: config.image.size,
  });
  const dataset = runtime.limit ? firstImages(full, runtime.limit) : full;
  const knnData = config.knnEvery > 0
    ? {
      train: await openDataset(dataName, { dataDir, split: "train", imageSize: config.image.size }),
      test: await openDataset(dataName, { dataDir, split: "test", imageSize: config.image.size }),
    }
    : undefined;
  const lr = effectiveLr(config);
  console.log(
    `ReSSL ${runtime.preset}: ResNet-${config.model.depth} width ${config.model.width}, ` +
      `${dataset.length} images (${dataset.name}), batch ${config.batchSize}, ${config.epochs} epochs, ` +
      `backend ${backend.name}${
        Object.keys(backend.versions).length
          ? ` (${Object.entries(backend.versions).map(([k, v]) => `${k} ${v}`).join(", ")})`
          : ""
      }`,
  );
  console.log(
    `lr ${config.optim.lr} at batch 256` +
      (config.optim.scaleLr
        ? ` scaled linearly to ${lr} for batch ${config.batchSize}`
        : " (no scaling)") +
      `; run folder ${runtime.out}`,
  );
  const stop = { requested: false };
  const onSignal = () => {
    if (stop.requested) Deno.exit(130);
    stop.requested = true;
    console.error("\nstop requested: writing a checkpoint at the current step (again to quit now)");
  };
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    const result = await runTraining({
      ctx,
      config,
      dataset,
      knnData,
      outDir: runtime.out,
      resume: runtime.resume,
      maxSteps: runtime.maxSteps,
      workers: runtime.workers,
      progress: new Progress({ interactive: Deno.stdout.isTerminal() && !runtime.plain }),
      stop,
      initialize: runtime.init ? (state) => loadBackboneInit(ctx, state, runtime.init!) : undefined,
      runInfo: {
        init: runtime.init,
        preset: runtime.preset,
        backend: backend.name,
        versions: backend.versions,
        deno: Deno.version.deno,
        args,
        dataset: dataset.name,
        images: dataset.length,
        effectiveLr: lr,
      },
    });
    console.log(
      `${result.stoppedBy === "signal" ? "stopped" : "done"}: ${result.steps} steps ` +
        `(${result.stepsThisRun} in ${result.wallSeconds.toFixed(1)} s, ` +
        `${result.imagesPerSecond.toFixed(1)} images/s), final loss ${
          result.finalLoss.toFixed(4)
        }` +
        (result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ""),
    );
    try {
      const plots = await plotRun(runtime.out);
      console.log(`training curves: ${[...plots.png, ...plots.svg].join(", ")}`);
    } catch (e) {
      console.error(`warning: cannot plot the training curves: ${(e as Error).message}`);
    }
    return 0;
  } catch (e) {
    console.error(`\n${(e as Error).message}`);
    return e instanceof NonFiniteLossError ? 3 : 1;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    dataset.close();
    knnData?.train.close();
    knnData?.test.close();
    backend.dispose();
  }
}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    code = 1;
  }
  Deno.exit(code);
}
