/**
 * `train --resume RUN_DIR` through the task as deno.json runs it, on a run trained on one's own
 * image folder: flags given again that disagree with the run (its width, epochs, data folder) are
 * refused naming each difference, before any header is printed and without touching anything;
 * alone, `--resume RUN_DIR` continues with the run's stored configuration and data, and its header
 * says so (issue 13: it printed `width 64, 60000 images` before failing).
 */
import assert from "node:assert/strict";
import { listCheckpoints } from "../../src/io/checkpoint.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { DEVICE, expectFailure, runTask, writeClassPngs, writeTinyConfig } from "./cli_helpers.ts";

const machine = ["--device", DEVICE, "--threads", "1", "--workers", "0", "--plain"];

Deno.test("train --resume RUN_DIR: flags that disagree are refused by name; alone it continues the run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_resume_" });
  try {
    const photos = `${dir}/photos`;
    writeClassPngs(`${photos}/left`, 24, 0, 1);
    writeClassPngs(`${photos}/right`, 24, 1, 2);
    writeClassPngs(`${dir}/other/a`, 20, 0, 3);
    const run = `${dir}/run`;
    const first = await runTask("train", [
      "--data",
      photos,
      "--width",
      "4",
      "--batch-size",
      "16",
      "--epochs",
      "2",
      "--max-steps",
      "2",
      "--config",
      writeTinyConfig(`${dir}/tiny.json`),
      "--out",
      run,
      ...machine,
    ]);
    assert.equal(first.code, 0, first.text);
    const config = JSON.parse(await Deno.readTextFile(`${run}/config.json`)).config;

    const refused = await expectFailure(
      "train",
      ["--resume", run, "--width", "8", "--epochs", "2", "--lr", "0.5", "--data", `${dir}/other`],
      2,
      [
        /Cannot resume from '.*checkpoint-000000002\.safetensors'/,
        /--width 8 differs from the run's 4/,
        /--lr 0\.5 differs from the run's 0\.06/,
        /--data .*other differs from the run's .*photos/,
        /leave these flags out/,
      ],
      dir,
    );
    assert.doesNotMatch(refused.text, /--epochs/, "--epochs 2 agrees with the run");
    assert.doesNotMatch(refused.text, /ResNet-18|images \(/, "no header before the refusal");

    // The same folder given again (or through a different spelling) agrees.
    const r = await runTask("train", [
      "--resume",
      run,
      "--data",
      `${photos}/`,
      "--max-steps",
      "3",
      ...machine,
    ]);
    assert.equal(r.code, 0, r.text);
    const header = r.text.split("\n").find((l) => l.startsWith("ReSSL "));
    assert.match(
      header ?? "",
      /^ReSSL image-folder: ResNet-18 width 4, 16x16x3, 48 images \(folder:.*photos\/? in .*photos\/?\), batch 16, 2 epochs = 6 steps, stopping at 3/,
      r.text,
    );
    assert.match(r.text, /resumed from .*checkpoint-000000002\.safetensors at step 2/);
    assert.doesNotMatch(r.text, /estimated from|image size \d+ \(/, "the stored settings are kept");
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${run}/config.json`)).config, config);
    assert.deepEqual(listCheckpoints(run).map((p) => p.slice(-15)), [
      "002.safetensors",
      "003.safetensors",
    ]);
    const steps = readMetrics(`${run}/metrics.jsonl`).filter((m) => m.kind === "step");
    assert.equal(steps.at(-1)!.step, 3);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
