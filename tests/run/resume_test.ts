/**
 * Resuming from a run folder (issue 13) without losing data (issue 14 cases 2 and 9):
 * `planResume` finds the checkpoint (folder: its newest; file: itself; "" : the newest of --out)
 * and what the run was (the checkpoint's configuration; preset, data and limit from config.json,
 * new or old style); `checkResumeSettings` names every flag that disagrees; `resumeMetrics` cuts
 * the run's own log back to the checkpoint (atomically, a torn last line dropped with a note, a
 * damaged line moved to a side file with a warning) or starts a branch's log with the source's
 * records.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { checkpointName } from "../../src/io/checkpoint.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { readSafetensors, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  checkResumeSettings,
  DAMAGED_METRICS,
  planResume,
  readStoredRunInfo,
  resumeMetrics,
  ResumeSettingsError,
} from "../../src/run/resume.ts";

const FIXTURE = fileURLToPath(new URL("./fixtures/checkpoint_v1.safetensors", import.meta.url));

/** The v1 fixture (2 steps of 1 epoch, batch 8) written as the checkpoint of `step` in `dir`. */
async function checkpoint(dir: string, step: number): Promise<string> {
  const file = await readSafetensors(FIXTURE);
  const meta = { ...JSON.parse(file.metadata.meta), step };
  const path = join(dir, checkpointName(step));
  await writeSafetensors(path, file.tensors, {
    metadata: { ...file.metadata, meta: JSON.stringify(meta) },
  });
  return path;
}

async function inTemp(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "ressl_resume_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("planResume: a run folder, a checkpoint, or --out alone; clear errors otherwise", async () => {
  await inTemp(async (dir) => {
    const run = join(dir, "run");
    await Deno.mkdir(run);
    const first = await checkpoint(run, 1);
    const newest = await checkpoint(run, 2);
    await Deno.writeTextFile(
      join(run, "config.json"),
      JSON.stringify({ config: {}, run: { preset: "fashion-mnist-quick", data: "/d", limit: 16 } }),
    );
    const byDir = await planResume(run);
    assert.equal(byDir.checkpoint, newest);
    assert.equal(byDir.runDir, run);
    assert.equal(byDir.branch, false);
    assert.equal(byDir.meta.step, 2);
    assert.equal(byDir.config.model.width, 1);
    assert.deepEqual(byDir.stored, { preset: "fashion-mnist-quick", data: "/d", limit: 16 });
    assert.equal((await planResume("", run)).checkpoint, newest);
    const byFile = await planResume(first);
    assert.deepEqual([byFile.checkpoint, byFile.runDir, byFile.branch], [first, run, false]);
    const branch = await planResume(first, join(dir, "b"));
    assert.deepEqual([branch.runDir, branch.branch], [join(dir, "b"), true]);

    await assert.rejects(() => planResume(""), /--resume without a path continues .* --out/);
    await assert.rejects(
      () => planResume(join(dir, "nope")),
      /Cannot resume from '.*nope': no such run folder or checkpoint file/,
    );
    await Deno.mkdir(join(dir, "empty"));
    await assert.rejects(
      () => planResume(join(dir, "empty")),
      /run folder '.*empty' holds no checkpoint \(start it without --resume\)/,
    );
    await Deno.writeTextFile(join(dir, "junk.safetensors"), "junk");
    await assert.rejects(() => planResume(join(dir, "junk.safetensors")), /junk\.safetensors/);
  });
});

Deno.test("readStoredRunInfo: today's fields, an older folder's command line, or nothing", async () => {
  await inTemp(async (dir) => {
    const path = join(dir, "config.json");
    assert.deepEqual(readStoredRunInfo(path), {});
    await Deno.writeTextFile(path, "{ torn");
    assert.deepEqual(readStoredRunInfo(path), {});
    await Deno.writeTextFile(
      path,
      JSON.stringify({ run: { preset: "cifar10", args: ["--data", "d1", "--limit=64"] } }),
    );
    assert.deepEqual(readStoredRunInfo(path), { preset: "cifar10", data: "d1", limit: 64 });
    await Deno.writeTextFile(path, JSON.stringify({ run: { data: { root: "/imgs" } } }));
    assert.deepEqual(readStoredRunInfo(path), { data: "/imgs" });
  });
});

