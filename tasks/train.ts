/**
 * `deno task train`: ReSSL pretraining from the command line (flags: `--help`, tasks/train_args.ts;
 * what `--data` may hold: tasks/data_source.ts). Exit status: 0 done (or stopped by a signal after
 * its checkpoint), 1 error, 2 bad command line, 3 the loss became NaN or infinite.
 *
 * @module
 */

import { createBackend } from "../src/backend/select.ts";
import type { ImageDataset } from "../src/data/datasets/mod.ts";
import { firstImages } from "../src/data/datasets/subset.ts";
import { downloadDataset } from "../src/data/download.ts";
import { stopOnSignals } from "../src/data/stop_signals.ts";
import { readMetrics } from "../src/io/metrics.ts";
import { Progress } from "../src/io/progress.ts";
import { plotRun } from "../src/plot/curves.ts";
import { effectiveLr, presetConfig, warmupStepsOf } from "../src/ressl/config.ts";
import { runTraining } from "../src/run/trainer.ts";
import { NonFiniteLossError } from "../src/run/non_finite.ts";
import { createContext } from "../src/tensor/mod.ts";
import { loadBackboneInit } from "../src/run/init_weights.ts";
import { checkOutputFolder, runCommand, UsageError } from "./cli_util.ts";
import { openBuiltin, resolveData } from "./data_source.ts";
import { plural, prepareFolderConfig, runHeader } from "./train_data.ts";
import { buildTrainConfig, parseTrainCommand, trainUsage } from "./train_args.ts";
import { resumeRun } from "./train_resume.ts";
import { openFolder } from "./folder_data.ts";
import { validateConfig } from "../src/ressl/config.ts";
import type { KnnData } from "../src/run/knn_monitor.ts";
import type { Comm } from "../src/dist/comm.ts";
import { createComm } from "../src/dist/create.ts";
import { createDeviceComm } from "../src/dist/device_comm_select.ts";
import { parseLaunchEnv, readLaunchEnv } from "../src/dist/launch.ts";
import { runLocalJob } from "../src/dist/local_launch.ts";
import { runWithComm } from "../src/dist/run_with_comm.ts";
import type { TrainRuntime } from "./train_args.ts";

/** `args` without `--nproc` (and its value), with `--out` made explicit for the ranks. */
function rankArgs(args: string[], runtime: TrainRuntime): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--nproc") i++;
    else if (!args[i].startsWith("--nproc=")) out.push(args[i]);
  }
  if (!runtime.given.includes("out")) out.push("--out", runtime.out);
  return out;
}

async function main(args: string[]): Promise<number> {
  const cli = parseTrainCommand(args);
  if (cli === null) {
    console.log(trainUsage());
    return 0;
  }
  const launch = parseLaunchEnv(readLaunchEnv());
  if ((cli.runtime.nproc ?? 1) > 1 && launch.size === 1) {
    // --nproc: this command again as an MPI job on this machine (each rank finds its place).
    const program = [Deno.execPath(), "run", "-A", new URL(import.meta.url).pathname];
    return await runLocalJob(cli.runtime.nproc!, [...program, ...rankArgs(args, cli.runtime)], {
      say: (line) => console.log(line),
    });
  }
  if (cli.runtime.nproc !== undefined && launch.size > 1 && cli.runtime.nproc !== launch.size) {
    throw new UsageError(
      `Invalid flag --nproc ${cli.runtime.nproc}: this process is one of ${launch.size} started ` +
        `by ${launch.launcher} (${launch.source}); drop --nproc under mpirun or srun`,
    );
  }
  return await runWithComm(createComm(), (comm) => train(cli, args, comm));
}

