/**
 * The eval / export / embed commands end to end: bad flags exit 2, unreadable checkpoints exit 1
 * with `Cannot load checkpoint '<file>': ...`, and no output (nor a temporary file) is left behind;
 * successful kNN and linear-probe runs on a small subset of the real Fashion-MNIST write JSON.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { writeFixtureCheckpoint } from "./checkpoint_fixture.ts";

const FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const haveData = existsSync(FMNIST);
const task = (name: string) => new URL(`../../tasks/${name}.ts`, import.meta.url).pathname;

async function run(name: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", task(name), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

const dir = await Deno.makeTempDir({ prefix: "ressl_eval_cli_" });
const ckpt = `${dir}/ckpt.safetensors`;
await writeFixtureCheckpoint(ckpt);
const corrupt = `${dir}/corrupt.safetensors`;
const bytes = await Deno.readFile(ckpt);
await Deno.writeFile(corrupt, bytes.subarray(0, bytes.length - 100)); // truncated
const garbage = `${dir}/garbage.safetensors`;
await Deno.writeFile(garbage, new TextEncoder().encode("this is not a safetensors file at all"));
const foreign = `${dir}/foreign.safetensors`; // valid safetensors, not a training checkpoint
await writeSafetensors(foreign, { w: { dtype: "F32", shape: [1], data: Float32Array.of(1) } });

function listDir(): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}
const inputs = listDir();

/** Runs a failing command and checks its exit code, message, and that it wrote nothing. */
async function fails(name: string, args: string[], code: number, pattern: RegExp) {
  const r = await run(name, args);
  assert.equal(r.code, code, `${name} ${args.join(" ")}: exit ${r.code}\n${r.text}`);
  assert.match(r.text, pattern);
  assert.doesNotMatch(r.text, /^\s+at /m, "a usage or load error must not print a stack trace");
  assert.deepEqual(listDir(), inputs, "a failed command left files behind");
}

Deno.test("eval: bad command lines exit 2 with a clear message", async () => {
  const out = `${dir}/r.json`;
  await fails("eval", ["--protocol", "knn"], 2, /Missing flag --checkpoint <file>/);
  await fails(
    "eval",
    ["--checkpoint", ckpt],
    2,
    /Missing flag --protocol: expected one of knn, linear/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "svm"],
    2,
    /--protocol: expected one of knn, linear, got 'svm'/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--fast"],
    2,
    /--fast: it applies to --protocol linear only/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--k", "0", "--out", out],
    2,
    /--k: expected an integer >= 1, got '0'/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "linear", "--lr", "abc"],
    2,
    /--lr: expected a number > 0/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--bogus"],
    2,
    /Invalid command line: .*bogus/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--out", `${dir}/no/r.json`],
    2,
    /--out: folder '.*no' .* does not exist/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--preset", "mars"],
    2,
    /--preset: Unknown augmentation preset 'mars'/,
  );
  await fails(
    "eval",
    ["--checkpoint", ckpt, "--protocol", "knn", "--network", "both"],
    2,
    /--network: expected one of student, teacher/,
  );
});

Deno.test("eval / export / embed: missing, corrupt and foreign checkpoints exit 1 naming the file", async () => {
  const out = `${dir}/r.json`;
  const missing = `${dir}/missing.safetensors`;
  for (
    const [name, extra] of [
      ["eval", ["--protocol", "knn", "--out", out, "--device", "reference"]],
      ["export", ["--out", `${dir}/b.safetensors`]],
      ["embed", [
        "--data",
        "fashion-mnist",
        "--out",
        `${dir}/e.safetensors`,
        "--npy",
        `${dir}/e.npy`,
        "--device",
        "reference",
      ]],
    ] as const
  ) {
    await fails(
      name,
      ["--checkpoint", missing, ...extra],
      1,
      /Cannot load checkpoint '.*missing\.safetensors': no such file/,
    );
    await fails(
      name,
      ["--checkpoint", corrupt, ...extra],
      1,
      /Cannot load checkpoint '.*corrupt\.safetensors': /,
    );
    await fails(
      name,
      ["--checkpoint", garbage, ...extra],
      1,
      /Cannot load checkpoint '.*garbage\.safetensors': /,
    );
    await fails(
      name,
      ["--checkpoint", dir, ...extra],
      1,
      /Cannot load checkpoint '.*': not a file/,
    );
  }
});

