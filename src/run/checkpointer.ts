/**
 * The checkpoint side of a run folder: which checkpoint a resume starts from and whether it
 * belongs to this run (same configuration, same number of images), the refusal to start a fresh
 * run over old checkpoints and to resume an older checkpoint over newer ones (checkpoints are
 * never lost: continue the newest, or branch into a new folder), when an epoch is due a
 * checkpoint, and writing one (atomically, keeping the newest `config.checkpoint.keep`, never the
 * one just written). A state holding NaN or an infinity is never written: the run stops with a
 * {@link NonFiniteLossError} naming the last good checkpoint.
 *
 * Its state is explicit: the run folder, the run's facts, and the last checkpoint written. Every
 * file operation of the run's checkpoints goes through here; the run folder's lock
 * (`run_folder.ts`) is taken before this object touches anything.
 *
 * @module
 */

import { realpathSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import {
  checkpointName,
  checkpointStep,
  listCheckpoints,
  NonFiniteTensorError,
  pruneCheckpoints,
} from "../io/checkpoint.ts";
import {
  type CheckpointRunInfo,
  loadTrainState,
  openTrainCheckpoint,
  saveTrainCheckpoint,
} from "../ressl/checkpoint.ts";
import type { TrainConfig } from "../ressl/config.ts";
import type { TrainState } from "../ressl/step.ts";
import type { Context } from "../tensor/mod.ts";
import { NonFiniteLossError } from "./non_finite.ts";

/** Options of {@link Checkpointer}. */
export interface CheckpointerOptions {
  /** The run folder. */
  outDir: string;
  /** The run's configuration (checkpoint frequency and count; compared on resume). */
  config: TrainConfig;
  /** The pretraining dataset: its name and number of images (compared on resume). */
  dataset: { name: string; length: number };
}

/** A checkpoint written by this run. */
export interface WrittenCheckpoint {
  /** Its file. */
  path: string;
  /** The step it holds. */
  step: number;
}

/** Writes and finds the checkpoints of one run folder; see the module doc. */
export class Checkpointer {
  /** The run folder. */
  readonly outDir: string;
  #config: TrainConfig;
  #dataset: { name: string; length: number };
  #last: WrittenCheckpoint | undefined;

  /** A checkpointer of the run folder `options.outDir` (nothing is read or written yet). */
  constructor(options: CheckpointerOptions) {
    this.outDir = options.outDir;
    this.#config = options.config;
    this.#dataset = options.dataset;
  }

  /** The newest checkpoint this object wrote, if any. */
  get last(): WrittenCheckpoint | undefined {
    return this.#last;
  }

  /** Throws when the run folder already holds checkpoints (a fresh run would mix with them). */
  assertFresh(): void {
    if (listCheckpoints(this.outDir).length > 0) {
      throw new Error(
        `Cannot start a new run in '${this.outDir}': it already holds checkpoints (use --resume to continue it, or another --out)`,
      );
    }
  }

  /**
   * Loads the state to resume from: `resume` (a checkpoint path), or with "" the newest checkpoint
   * of the run folder. Throws when there is none, when the checkpoint's configuration or number of
   * images differ from this run's, or when continuing it here would lose checkpoints (see
   * {@link Checkpointer.assertResumable}).
   */
  async resume(ctx: Context, resume: string): Promise<{ path: string; state: TrainState }> {
    const path = resume !== "" ? resume : listCheckpoints(this.outDir).at(-1);
    if (!path) {
      throw new Error(`Cannot resume: '${this.outDir}' holds no checkpoint (run without --resume)`);
    }
    const ckpt = await openTrainCheckpoint(path);
    const { meta } = ckpt;
    const diff = configDiff(meta.config, this.#config);
    if (diff) {
      throw new Error(
        `Cannot resume from '${path}': its configuration differs at '${diff}' (checkpoint: ${
          JSON.stringify(lookup(meta.config, diff))
        }, now: ${JSON.stringify(lookup(this.#config, diff))}); resume with the same flags`,
      );
    }
    if (meta.images !== this.#dataset.length) {
      throw new Error(
        `Cannot resume from '${path}': it was trained on ${meta.images} images, the dataset now has ${this.#dataset.length}`,
      );
    }
    this.assertResumable(path, meta.step);
    const state = loadTrainState(ctx, ckpt);
    if (sameFolder(dirname(path), this.outDir)) this.#last = { path, step: meta.step };
    return { path, state };
  }

  /**
   * Throws unless resuming checkpoint `path` (holding step `step`) in this run folder loses
   * nothing. A checkpoint of this folder must be its newest: continuing an older one would
   * overwrite the newer ones' steps, prune them as "old" by their higher step, and cut the metrics
   * back. A checkpoint of another folder starts a branch, which needs a folder without
   * checkpoints. Both refusals say how to branch instead.
   */
  assertResumable(path: string, step: number): void {
    const here = listCheckpoints(this.outDir);
    if (sameFolder(dirname(path), this.outDir)) {
      const newer = here.map((p) => checkpointStep(p)!).filter((s) => s > step);
      if (newer.length === 0) return;
      throw new Error(
        `Cannot resume from '${path}' (step ${step}): run folder '${this.outDir}' holds newer ` +
          `checkpoints (step ${newer.join(", ")}), which continuing this one there would ` +
          `overwrite and prune; resume the newest (--resume ${this.outDir}), or branch from this ` +
          `one into a new folder (--resume ${path} --out <new folder>); if the newer ones are ` +
          `damaged and cannot be resumed, move them out of the folder first`,
      );
    }
    if (here.length === 0) return;
    throw new Error(
      `Cannot resume from '${path}' into run folder '${this.outDir}': that folder holds the ` +
        `checkpoints of another run (newest step ${checkpointStep(here.at(-1)!)}); branch into a ` +
        `folder without checkpoints (--out <new folder>), or resume that folder's own run ` +
        `(--resume ${this.outDir})`,
    );
  }
  /** Whether the end of epoch `epoch` (from 0) is due a checkpoint. */
  dueAfterEpoch(epoch: number): boolean {
    const c = this.#config;
    return (epoch + 1) % c.checkpoint.every === 0 || epoch + 1 === c.epochs;
  }

  /** Whether the last checkpoint written holds step `step`. */
  holds(step: number): boolean {
    return this.#last?.step === step;
  }

  /**
   * Writes the checkpoint of `state` (closing epoch `epoch`, or falling in it) and prunes old ones.
   * Throws a {@link NonFiniteLossError} when a tensor of the state is NaN or infinite.
   */
  async save(state: TrainState, epoch: number): Promise<WrittenCheckpoint> {
    const path = join(this.outDir, checkpointName(state.step));
    const run: CheckpointRunInfo = { epoch, config: this.#config, dataset: this.#dataset };
    try {
      await saveTrainCheckpoint(path, state, run);
    } catch (e) {
      if (!(e instanceof NonFiniteTensorError)) throw e;
      throw new NonFiniteLossError(
        `'${e.tensor}' became NaN or infinite by step ${state.step}`,
        this.#last?.path,
      );
    }
    pruneCheckpoints(this.outDir, this.#config.checkpoint.keep, { protect: path });
    this.#last = { path, step: state.step };
    return this.#last;
  }
}

/** The first path (dotted) where two JSON values differ, or undefined when equal. */
function configDiff(a: unknown, b: unknown, path = ""): string | undefined {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) {
    return JSON.stringify(a) === JSON.stringify(b) ? undefined : path || "<root>";
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    const d = configDiff(
      (a as Record<string, unknown>)[k],
      (b as Record<string, unknown>)[k],
      path ? `${path}.${k}` : k,
    );
    if (d) return d;
  }
  return undefined;
}

function lookup(obj: unknown, path: string): unknown {
  return path.split(".").reduce<unknown>(
    (o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined),
    obj,
  );
}

/** Whether two paths name the same folder (symbolic links and `..` resolved where they exist). */
export function sameFolder(a: string, b: string): boolean {
  const real = (p: string) => {
    try {
      return realpathSync(p);
    } catch {
      return resolve(p);
    }
  };
  return real(a) === real(b);
}
