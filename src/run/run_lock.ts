/**
 * The exclusive lock of a run folder: one trainer at a time writes its checkpoints, its
 * `metrics.jsonl` and its `config.json`. A second trainer on the same folder is refused with a
 * {@link RunFolderBusyError} naming the holder (pid, host, start time).
 *
 * The lock is an advisory OS lock (`flock`, through `Deno.FsFile.tryLock`) on the file
 * {@link RUN_LOCK_NAME} in the folder, so it dies with its process: a trainer killed with
 * `kill -9` leaves no lock behind, only the file with its last holder's details, which the next
 * trainer reports as `stale` (and then overwrites). The holder's details are written into the file
 * for messages only; whether the folder is taken is what the OS says, never a guess from a pid.
 * On release the file is removed (and the folder too when the lock created it and it stayed
 * empty, so a refused run leaves nothing behind). A trainer that opened the file just before it
 * was removed notices that the file it locked is no longer the folder's and tries again.
 *
 * @module
 */

import { existsSync, statSync } from "node:fs";
import { basename, join } from "node:path";

/** Name of the lock file inside a run folder. */
export const RUN_LOCK_NAME = ".ressl-run.lock";

/** Who holds (or last held) a run folder. */
export interface RunLockHolder {
  /** Process id. */
  pid: number;
  /** Host name of the machine it runs on ("unknown" when it could not be read). */
  hostname: string;
  /** When it took the lock (ISO 8601). */
  started: string;
  /** Its command line (script and arguments), shortened. */
  command: string;
}

/** The run folder is locked by another live trainer. */
export class RunFolderBusyError extends Error {
  /** `holder` is what the lock file says (undefined when it says nothing readable yet). */
  constructor(
    /** The run folder. */
    readonly dir: string,
    /** The trainer holding it, as its lock file says. */
    readonly holder: RunLockHolder | undefined,
  ) {
    super(
      `Cannot use run folder '${dir}': another trainer is using it (${describeHolder(holder)}); ` +
        "wait for it to end or stop it, or use another run folder (--out)",
    );
    this.name = "RunFolderBusyError";
  }
}

/** `pid 123 on host h, started 2024-...` (or what is known of it). */
export function describeHolder(holder: RunLockHolder | undefined): string {
  if (!holder) return "pid unknown: its lock file is still empty";
  return `pid ${holder.pid} on host ${holder.hostname}, started ${holder.started}` +
    (holder.command ? `: ${holder.command}` : "");
}

/** Options of {@link RunLock.acquire}. */
export interface RunLockOptions {
  /** Create the folder when missing (default true). */
  create?: boolean;
}

/** A held run-folder lock; see the module doc. Release it with {@link RunLock.release}. */
export class RunLock {
  /** The run folder. */
  readonly dir: string;
  /** The lock file. */
  readonly path: string;
  /** The holder that ended without releasing the lock (killed), when its file was left. */
  readonly stale: RunLockHolder | undefined;
  #file: Deno.FsFile | undefined;
  #createdDir: boolean;

  private constructor(
    dir: string,
    file: Deno.FsFile,
    stale: RunLockHolder | undefined,
    createdDir: boolean,
  ) {
    this.dir = dir;
    this.path = join(dir, RUN_LOCK_NAME);
    this.#file = file;
    this.stale = stale;
    this.#createdDir = createdDir;
  }

  /**
   * Takes the lock of run folder `dir` (creating the folder unless `create` is false). Throws a
   * {@link RunFolderBusyError} when another process holds it; never waits for it.
   */
  static async acquire(dir: string, options: RunLockOptions = {}): Promise<RunLock> {
    let createdDir = false;
    if (existsSync(dir) && !statSync(dir).isDirectory()) {
      throw new Error(`Cannot use run folder '${dir}': it is a file, not a folder`);
    }
    if (!existsSync(dir)) {
      if (options.create === false) {
        throw new Error(`Cannot lock run folder '${dir}': no such folder`);
      }
      await Deno.mkdir(dir, { recursive: true });
      createdDir = true;
    }
    const path = join(dir, RUN_LOCK_NAME);
    for (let attempt = 0; attempt < 10; attempt++) {
      let file: Deno.FsFile;
      try {
        file = await Deno.open(path, { read: true, write: true, create: true });
      } catch (e) {
        throw new Error(`Cannot lock run folder '${dir}': ${(e as Error).message}`, { cause: e });
      }
      let locked: boolean;
      try {
        locked = await file.tryLock(true);
      } catch (e) {
        file.close();
        throw new Error(
          `Cannot lock run folder '${dir}': ${
            (e as Error).message
          } (does its file system support locks?)`,
          { cause: e },
        );
      }
      if (!locked) {
        const holder = await readHolderSoon(file);
        file.close();
        throw new RunFolderBusyError(dir, holder);
      }
      if (!(await isFileAt(file, path))) {
        file.close(); // the previous holder removed it between our open and our lock
        continue;
      }
      const stale = parseHolder(await readAll(file));
      await writeHolder(file, currentHolder());
      return new RunLock(dir, file, stale, createdDir);
    }
    throw new Error(`Cannot lock run folder '${dir}': its lock file keeps being replaced`);
  }

