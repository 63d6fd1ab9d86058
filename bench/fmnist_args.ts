/**
 * Command line of `deno task bench:fmnist`: the options, the usage text and the parser.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";

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