/** One rank's training (the whole of it in a job of one process). */
async function train(
  cli: NonNullable<ReturnType<typeof parseTrainCommand>>,
  args: string[],
  comm: Comm,
): Promise<number> {
  const { parsed } = cli;
  let { runtime } = cli;
  // Rank 0 speaks for the job; the other ranks print only errors.
  const say = comm.rank === 0 ? (line: string) => console.log(line) : () => {};
  if (runtime.presetNote && comm.rank === 0) console.error(runtime.presetNote);
  // --resume: the run's own configuration, preset, data and limit (flags given must agree).
  const resumed = runtime.resume === undefined ? undefined : await resumeRun(parsed, runtime);
  if (resumed) runtime = resumed.runtime;
  checkOutputFolder("out", runtime.out);
  let preset = runtime.preset;
  const name = presetConfig(preset).dataset;
  if (runtime.download && comm.rank === 0) {
    if (name === "image-folder") {
      throw new UsageError(
        "Invalid flag --download: it fetches built-in datasets; --data holds your own images",
      );
    }
    const dataDir = runtime.data ?? "data";
    const r = await stopOnSignals((signal) => downloadDataset(name, { dataDir, signal }));
    say(`dataset ${name}: ${r.alreadyPresent ? "present" : "downloaded"} in ${dataDir}`);
  }
  if (runtime.download) comm.barrier(); // the other ranks read what rank 0 fetched
  const source = resolveData(name, runtime.data);
  if (source.kind === "folder" && !runtime.presetGiven) {
    preset = "image-folder";
    say(`preset image-folder: '${source.root}' holds images (--preset picks another recipe)`);
  }
  const built = resumed
    ? { config: resumed.config, explicit: new Set<string>() }
    : await buildTrainConfig(parsed, preset, false);
  let config = built.config;
  const notes: string[] = [];
  const opened: ImageDataset[] = [];
  let full: ImageDataset;
  let knnData: KnnData | undefined;
  if (source.kind === "folder") {
    const prepared = resumed
      ? { config, channels: config.model.inChannels as 1 | 3, notes: [] }
      : prepareFolderConfig(source, config, built.explicit, runtime.given);
    config = prepared.config;
    notes.push(...prepared.notes);
    const fd = openFolder(source, { size: config.image.size, channels: prepared.channels });
    opened.push(fd.pretrain);
    if (fd.test && fd.test !== fd.pretrain) opened.push(fd.test);
    full = fd.pretrain;
    if (config.knnEvery > 0 && fd.train && fd.test) knnData = { train: fd.train, test: fd.test };
  } else {
    config = validateConfig(config);
    full = await openBuiltin(source, { split: "pretrain", imageSize: config.image.size });
    opened.push(full);
    if (config.knnEvery > 0) {
      const train = await openBuiltin(source, { split: "train", imageSize: config.image.size });
      opened.push(train);
      const test = await openBuiltin(source, { split: "test", imageSize: config.image.size });
      opened.push(test);
      knnData = { train, test };
    }
  }
  const limit = runtime.limit;
  const dataset = limit ? firstImages(full, limit) : full;
  if (knnData && limit) {
    knnData = { train: firstImages(knnData.train, limit), test: firstImages(knnData.test, limit) };
  }
  if (dataset.channels !== config.model.inChannels) {
    throw new Error(
      `Cannot train preset ${preset} on '${dataset.name}': its images have ${dataset.channels} channel(s), the network takes ${config.model.inChannels}`,
    );
  }
  const lr = effectiveLr(config);
  const spe = Math.floor(dataset.length / config.batchSize);
  if (spe === 0) {
    throw new UsageError(
      `Cannot train on '${dataset.name}': ${
        plural(dataset.length, "image")
      } make no full batch of ${config.batchSize} (lower --batch-size)`,
    );
  }
  // Each rank of a machine gets its share of the cores, and its own GPU.
  const cores = navigator.hardwareConcurrency || 1;
  const threads = runtime.threads ??
    (comm.localSize > 1 ? Math.max(1, Math.floor(cores / comm.localSize)) : undefined);
  const backend = createBackend(runtime.device, {
    threads,
    cuda: { device: comm.localRank },
    quiet: comm.rank !== 0,
  });
  const ctx = createContext(backend);
  // NCCL on the cuda backend, host collectives otherwise (every rank makes the same kind).
  const deviceComm = comm.size > 1 ? createDeviceComm(comm, backend) : undefined;
  for (
    const line of runHeader({
      preset,
      config,
      dataset,
      where: source.kind === "builtin" ? source.where : source.root,
      backend,
      stepsPerEpoch: spe,
      warmupSteps: warmupStepsOf(config, spe),
      maxSteps: runtime.maxSteps,
      lr,
      out: runtime.out,
      knn: knnData,
    })
  ) say(line);
  if (config.ressl.queueSize > dataset.length) {
    notes.push(
      `note: the queue holds ${config.ressl.queueSize} keys, more than the ${dataset.length} images: ` +
        `it repeats images (a smaller ressl.queueSize, a multiple of the batch, suits a small folder)`,
    );
  }
  if (comm.size > 1) {
    say(
      `${comm.size} processes (${
        comm.description.split(" rank ")[0]
      }; device collectives ${deviceComm?.kind}): ${
        config.batchSize / comm.size
      } images each per step of ${config.batchSize}`,
    );
  }
  for (const n of notes) say(n);
  const stop = { requested: false };
  const onSignal = () => {
    if (stop.requested) Deno.exit(130);
    stop.requested = true;
    if (comm.rank === 0) {
      console.error(
        "\nstop requested: writing a checkpoint at the current step (again to quit now)",
      );
    }
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
      progress: comm.rank === 0
        ? new Progress({ interactive: Deno.stdout.isTerminal() && !runtime.plain })
        : undefined,
      parallel: deviceComm ? { comm: deviceComm } : undefined,
      stop,
      initialize: runtime.init ? (state) => loadBackboneInit(ctx, state, runtime.init!) : undefined,
      runInfo: {
        init: runtime.init,
        preset,
        backend: backend.name,
        versions: backend.versions,
        deno: Deno.version.deno,
        args,
        processes: comm.size,
        data: source.kind === "builtin"
          ? { kind: "builtin", name: source.name, root: source.where, given: runtime.data }
          : {
            kind: "folder",
            root: source.root,
            test: source.testDir ?? "held out",
            given: runtime.data,
          },
        limit: runtime.limit,
        dataset: dataset.name,
        images: dataset.length,
        effectiveLr: lr,
      },
    });
    if (comm.rank !== 0) return 0;
    console.log(
      `${result.stoppedBy === "signal" ? "stopped" : "done"}: ${result.steps} steps ` +
        `(${result.stepsThisRun} in ${result.wallSeconds.toFixed(1)} s, of which training ` +
        `${result.trainSeconds.toFixed(1)} s at ${result.imagesPerSecond.toFixed(1)} images/s), ` +
        `final loss ${result.finalLoss.toFixed(4)}` +
        (result.lastCheckpoint ? `, checkpoint ${result.lastCheckpoint}` : ""),
    );
    const knn = readMetrics(`${runtime.out}/metrics.jsonl`).filter((r) => r.knnTop1 !== undefined)
      .at(-1);
    if (knn && knnData) {
      console.log(
        `kNN top-1 ${(knn.knnTop1 as number).toFixed(2)}% (top-5 ${
          (knn.knnTop5 as number).toFixed(2)
        }%) on ${knnData.test.length} test images of ${knnData.test.name}, after epoch ${
          knn.epoch + 1
        }`,
      );
    }
    try {
      console.log("drawing the training curves ...");
      const plots = await plotRun(runtime.out);
      console.log(`training curves: ${[...plots.png, ...plots.svg].join(", ")}`);
    } catch (e) {
      console.error(`warning: cannot plot the training curves: ${(e as Error).message}`);
    }
    return 0;
  } catch (e) {
    if (e instanceof NonFiniteLossError) {
      if (comm.rank === 0) console.error(`\n${e.message}`);
      return 3;
    }
    throw e;
  } finally {
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
    for (const ds of opened) ds.close();
    deviceComm?.dispose();
    backend.dispose();
  }
}

if (import.meta.main) await runCommand(main);
