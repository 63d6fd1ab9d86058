/**
 * `--data` end to end, through the tasks as deno.json runs them (their declared permissions):
 * training on one's own image folder (class folders give the kNN monitor its labels; the image
 * size comes from the images; mean/std are estimated and written to config.json), the same folder
 * in eval, embed and export, an unlabelled folder, and the built-in Fashion-MNIST files found
 * directly in the folder or in <folder>/fashion-mnist/ — never Debian's copy instead. Tiny runs:
 * width 4, a few steps.
 */
import assert from "node:assert/strict";
import jpeg from "jpeg-js";
import { estimateMeanStd, scanImageFolder } from "../../src/data/datasets/mod.ts";
import { readMetrics } from "../../src/io/metrics.ts";
import { readSafetensors } from "../../src/io/safetensors.ts";
import { writeFixtureCheckpoint } from "../eval/checkpoint_fixture.ts";
import {
  DEVICE,
  expectFailure,
  listTree,
  runTask,
  writeClassPngs,
  writeFashionMnist,
  writeTinyConfig,
} from "./cli_helpers.ts";

const FIXTURE_WEBP = new URL("../data/fixtures/pattern_lossy.webp", import.meta.url).pathname;

const tiny = (dir: string, out: string, extra: string[] = []) => [
  "--width",
  "4",
  "--batch-size",
  "16",
  "--config",
  writeTinyConfig(`${dir}/tiny.json`),
  "--device",
  DEVICE,
  "--threads",
  "1",
  "--workers",
  "0",
  "--out",
  out,
  "--plain",
  ...extra,
];

