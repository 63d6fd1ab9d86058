import assert from "node:assert/strict";
import { parseTrainArgs } from "../../tasks/train_args.ts";

Deno.test("parseTrainArgs() defaults to the fashion-mnist preset and applies flags", async () => {
  const r = await parseTrainArgs(["--epochs", "3", "--width", "16", "--batch-size", "128"]);
  assert.ok(r);
  assert.equal(r.runtime.preset, "fashion-mnist");
  assert.equal(r.config.epochs, 3);
  assert.equal(r.config.model.width, 16);
  assert.equal(r.config.batchSize, 128);
  assert.equal(r.runtime.device, "auto");
  assert.equal(r.runtime.resume, undefined);
  const resumeNewest = await parseTrainArgs(["--out", "x", "--resume", "--plain"]);
  assert.equal(resumeNewest?.runtime.resume, "");
  assert.equal(resumeNewest?.runtime.plain, true);
  const resumeFile = await parseTrainArgs(["--resume", "a.safetensors"]);
  assert.equal(resumeFile?.runtime.resume, "a.safetensors");
  assert.equal(await parseTrainArgs(["--help"]), null);
});

Deno.test("parseTrainArgs() rejects bad flags naming them", async () => {
  await assert.rejects(() => parseTrainArgs(["--epochs", "two"]), /--epochs/);
  await assert.rejects(() => parseTrainArgs(["--bogus"]), /Invalid command line.*bogus/);
  await assert.rejects(() => parseTrainArgs(["--device", "tpu"]), /--device/);
  await assert.rejects(() => parseTrainArgs(["--init", "a", "--resume"]), /--init .* --resume/);
  await assert.rejects(() => parseTrainArgs(["--preset", "mnist"]), /preset 'mnist'/);
  await assert.rejects(() => parseTrainArgs(["--batch-size", "100"]), /queueSize/);
  await assert.rejects(() => parseTrainArgs(["--config", "/nonexistent.json"]), /nonexistent/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ ressl: { tau: 1 } }));
    await assert.rejects(() => parseTrainArgs(["--config", `${dir}/c.json`]), /ressl.tau/);
    await Deno.writeTextFile(`${dir}/d.json`, "{ nope");
    await assert.rejects(() => parseTrainArgs(["--config", `${dir}/d.json`]), /Cannot parse/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