Deno.test("checkResumeSettings names every flag that disagrees with the run", async () => {
  await inTemp(async (dir) => {
    const plan = await planResume(await checkpoint(dir, 2));
    const agree = {
      preset: "fashion-mnist",
      settings: [
        { source: "--lr 0.06", key: "optim.lr", value: 0.06 },
        { source: "--config tiny.json", key: "head.hidden", value: 8 },
      ],
      limit: 16,
    };
    checkResumeSettings(plan, agree);
    checkResumeSettings(plan, {});
    assert.throws(
      () =>
        checkResumeSettings(plan, {
          preset: "cifar10",
          settings: [
            { source: "--lr 0.1", key: "optim.lr", value: 0.1 },
            { source: "--width 64", key: "model.width", value: 64 },
            { source: "--config tiny.json", key: "logEvery", value: 5 },
          ],
          limit: 32,
        }),
      (e: Error) => {
        assert.ok(e instanceof ResumeSettingsError);
        assert.deepEqual(e.differences, [
          "--preset cifar10 differs from the run's fashion-mnist",
          "--lr 0.1 differs from the run's 0.06",
          "--width 64 differs from the run's 1",
          "--config tiny.json sets 'logEvery' to 5, the run's is 1",
          "--limit 32 differs from the run's 16 images",
        ]);
        assert.match(e.message, /A resumed run keeps its own settings/);
        return true;
      },
    );
  });
});

const rec = (step: number, kind = "step") => JSON.stringify({ kind, step, epoch: 0 });

Deno.test("resumeMetrics: the run's own log is cut back to the checkpoint; damage is handled", async () => {
  await inTemp(async (dir) => {
    const ckpt = await checkpoint(dir, 2);
    const log = join(dir, "metrics.jsonl");
    await Deno.writeTextFile(log, [1, 2, 3].map((s) => rec(s)).join("\n") + "\n" + '{"ki');
    const notes = await resumeMetrics(dir, ckpt, 2);
    assert.deepEqual(readMetrics(log).map((r) => r.step), [1, 2]);
    assert.match(notes.join("\n"), /dropped line 4, cut short by an interrupted write/);
    assert.match(notes.join("\n"), /dropped 1 record\(s\) logged after step 2/);
    // A damaged line in the middle does not block the resume: it moves, verbatim, to a side file.
    await Deno.writeTextFile(log, rec(1) + "\nnot json\n" + rec(2) + "\n" + rec(3) + "\n");
    const moved = await resumeMetrics(dir, ckpt, 2);
    assert.deepEqual(readMetrics(log).map((r) => r.step), [1, 2]);
    assert.match(
      moved.join("\n"),
      /warning: .*metrics\.jsonl: damaged line\(s\) 2 \(is not JSON\) moved to .*metrics\.damaged\.jsonl/,
    );
    const aside = (await Deno.readTextFile(join(dir, DAMAGED_METRICS))).trim().split("\n");
    assert.deepEqual(aside.map((l) => JSON.parse(l)), [
      { line: 2, problem: "is not JSON", text: "not json" },
    ]);
  });
});

Deno.test("resumeMetrics: a branch starts with the source run's records up to the checkpoint", async () => {
  await inTemp(async (dir) => {
    const ckpt = await checkpoint(dir, 1);
    await Deno.writeTextFile(
      join(dir, "metrics.jsonl"),
      [1, 2].map((s) => rec(s)).join("\n") + "\n",
    );
    const branch = join(dir, "branch");
    await Deno.mkdir(branch);
    const notes = await resumeMetrics(branch, ckpt, 1);
    assert.deepEqual(readMetrics(join(branch, "metrics.jsonl")).map((r) => r.step), [1]);
    assert.match(notes[0], /branched from .* starts with the 1 record\(s\) of .* up to step 1/);
    assert.deepEqual(readMetrics(join(dir, "metrics.jsonl")).map((r) => r.step), [1, 2]);
  });
});