  /** Whether the lock is still held by this object. */
  get held(): boolean {
    return this.#file !== undefined;
  }

  /**
   * Releases the lock: removes the lock file (and the folder, when the lock created it and it is
   * empty), then unlocks. Safe to call twice.
   */
  release(): void {
    const file = this.#file;
    if (!file) return;
    this.#file = undefined;
    try {
      Deno.removeSync(this.path);
      if (this.#createdDir) Deno.removeSync(this.dir); // fails (kept) unless empty
    } catch {
      // Already gone, or the folder holds the run's files: both are fine.
    } finally {
      file.close();
    }
  }

  /** Releases the lock (`using lock = await RunLock.acquire(dir)`). */
  [Symbol.dispose](): void {
    this.release();
  }
}

/** This process as a holder. */
function currentHolder(): RunLockHolder {
  let hostname = "unknown";
  try {
    hostname = Deno.hostname();
  } catch {
    // Without --allow-sys the host name stays unknown; the pid is what matters on one machine.
  }
  let script = "";
  try {
    script = basename(new URL(Deno.mainModule).pathname);
  } catch {
    // No main module (an embedding): the arguments alone.
  }
  const command = [script, ...Deno.args].join(" ").trim();
  return {
    pid: Deno.pid,
    hostname,
    started: new Date().toISOString(),
    command: command.length > 200 ? `${command.slice(0, 197)}...` : command,
  };
}

/** Whether the open `file` is still the one at `path` (same inode; assumed where unknown). */
async function isFileAt(file: Deno.FsFile, path: string): Promise<boolean> {
  let there: Deno.FileInfo;
  try {
    there = await Deno.stat(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
  const mine = await file.stat();
  if (mine.ino === null || there.ino === null) return true;
  return mine.ino === there.ino && mine.dev === there.dev;
}

async function readAll(file: Deno.FsFile): Promise<string> {
  await file.seek(0, Deno.SeekMode.Start);
  const chunks: Uint8Array[] = [];
  const buf = new Uint8Array(4096);
  let total = 0;
  for (;;) {
    const n = await file.read(buf);
    if (n === null || total > 65536) break;
    chunks.push(buf.slice(0, n));
    total += n;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}

async function writeHolder(file: Deno.FsFile, holder: RunLockHolder): Promise<void> {
  const bytes = new TextEncoder().encode(JSON.stringify(holder) + "\n");
  await file.truncate(0);
  await file.seek(0, Deno.SeekMode.Start);
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

/** The holder a lock file names, or undefined when it names none readable. */
function parseHolder(text: string): RunLockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<RunLockHolder> | null;
    if (v && typeof v === "object" && Number.isSafeInteger(v.pid)) {
      return {
        pid: v.pid!,
        hostname: String(v.hostname ?? "unknown"),
        started: String(v.started ?? "unknown"),
        command: String(v.command ?? ""),
      };
    }
  } catch {
    // Empty (its holder has not written it yet) or damaged: nothing to report.
  }
  return undefined;
}

/** The holder of a locked file; its holder writes it right after locking, so wait briefly. */
async function readHolderSoon(file: Deno.FsFile): Promise<RunLockHolder | undefined> {
  for (let i = 0; i < 20; i++) {
    const holder = parseHolder(await readAll(file));
    if (holder) return holder;
    await new Promise((r) => setTimeout(r, 10));
  }
  return undefined;
}