Deno.test("export / embed: bad command lines exit 2", async () => {
  await fails("export", ["--checkpoint", ckpt], 2, /Missing flag --out <file\.safetensors>/);
  await fails(
    "export",
    ["--checkpoint", ckpt, "--out", `${dir}/b.safetensors`, "--network", "x"],
    2,
    /--network/,
  );
  await fails("export", ["--checkpoint", ckpt, "--out", dir], 2, /--out: '.*' is a folder/);
  await fails(
    "embed",
    ["--checkpoint", ckpt, "--data", "nowhere-xyz", "--out", `${dir}/e.safetensors`],
    2,
    /--data: 'nowhere-xyz' is neither a folder nor a dataset name/,
  );
  await fails("embed", ["--checkpoint", ckpt, "--data", "fashion-mnist"], 2, /Missing flag --out/);
  await fails(
    "embed",
    ["--checkpoint", ckpt, "--data", dir, "--split", "train", "--out", `${dir}/e.safetensors`],
    2,
    /--split: it applies to built-in datasets and to folders with train\/ \+ val\/ subfolders, and .* is neither/,
  );
  await fails(
    "embed",
    ["--checkpoint", ckpt, "--data", "fashion-mnist", "--out", `${dir}/e.x`, "--npy", `${dir}/e.x`],
    2,
    /--npy and --out name the same file/,
  );
});

Deno.test({
  name: haveData
    ? "eval: kNN, linear probe and fast probe on a Fashion-MNIST subset write their JSON"
    : "eval: runs on Fashion-MNIST (skipped: not installed, apt-get install dataset-fashion-mnist)",
  ignore: !haveData,
  fn: async () => {
    const common = [
      "--checkpoint",
      ckpt,
      "--limit-train",
      "96",
      "--limit-test",
      "40",
      "--threads",
      "1",
    ];
    const knnOut = `${dir}/knn.json`;
    let r = await run("eval", [...common, "--protocol", "knn", "--k", "5", "--out", knnOut]);
    assert.equal(r.code, 0, r.text);
    const knn = JSON.parse(await Deno.readTextFile(knnOut));
    assert.equal(knn.protocol, "knn");
    assert.equal(knn.k, 5);
    assert.equal(knn.temperature, 0.1);
    assert.equal(knn.trainImages, 96);
    assert.equal(knn.testImages, 40);
    assert.equal(knn.step, 7);
    assert.ok(knn.top1 >= 0 && knn.top1 <= knn.top5 && knn.top5 <= 100);
    const correct = knn.top1 * 40 / 100; // a whole number of the 40 test images
    assert.ok(Math.abs(correct - Math.round(correct)) < 1e-9, `top-1 ${knn.top1}`);
    assert.match(r.text, /kNN \(k 5, T 0\.1\): top-1/);

    for (const fast of [false, true]) {
      const out = `${dir}/linear${fast ? "-fast" : ""}.json`;
      const flags = [...common, "--protocol", "linear", "--epochs", "2", "--batch-size", "32"];
      r = await run("eval", [
        ...flags,
        "--network",
        "teacher",
        "--out",
        out,
        ...(fast ? ["--fast"] : []),
      ]);
      assert.equal(r.code, 0, r.text);
      const lin = JSON.parse(await Deno.readTextFile(out));
      assert.equal(lin.protocol, "linear");
      assert.equal(lin.fast, fast);
      assert.equal(lin.network, "teacher");
      assert.equal(lin.numClasses, 10);
      assert.equal(lin.featureDim, 32);
      assert.equal(lin.history.length, 2);
      assert.deepEqual(lin.last, lin.history[1]);
      assert.equal(lin.best.top1, Math.max(...lin.history.map((h: { top1: number }) => h.top1)));
      assert.equal(lin.history[0].lr, 0.2);
      assert.match(r.text, /best\s+\d+\.\d\d\s+\d+\.\d\d\s+[12]\n/);
    }
    const names = listDir().filter((n) => !inputs.includes(n));
    assert.deepEqual(
      names,
      ["knn.json", "linear-fast.json", "linear.json"],
      "no temporary files left",
    );
  },
});

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* already gone */ }
});
