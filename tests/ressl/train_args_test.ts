import assert from "node:assert/strict";
import { buildTrainConfig, parseTrainArgs, parseTrainCommand } from "../../tasks/train_args.ts";

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

Deno.test("train flags set their config keys; the keys set explicitly are known", async () => {
  const cli = parseTrainCommand([
    "--image-size",
    "20",
    "--mean",
    "0.1",
    "--std",
    "0.3",
    "--log-every",
    "1",
    "--knn-every",
    "2",
    "--preset",
    "tinyimagenet",
  ])!;
  assert.equal(cli.runtime.preset, "tiny-imagenet");
  assert.match(cli.runtime.presetNote!, /old name of 'tiny-imagenet'/);
  assert.deepEqual(cli.runtime.given, [
    "image-size",
    "mean",
    "std",
    "log-every",
    "knn-every",
    "preset",
  ]);
  const built = await buildTrainConfig(cli.parsed, "fashion-mnist");
  assert.equal(built.config.image.size, 20);
  assert.deepEqual(built.config.image.mean, [0.1]);
  assert.deepEqual(built.config.image.std, [0.3]);
  assert.equal(built.config.logEvery, 1);
  assert.equal(built.config.knnEvery, 2);
  assert.deepEqual(
    [...built.explicit].sort(),
    ["image.mean", "image.size", "image.std", "knnEvery", "logEvery"],
  );
  // The same flags on an RGB preset: one mean for three channels is refused naming the key.
  await assert.rejects(() => buildTrainConfig(cli.parsed, "cifar10"), /'image.mean'/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/c.json`, JSON.stringify({ optim: { lr: 0.1 }, epochs: 4 }));
    const withFile = parseTrainCommand(["--config", `${dir}/c.json`, "--epochs", "5"])!;
    const b = await buildTrainConfig(withFile.parsed, "fashion-mnist");
    assert.equal(b.config.optim.lr, 0.1);
    assert.equal(b.config.epochs, 5, "a flag wins over the config file");
    assert.deepEqual([...b.explicit].sort(), ["epochs", "optim.lr"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train: --threads and --workers are bounded by the cores; --list flags read numbers", async () => {
  const n = navigator.hardwareConcurrency;
  await assert.rejects(
    () => parseTrainArgs(["--threads", String(n + 1)]),
    new RegExp(`--threads: ${n + 1} is more than the ${n} cores? of this machine`),
  );
  await assert.rejects(() => parseTrainArgs(["--workers", "1000"]), /--workers: 1000 is more/);
  assert.equal((await parseTrainArgs(["--workers", "0"]))?.runtime.workers, 0);
  assert.equal((await parseTrainArgs([]))?.runtime.workers, 1);
  await assert.rejects(() => parseTrainArgs(["--mean", "a,b"]), /--mean: expected numbers/);
});
