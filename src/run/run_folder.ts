/**
 * Claiming a run folder before a trainer touches it: take its lock ({@link RunLock}; a second
 * trainer is refused naming the first), then remove what a killed trainer of this folder left
 * half-written: the temporaries of atomic writes of its checkpoints, `metrics.jsonl` (and its
 * damaged lines' side file) and `config.json` (`.checkpoint-000000012.safetensors.<digits>.tmp`). Only those names are removed,
 * and only under the lock, so no live writer can own them; other temporaries (a `plot` or `eval`
 * writing into the folder) are left alone.
 *
 * @module
 */

import { removeStaleTemporaries } from "../io/atomic.ts";
import { isCheckpointName } from "../io/checkpoint.ts";
import { describeHolder, RunLock, type RunLockHolder } from "./run_lock.ts";

/** Files of a run folder only its (locked) trainer writes. */
const TRAINER_FILES = new Set(["metrics.jsonl", "config.json", "metrics.damaged.jsonl"]);

/** Whether `name` is a file only the trainer of a run folder writes. */
export function isTrainerFile(name: string): boolean {
  return TRAINER_FILES.has(name) || isCheckpointName(name);
}

/** A claimed run folder: its lock, and what the claim cleaned. Release it when the run ends. */
export interface RunFolderClaim {
  /** The run folder. */
  dir: string;
  /** The lock (held until {@link RunFolderClaim.release}). */
  lock: RunLock;
  /** Temporaries of interrupted writes that were removed (file names). */
  removedTemporaries: string[];
  /** The previous holder, when it ended without releasing the lock (killed). */
  staleHolder?: RunLockHolder;
  /** What to tell the user about the claim (stale lock, removed temporaries); may be empty. */
  messages: string[];
  /** Releases the lock. */
  release(): void;
}

/**
 * Locks run folder `dir` (creating it) and removes the stale temporaries of its trainer files.
 * Throws a `RunFolderBusyError` when another trainer holds the folder; nothing is changed then.
 */
export async function claimRunFolder(dir: string): Promise<RunFolderClaim> {
  const lock = await RunLock.acquire(dir);
  let removed: string[];
  try {
    removed = removeStaleTemporaries(dir, isTrainerFile);
  } catch (e) {
    lock.release();
    throw e;
  }
  const messages: string[] = [];
  if (lock.stale) {
    messages.push(
      `run folder ${dir}: its previous trainer (${describeHolder(lock.stale)}) ended without ` +
        "releasing it (killed?)",
    );
  }
  if (removed.length > 0) {
    messages.push(
      `run folder ${dir}: removed ${removed.length} temporary file(s) of an interrupted write: ${
        removed.join(", ")
      }`,
    );
  }
  return {
    dir,
    lock,
    removedTemporaries: removed,
    staleHolder: lock.stale,
    messages,
    release: () => lock.release(),
  };
}
