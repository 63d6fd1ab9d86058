/**
 * Issue 14's command-line limits, through the tasks as deno.json runs them: `--threads` and
 * `--workers` beyond the machine's cores are refused naming the flag and the limit (they used to
 * start 10,004 threads and hang); an `--out` that is a file, a folder where a file is expected, a
 * read-only place, or the input checkpoint itself is refused before any work (eval and embed used
 * to lose their work at the end; embed could overwrite its own checkpoint). Each case: the exit
 * code, key words, no stack trace, nothing left behind.
 */
import assert from "node:assert/strict";
import { cores } from "../../tasks/cli_flags.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import { DEVICE, expectFailure } from "./cli_helpers.ts";

const dir = await Deno.makeTempDir({ prefix: "ressl_limits_" });
const ckpt = `${dir}/ckpt.safetensors`;
await writeFixtureCheckpoint(ckpt);
const n = cores();
const tooMany = String(n * 5000);
const limit = new RegExp(`more than the ${n} cores? of this machine \\(at most ${n}\\)`);

/**
 * A folder where nothing can be created: mode 555 for a user, a read-only tmpfs for root (who
 * ignores modes); undefined (those cases skipped) where neither can be made.
 */
async function readOnlyDir(): Promise<string | undefined> {
  const ro = `${dir}/read-only`;
  await Deno.mkdir(ro);
  if (Deno.uid() !== 0) {
    await Deno.chmod(ro, 0o555);
  } else {
    const r = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", ro],
      stderr: "null",
    }).output().catch(() => undefined);
    if (!r?.success) return undefined;
  }
  try {
    Deno.writeTextFileSync(`${ro}/probe`, "x");
    return undefined; // writable after all
  } catch {
    return ro;
  }
}
const readOnly = await readOnlyDir();
if (!readOnly) console.error("read-only --out cases skipped: cannot make a read-only folder here");

Deno.test("--threads beyond the cores is refused by every task that computes; so is --workers", async () => {
  const evalArgs = ["--checkpoint", ckpt, "--protocol", "knn"];
  const embedArgs = ["--checkpoint", ckpt, "--out", `${dir}/e.safetensors`];
  for (
    const [task, args] of [
      ["train", ["--out", `${dir}/run`]],
      ["eval", evalArgs],
      ["embed", embedArgs],
      ["plot", [dir, "--map"]],
    ] as const
  ) {
    await expectFailure(task, [...args, "--threads", tooMany], 2, [/--threads/, limit], dir);
  }
  await expectFailure("train", ["--workers", tooMany, "--out", `${dir}/run`], 2, [
    /--workers/,
    limit,
  ], dir);
  await expectFailure("train", ["--threads", "0"], 2, [/--threads: expected an integer >= 1/], dir);
});

Deno.test("train --out: a file, or a read-only place, is refused before any data is read", async () => {
  const file = `${dir}/a-file`;
  await Deno.writeTextFile(file, "not a folder");
  const r = await expectFailure("train", ["--out", file], 2, [/--out/, /is a file/], dir);
  assert.doesNotMatch(r.text, /ReSSL /, "the run must not have started");
  await expectFailure("train", ["--out", `${file}/run`], 2, [/--out/, /a-file' is a file/], dir);
  if (readOnly) {
    const r2 = await expectFailure("train", ["--out", `${readOnly}/ressl-run`], 2, [
      /--out/,
      /not writable/,
    ], dir);
    assert.doesNotMatch(r2.text, /ReSSL /);
  }
});

Deno.test("eval / embed / export --out: checked before loading anything; never the input checkpoint", async () => {
  const before = await Deno.readFile(ckpt);
  // A garbage checkpoint: were --out checked after loading, the error would be about it (exit 1).
  const garbage = `${dir}/garbage.safetensors`;
  await Deno.writeTextFile(garbage, "garbage");
  const device = ["--device", DEVICE];
  for (
    const [task, args] of [
      ["eval", ["--protocol", "knn", ...device]],
      ["embed", [...device]],
      ["export", []],
    ] as const
  ) {
    await expectFailure(task, ["--checkpoint", garbage, ...args, "--out", dir], 2, [
      /--out/,
      /is a folder, expected a file name/,
    ], dir);
    await expectFailure(task, ["--checkpoint", garbage, ...args, "--out", `${dir}/no/x`], 2, [
      /--out/,
      /does not exist/,
    ], dir);
    if (readOnly) {
      await expectFailure(task, ["--checkpoint", garbage, ...args, "--out", `${readOnly}/x`], 2, [
        /--out/,
        /not writable/,
      ], dir);
    }
    await expectFailure(task, ["--checkpoint", ckpt, ...args, "--out", ckpt], 2, [
      /--out/,
      /is the --checkpoint file; writing it would overwrite the input/,
    ], dir);
  }
  await expectFailure("embed", ["--checkpoint", ckpt, "--out", `${dir}/e.st`, "--npy", ckpt], 2, [
    /--npy/,
    /overwrite the input/,
  ], dir);
  assert.deepEqual(await Deno.readFile(ckpt), before, "the checkpoint must be untouched");
});

globalThis.addEventListener("unload", () => {
  try {
    if (readOnly && Deno.uid() === 0) new Deno.Command("umount", { args: [readOnly] }).outputSync();
    if (readOnly) Deno.chmodSync(readOnly, 0o755);
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
