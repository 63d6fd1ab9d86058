/**
 * `train --resume` through the command line, on the tiny data and fixture run folders of
 * tests/robustness/run_fixtures.ts, where it succeeds: the temporaries of a write cut by
 * `kill -9` are removed when the folder is next claimed (issue 14.8), damaged metrics lines do
 * not block a resume (14.9: a torn last line is dropped, a damaged one set aside), and an older
 * checkpoint branches into a new folder leaving its own folder untouched (14.2).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { listCheckpoints } from "../../src/io/checkpoint.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { RUN_LOCK_NAME } from "../../src/run/run_lock.ts";
import { checkpointAt, fixtureRunFlags, runFolderWith } from "../robustness/run_fixtures.ts";

const TRAIN = new URL("../../tasks/train.ts", import.meta.url).pathname;

async function train(cwd: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", TRAIN, ...args],
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

async function inTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "ressl_resume_cli_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const steps = (path: string) =>
  readMetrics(path).filter((r) => r.kind === "step").map((r) => r.step);

Deno.test("train: the temporary of a checkpoint write cut by kill -9 is removed on the next start", async () => {
  await inTemp(async (dir) => {
    await runFolderWith(dir, [7]);
    const run = join(dir, "run");
    const torn = ".checkpoint-000000014.safetensors.2841690213.tmp"; // as writeFileAtomic names it
    await Deno.writeFile(join(run, torn), new Uint8Array(100_000));
    await Deno.writeTextFile(join(run, ".curves.svg.77.tmp"), "<svg"); // not the trainer's
    const r = await train(dir, [...fixtureRunFlags("run"), "--max-steps", "8", "--resume"]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /removed 1 temporary file\(s\) of an interrupted write: \.checkpoint-/);
    assert.ok(!existsSync(join(run, torn)), "the stale temporary is gone");
    assert.ok(existsSync(join(run, ".curves.svg.77.tmp")), "another writer's temporary stays");
    assert.ok(!existsSync(join(run, RUN_LOCK_NAME)), "the lock is released at the end");
    assert.deepEqual(listCheckpoints(run), [checkpointAt(run, 7), checkpointAt(run, 8)]);
  });
});

Deno.test("train --resume: a torn last metrics line is dropped and a damaged one set aside, with warnings", async () => {
  await inTemp(async (dir) => {
    await runFolderWith(dir, [7]);
    const log = join(dir, "run", "metrics.jsonl");
    const lines = (await Deno.readTextFile(log)).trim().split("\n");
    lines[2] = "#garbage#";
    await Deno.writeTextFile(log, lines.join("\n") + "\n" + '{"kind":"step","step":8,"lo');
    const r = await train(dir, [...fixtureRunFlags("run"), "--max-steps", "8", "--resume"]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /dropped line 8, cut short by an interrupted write/);
    assert.match(
      r.text,
      /warning: .*damaged line\(s\) 3 \(is not JSON\) moved to .*metrics\.damaged\.jsonl/,
    );
    assert.deepEqual(steps(log), [1, 2, 4, 5, 6, 7, 8]);
    const aside = JSON.parse(await Deno.readTextFile(join(dir, "run", "metrics.damaged.jsonl")));
    assert.deepEqual(aside, { line: 3, problem: "is not JSON", text: "#garbage#" });
  });
});

Deno.test("train --resume <older checkpoint> --out <new>: a branch; the source folder is untouched", async () => {
  await inTemp(async (dir) => {
    await runFolderWith(dir, [7, 14]);
    const run = join(dir, "run");
    const before = await Deno.readTextFile(join(run, "metrics.jsonl"));
    const r = await train(dir, [
      ...fixtureRunFlags("branch"),
      "--max-steps",
      "9",
      "--resume",
      "run/checkpoint-000000007.safetensors",
    ]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /branched from run\/checkpoint-000000007\.safetensors/);
    const branch = join(dir, "branch");
    const logged = steps(join(branch, "metrics.jsonl"));
    assert.deepEqual(logged.filter((s) => s <= 7), [1, 2, 3, 4, 5, 6, 7], "the source's records");
    assert.equal(logged.at(-1), 9, "then the branch's own");
    assert.deepEqual(listCheckpoints(branch), [checkpointAt(branch, 9)]);
    assert.deepEqual(listCheckpoints(run), [checkpointAt(run, 7), checkpointAt(run, 14)]);
    assert.equal(await Deno.readTextFile(join(run, "metrics.jsonl")), before);
  });
});

Deno.test("train --resume RUN_DIR alone continues the run with its own settings, shown in the header", async () => {
  await inTemp(async (dir) => {
    await runFolderWith(dir, []); // the tiny data and tiny.json only
    const first = await train(dir, [...fixtureRunFlags("run"), "--max-steps", "3"]);
    assert.equal(first.code, 0, first.text);
    const r = await train(dir, [
      "--resume",
      "run",
      "--max-steps",
      "5",
      "--plain",
      "--threads",
      "1",
    ]);
    assert.equal(r.code, 0, r.text);
    const header = r.text.split("\n")[0];
    assert.match(header, /ResNet-18 width 4, 28x28x1, 224 images/, "the run's width and images");
    assert.match(header, /batch 32, 200 epochs = 1400 steps/);
    assert.match(r.text, /resumed from run\/checkpoint-000000003\.safetensors at step 3/);
    assert.deepEqual(listCheckpoints(join(dir, "run")).map((p) => p.slice(-15)), [
      "003.safetensors",
      "005.safetensors",
    ]);
    // Again, from the checkpoint file, with flags that agree: accepted.
    const again = await train(dir, [
      "--resume",
      "run/checkpoint-000000005.safetensors",
      "--width",
      "4",
      "--limit",
      "224",
      "--max-steps",
      "6",
      "--plain",
    ]);
    assert.equal(again.code, 0, again.text);
  });
});
