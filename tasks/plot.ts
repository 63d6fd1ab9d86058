/**
 * `deno task plot <run-dir>`: draws the training curves of a run folder (`curves.svg`,
 * `curves.png` from its `metrics.jsonl`) and, with `--map`, the t-SNE map of a checkpoint's backbone
 * features of the first N test images coloured by class (`embedding-map.svg`, `embedding-map.png`).
 * Exit status: 0 done, 1 error (unreadable log, checkpoint or data), 2 bad command line.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { createBackend } from "../src/backend/select.ts";
import { listCheckpoints } from "../src/io/checkpoint.ts";
import { checkpointEmbeddingMap } from "../src/plot/checkpoint_map.ts";
import { plotRun } from "../src/plot/curves.ts";
import { createContext } from "../src/tensor/mod.ts";
import {
  checkInputFile,
  choiceFlag,
  DEVICES,
  intFlag,
  positiveFlag,
  runCommand,
  UsageError,
} from "./cli_util.ts";

const USAGE = `Usage: deno task plot <run-dir> [--map [options]]

Draws the training curves of a run folder: loss per step (interval mean and last step), learning
rate per step, kNN top-1/top-5 per epoch when logged; written as curves.svg and curves.png there.

Options:
  --map                  also draw a t-SNE map of a checkpoint's backbone features of the first
                         test images, coloured by class (embedding-map.svg / .png in the run folder)
  --no-curves            skip the curves (with --map: only the map)
  --checkpoint <file>    checkpoint of the map (default: the newest in the run folder)
  --data <dir>           dataset folder (default: data; Fashion-MNIST also from Debian's copy)
  --preset <name>        draw this dataset preset's test images instead of the checkpoint's
  --points <n>           test images in the map (default 2000; exact t-SNE is O(n^2))
  --network <n>          student (default) | teacher
  --perplexity <x>       t-SNE perplexity (default 30)
  --iterations <n>       t-SNE iterations (default 1000)
  --seed <n>             t-SNE initialisation seed (default 0)
  --device <d>           auto | cpu | cuda | reference (default auto)
  --threads <n>          CPU threads of the oneDNN backend
  --scale <x>            PNG pixels per SVG unit (default 2)
  --help                 this text
`;

function parse(args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        map: { type: "boolean" },
        "no-curves": { type: "boolean" },
        checkpoint: { type: "string" },
        data: { type: "string" },
        preset: { type: "string" },
        points: { type: "string" },
        network: { type: "string" },
        perplexity: { type: "string" },
        iterations: { type: "string" },
        seed: { type: "string" },
        device: { type: "string" },
        threads: { type: "string" },
        scale: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    throw new UsageError(`Invalid command line: ${(e as Error).message} (see --help)`);
  }
  const v = parsed.values;
  if (v.help) return null;
  if (parsed.positionals.length !== 1) {
    throw new UsageError(
      `Invalid command line: expected one run folder, got ${parsed.positionals.length} (see --help)`,
    );
  }
  const map = v.map === true;
  const mapOnly = ["checkpoint", "preset", "points", "network", "perplexity", "iterations", "seed"]
    .filter((k) => (v as Record<string, unknown>)[k] !== undefined);
  if (!map && mapOnly.length > 0) {
    throw new UsageError(`Invalid flag --${mapOnly[0]}: it applies to --map only`);
  }
  if (v["no-curves"] && !map) {
    throw new UsageError("Invalid flag --no-curves: there is nothing to draw without --map");
  }
  return {
    runDir: parsed.positionals[0],
    curves: v["no-curves"] !== true,
    map,
    checkpoint: v.checkpoint,
    dataDir: v.data ?? "data",
    preset: v.preset,
    points: intFlag("points", v.points, 2) ?? 2000,
    network: choiceFlag("network", v.network, ["student", "teacher"] as const, "student"),
    perplexity: positiveFlag("perplexity", v.perplexity),
    iterations: intFlag("iterations", v.iterations, 1),
    seed: intFlag("seed", v.seed, 0) ?? 0,
    device: choiceFlag("device", v.device, DEVICES, "auto"),
    threads: intFlag("threads", v.threads, 1),
    scale: positiveFlag("scale", v.scale) ?? 2,
  };
}

async function main(args: string[]): Promise<number> {
  const o = parse(args);
  if (o === null) {
    console.log(USAGE);
    return 0;
  }
  let info;
  try {
    info = await Deno.stat(o.runDir);
  } catch {
    throw new Error(`Cannot plot run '${o.runDir}': no such folder`);
  }
  if (!info.isDirectory) throw new Error(`Cannot plot run '${o.runDir}': not a folder`);
  let checkpoint: string | undefined;
  if (o.map) {
    checkpoint = o.checkpoint ?? listCheckpoints(o.runDir).at(-1);
    if (!checkpoint) {
      throw new Error(
        `Cannot draw the embedding map: '${o.runDir}' holds no checkpoint (give --checkpoint <file>)`,
      );
    }
    checkInputFile("checkpoint", checkpoint);
  }
  if (o.curves) {
    const out = await plotRun(o.runDir, { scale: o.scale });
    console.log(`curves: ${[...out.svg, ...out.png].join(", ")}`);
  }
  if (checkpoint) {
    const backend = createBackend(o.device, { threads: o.threads });
    try {
      const ctx = createContext(backend);
      const t0 = performance.now();
      const r = await checkpointEmbeddingMap(ctx, {
        checkpoint,
        dataDir: o.dataDir,
        preset: o.preset,
        points: o.points,
        network: o.network,
        perplexity: o.perplexity,
        iterations: o.iterations,
        seed: o.seed,
        scale: o.scale,
        out: [join(o.runDir, "embedding-map.svg"), join(o.runDir, "embedding-map.png")],
        onStatus: (line) => console.log(`map: ${line} (backend ${backend.name})`),
      });
      console.log(
        `map: ${r.points} points of ${r.dataset} at step ${r.step}, KL ${r.kl.toFixed(3)}, ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s: ${[...r.svg, ...r.png].join(", ")}`,
      );
    } finally {
      backend.dispose();
    }
  }
  return 0;
}

if (import.meta.main) await runCommand(main);