Deno.test("train --data <image folder with classes>: own images, estimated mean/std, kNN on labels; eval, embed, export on the same folder", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_own_" });
  try {
    const photos = `${dir}/photos`;
    writeClassPngs(`${photos}/left`, 24, 0, 1);
    writeClassPngs(`${photos}/right`, 24, 1, 2);
    const run = `${dir}/run`;
    const r = await runTask("train", [
      "--data",
      photos,
      "--epochs",
      "1",
      "--knn-every",
      "1",
      ...tiny(dir, run),
    ]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /preset image-folder: '.*photos' holds images/);
    assert.match(r.text, /image size 16 \(the most common size is 16x16, 48 of 48 images/);
    assert.match(r.text, /estimated from 48 images/);
    // 48 images: 5 held out as kNN queries, 43 vote; 3 steps of 16.
    assert.match(r.text, /48 images \(folder:.*photos in .*photos\), batch 16, 1 epoch = 3 steps/);
    assert.match(r.text, /kNN monitor every 1 epoch \(43 voting, 5 test images\)/);
    assert.match(r.text, /kNN top-1 \d+\.\d\d% \(top-5 \d+\.\d\d%\) on 5 test images/);
    // What runs between steps is named (off a terminal: once each), then the curves are drawn.
    assert.match(r.text, /\nepoch 1: kNN monitor, encoding\n/);
    assert.match(r.text, /\nepoch 1: writing the checkpoint\n/);
    assert.match(r.text, /\ndrawing the training curves \.\.\.\ntraining curves: .*curves\.png/);

    const { config, run: info } = JSON.parse(await Deno.readTextFile(`${run}/config.json`));
    assert.equal(config.dataset, "image-folder");
    assert.equal(config.model.inChannels, 3);
    assert.equal(config.image.size, 16);
    const files = scanImageFolder(`${photos}`).files;
    const est = estimateMeanStd(files, { sample: 1000, seed: 0, size: 16, channels: 3 });
    const round = (v: number[]) => v.map((x) => Math.round(x * 1e4) / 1e4);
    assert.deepEqual(config.image.mean, round(est.mean));
    assert.deepEqual(config.image.std, round(est.std));
    assert.equal(info.data.kind, "folder");
    assert.equal(info.data.root, photos);
    const epoch = readMetrics(`${run}/metrics.jsonl`).find((m) => m.kind === "epoch");
    assert.ok(epoch && typeof epoch.knnTop1 === "number", "the kNN monitor ran on the labels");

    const evalOut = `${dir}/knn.json`;
    const e = await runTask("eval", [
      "--checkpoint",
      run,
      "--protocol",
      "knn",
      "--data",
      photos,
      "--k",
      "5",
      "--device",
      DEVICE,
      "--threads",
      "1",
      "--out",
      evalOut,
    ]);
    assert.equal(e.code, 0, e.text);
    const knn = JSON.parse(await Deno.readTextFile(evalOut));
    assert.equal(knn.trainImages, 43);
    assert.equal(knn.testImages, 5);
    assert.equal(knn.dataset, "image-folder");

    const emb = `${dir}/emb.safetensors`;
    const m = await runTask("embed", [
      "--checkpoint",
      run,
      "--data",
      photos,
      "--out",
      emb,
      "--device",
      DEVICE,
      "--threads",
      "1",
    ]);
    assert.equal(m.code, 0, m.text);
    const st = await readSafetensors(emb);
    assert.deepEqual(st.tensors.embeddings.shape, [48, 32]);
    assert.deepEqual(JSON.parse(st.metadata.classes), ["left", "right"]);

    const x = await runTask("export", ["--checkpoint", run, "--out", `${dir}/b.safetensors`]);
    assert.equal(x.code, 0, x.text);
    assert.match(x.text, /3 input channel/);

    // The t-SNE map draws built-in test sets only: refused clearly, nothing written.
    await expectFailure("plot", [run, "--map", "--no-curves"], 2, [
      /--map/,
      /trained on an image folder/,
      /deno task embed/,
    ], dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --data <flat folder>: unlabelled, so the kNN monitor is off (or refused when asked)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_own_" });
  try {
    const flat = `${dir}/flat`;
    writeClassPngs(flat, 30, 0, 3, 12);
    // JPEG and WebP train beside PNG
    const rgba = new Uint8Array(12 * 12 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * 37) % 256));
    Deno.writeFileSync(
      `${flat}/photo.jpg`,
      jpeg.encode({ width: 12, height: 12, data: rgba }).data,
    );
    await Deno.copyFile(FIXTURE_WEBP, `${flat}/zz.webp`);
    await expectFailure(
      "train",
      ["--data", flat, "--knn-every", "1", ...tiny(dir, `${dir}/run1`)],
      2,
      [/--knn-every/, /labelled images/, /no class subfolders/],
      dir,
    );
    const r = await runTask("train", [
      "--data",
      flat,
      "--preset",
      "image-folder",
      "--max-steps",
      "1",
      "--image-size",
      "8",
      "--mean",
      "0.5,0.5,0.5",
      "--std",
      "0.2,0.2,0.2",
      ...tiny(dir, `${dir}/run2`),
    ]);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /kNN monitor off: the folder has no class subfolders/);
    assert.match(r.text, /32 images \(folder:/, "30 PNG + 1 JPEG + 1 WebP");
    assert.doesNotMatch(r.text, /estimated from/);
    const { config } = JSON.parse(await Deno.readTextFile(`${dir}/run2/config.json`));
    assert.equal(config.image.size, 8);
    assert.deepEqual(config.image.mean, [0.5, 0.5, 0.5]);
    assert.equal(config.knnEvery, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --data: a missing path, a folder without images, an unsupported format fail naming the path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_own_" });
  try {
    const out = `${dir}/run`;
    await expectFailure(
      "train",
      ["--data", `${dir}/nowhere`, ...tiny(dir, out)],
      2,
      [/--data/, /nowhere' does not exist/],
      dir,
    );
    await Deno.mkdir(`${dir}/empty`);
    await Deno.writeTextFile(`${dir}/empty/notes.txt`, "no images here");
    await expectFailure(
      "train",
      ["--data", `${dir}/empty`, ...tiny(dir, out)],
      1,
      [/Cannot use --data '.*empty'/, /fashion-mnist files/, /no JPEG, PNG or WebP images/],
      dir,
    );
    await Deno.mkdir(`${dir}/gif/a`, { recursive: true });
    await Deno.writeFile(`${dir}/gif/a/x.gif`, new TextEncoder().encode("GIF89a......"));
    await expectFailure(
      "train",
      ["--data", `${dir}/gif`, "--preset", "image-folder", ...tiny(dir, out)],
      1,
      [/x\.gif' \(GIF\)/, /Supported formats: JPEG, PNG, WebP/],
      dir,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train --data <dir>: Fashion-MNIST's files directly in <dir> or in <dir>/fashion-mnist/ are used, not Debian's copy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_own_" });
  try {
    writeFashionMnist(`${dir}/top`, 48, 20);
    writeFashionMnist(`${dir}/nested/fashion-mnist`, 32, 20);
    for (const [data, n] of [[`${dir}/top`, 48], [`${dir}/nested`, 32]] as const) {
      const out = `${dir}/run-${n}`;
      const r = await runTask("train", [
        "--data",
        data,
        "--max-steps",
        "1",
        "--knn-every",
        "1",
        "--epochs",
        "1",
        ...tiny(dir, out),
      ]);
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, new RegExp(`${n} images \\(fashion-mnist/train in ${data}`));
      // the kNN monitor would read the same folder's test split (20 images)
      assert.match(r.text, new RegExp(`\\(${n} voting, 20 test images\\)`));
      const { run } = JSON.parse(await Deno.readTextFile(`${out}/config.json`));
      assert.equal(run.images, n);
      assert.ok(listTree(out).includes("checkpoint-000000001.safetensors"));
      // eval reads the same folder: its train and test splits, not Debian's 60,000 + 10,000
      const e = await runTask("eval", [
        "--checkpoint",
        out,
        "--protocol",
        "knn",
        "--data",
        data,
        "--k",
        "3",
        "--device",
        DEVICE,
        "--threads",
        "1",
      ]);
      assert.equal(e.code, 0, e.text);
      assert.match(e.text, new RegExp(`${n} train / 20 test images of fashion-mnist in ${data}`));
      // embed too: the folder's test split (20 images), not Debian's 10,000
      const emb = `${out}/test.safetensors`;
      const m = await runTask("embed", [
        "--checkpoint",
        out,
        "--data",
        data,
        "--out",
        emb,
        "--device",
        DEVICE,
        "--threads",
        "1",
      ]);
      assert.equal(m.code, 0, m.text);
      assert.deepEqual((await readSafetensors(emb)).tensors.embeddings.shape, [20, 32]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embed: WebP beside PNG, none skipped; a train/ + val/ folder one split at a time", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_own_" });
  try {
    const ckpt = `${dir}/ckpt.safetensors`;
    await writeFixtureCheckpoint(ckpt);
    await Deno.mkdir(`${dir}/mixed`);
    await Deno.copyFile(FIXTURE_WEBP, `${dir}/mixed/a.webp`);
    writeClassPngs(`${dir}/pngs`, 1, 0, 5, 12);
    await Deno.copyFile(`${dir}/pngs/img000.png`, `${dir}/mixed/b.png`);
    const out = `${dir}/e.safetensors`;
    const r = await runTask("embed", [
      "--checkpoint",
      ckpt,
      "--data",
      `${dir}/mixed`,
      "--out",
      out,
      "--device",
      DEVICE,
      "--threads",
      "1",
    ]);
    assert.equal(r.code, 0, r.text);
    const st = await readSafetensors(out);
    assert.equal(st.tensors.embeddings.shape[0], 2);
    assert.deepEqual(JSON.parse(st.metadata.files), ["a.webp", "b.png"]);

    // train/ + val/ as train reads it: one split at a time (val/ unless --split train), labelled
    // by the class folders inside, not by "train" and "val".
    const split = `${dir}/split`;
    writeClassPngs(`${split}/train/a`, 3, 0, 6, 12);
    writeClassPngs(`${split}/train/b`, 3, 1, 7, 12);
    writeClassPngs(`${split}/val/a`, 2, 0, 8, 12);
    writeClassPngs(`${split}/val/b`, 1, 1, 9, 12);
    for (const [extra, n] of [[[], 3], [["--split", "train"], 6]] as const) {
      const e = await runTask("embed", [
        "--checkpoint",
        ckpt,
        "--data",
        split,
        ...extra,
        "--out",
        out,
        "--device",
        DEVICE,
        "--threads",
        "1",
      ]);
      assert.equal(e.code, 0, e.text);
      const s = await readSafetensors(out);
      assert.equal(s.tensors.embeddings.shape[0], n);
      assert.deepEqual(JSON.parse(s.metadata.classes), ["a", "b"]);
      const files: string[] = JSON.parse(s.metadata.files);
      const want = n === 3 ? ["val/a/img000.png", "val/a/img001.png", "val/b/img000.png"] : [];
      if (n === 3) assert.deepEqual(files, want);
      else assert.ok(files.every((f) => f.startsWith("train/")), files.join(" "));
      assert.deepEqual([...s.tensors.labels.data], n === 3 ? [0, 0, 1] : [0, 0, 0, 1, 1, 1]);
    }
    await Deno.mkdir(`${split}/val/c`);
    await Deno.copyFile(`${split}/val/b/img000.png`, `${split}/val/c/x.png`);
    await expectFailure(
      "embed",
      [
        "--checkpoint",
        ckpt,
        "--data",
        split,
        "--out",
        `${dir}/never.safetensors`,
      ],
      1,
      [/class folders \["a","b","c"\] differ from those of '.*train' \["a","b"\]/],
      dir,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
