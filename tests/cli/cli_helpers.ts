/**
 * Helpers of the command-line tests: run a task with exactly the permissions its `deno.json` task
 * declares (so the tests also prove those permissions suffice), check a failure the way a user
 * sees it (exit code, key words, no stack trace, nothing left behind), and write small image
 * folders and IDX files.
 */
import assert from "node:assert/strict";
import { PNG } from "pngjs";
import type { Buffer } from "node:buffer";
import { RandomStream, rngKey } from "../../src/random/philox.ts";

/** The repository root. */
export const ROOT = new URL("../../", import.meta.url).pathname;

/** Whether oneDNN is installed (else the tests run on the reference backend). */
export const DNNL = ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/libdnnl.so.2"].some(
  (p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  },
);

/** `--device` of the tests' runs. */
export const DEVICE = DNNL ? "cpu" : "reference";

/** The `deno run` permission flags and script of a task in deno.json. */
export function taskCommand(task: string): { flags: string[]; script: string } {
  const config = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`));
  const t = config.tasks[task];
  const command: string = typeof t === "string" ? t : t.command;
  const words = command.split(/\s+/);
  assert.equal(words[0], "deno");
  assert.equal(words[1], "run");
  return { flags: words.slice(2, -1), script: words.at(-1)! };
}

/** What a run printed and returned. */
export interface RunResult {
  code: number;
  /** stdout + stderr. */
  text: string;
  stdout: string;
}

/** Runs `deno task <task> ...args` as deno.json declares it (its permissions), from the repo. */
export async function runTask(task: string, args: string[]): Promise<RunResult> {
  const { flags, script } = taskCommand(task);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...flags, `${ROOT}/${script}`, ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const d = new TextDecoder();
  const stdout = d.decode(out.stdout);
  return { code: out.code, text: stdout + d.decode(out.stderr), stdout };
}

/** Every path under `dir` (relative, sorted; folders end in `/`); [] when it does not exist. */
export function listTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(d)];
    } catch {
      return;
    }
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory) {
        out.push(`${r}/`);
        walk(`${d}/${e.name}`, r);
      } else out.push(r);
    }
  };
  walk(dir, "");
  return out.sort();
}

/**
 * Runs a task that must fail: its exit code, every key word, no stack trace, and `dir` holding
 * exactly what it held before (no partial output).
 */
export async function expectFailure(
  task: string,
  args: string[],
  code: number,
  keywords: RegExp[],
  dir: string,
): Promise<RunResult> {
  const before = listTree(dir);
  const r = await runTask(task, args);
  assert.equal(r.code, code, `${task} ${args.join(" ")}: exit ${r.code}\n${r.text}`);
  for (const k of keywords) assert.match(r.text, k, `${task} ${args.join(" ")}`);
  assert.doesNotMatch(r.text, /^\s+at .*:\d+:\d+\)?$/m, `a stack trace:\n${r.text}`);
  assert.deepEqual(listTree(dir), before, `${task} ${args.join(" ")} left files behind`);
  return r;
}

/** A PNG of `width` x `height` RGB pixels drawn by `pixel(x, y, channel)`. */
export function pngBytes(
  width: number,
  height: number,
  pixel: (x: number, y: number, c: number) => number,
): Uint8Array {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let c = 0; c < 4; c++) {
        png.data[(y * width + x) * 4 + c] = c === 3 ? 255 : pixel(x, y, c);
      }
    }
  }
  return new Uint8Array(PNG.sync.write(png) as Buffer);
}

/**
 * Writes `n` PNGs of `size` x `size` into `dir`: class-like images (a bright square on the left
 * for `kind` 0, on the right for 1) with noise from `seed`.
 */
export function writeClassPngs(dir: string, n: number, kind: number, seed: number, size = 16) {
  Deno.mkdirSync(dir, { recursive: true });
  const rng = new RandomStream(rngKey(seed));
  for (let i = 0; i < n; i++) {
    const bytes = pngBytes(size, size, (x, y, c) => {
      const inside = y > size / 4 && y < (3 * size) / 4 &&
        (kind === 0 ? x < size / 2 : x >= size / 2);
      return Math.min(255, (inside ? 170 : 30) + c * 10 + rng.int(60));
    });
    Deno.writeFileSync(`${dir}/img${String(i).padStart(3, "0")}.png`, bytes);
  }
}

/** Writes an IDX file (u8, big-endian dimensions). */
export function writeIdx(path: string, dims: number[], data: Uint8Array): void {
  const header = new Uint8Array(4 + 4 * dims.length);
  const view = new DataView(header.buffer);
  view.setUint8(2, 0x08);
  view.setUint8(3, dims.length);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  Deno.writeFileSync(path, out);
}

/** Writes Fashion-MNIST's four files (uncompressed) with `train` and `test` random images. */
export function writeFashionMnist(dir: string, train: number, test: number, seed = 0): void {
  Deno.mkdirSync(dir, { recursive: true });
  const rng = new RandomStream(rngKey(seed));
  for (const [prefix, n] of [["train", train], ["t10k", test]] as const) {
    const images = Uint8Array.from({ length: n * 28 * 28 }, () => rng.int(256));
    const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
    writeIdx(`${dir}/${prefix}-images-idx3-ubyte`, [n, 28, 28], images);
    writeIdx(`${dir}/${prefix}-labels-idx1-ubyte`, [n], labels);
  }
}

/** A `--config` file of a tiny network (width set by --width): small head and queue. */
export function writeTinyConfig(path: string, extra: Record<string, unknown> = {}): string {
  Deno.writeTextFileSync(
    path,
    JSON.stringify({ head: { hidden: 32, out: 16 }, ressl: { queueSize: 64 }, ...extra }),
  );
  return path;
}
