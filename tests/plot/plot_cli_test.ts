/**
 * End to end through `deno task plot`: the curves of a run folder, the embedding map of a
 * checkpoint's backbone on the real Fashion-MNIST test images, and the exit status of bad
 * command lines (2) and of missing inputs (1).
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { writeTinyCheckpoint } from "./ckpt_helper.ts";
import { readPng } from "./helpers.ts";

const FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";
const haveData = existsSync(FMNIST);
const dnnl = ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/libdnnl.so.2"].some(existsSync);
const device = dnnl ? "cpu" : "reference";
const PLOT = new URL("../../tasks/plot.ts", import.meta.url).pathname;

async function plot(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", PLOT, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

function metricsLines(): string {
  const lines = [];
  for (let s = 1; s <= 12; s++) {
    lines.push({
      kind: "step",
      step: s,
      epoch: s > 6 ? 1 : 0,
      loss: 9 - s / 4,
      lossMean: 9 - s / 4,
      lr: 0.01 * s,
    });
    if (s % 6 === 0) {
      lines.push({ kind: "epoch", step: s, epoch: s / 6 - 1, loss: 8, knnTop1: 20 + s });
    }
  }
  return lines.map((l) => JSON.stringify(l) + "\n").join("");
}

Deno.test({
  name:
    "deno task plot <run> --map writes the curves and the embedding map of the newest checkpoint",
  ignore: !haveData,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "plot-cli-" });
    try {
      await Deno.writeTextFile(`${dir}/metrics.jsonl`, metricsLines());
      await writeTinyCheckpoint(dir, 6);
      await writeTinyCheckpoint(dir, 12);
      const args = [dir, "--map", "--points", "80", "--iterations", "150", "--perplexity", "10"];
      const r = await plot([...args, "--device", device, "--threads", "1"]);
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /map: 80 points of fashion-mnist\/test\[:80\] at step 12/);
      for (const f of ["curves.svg", "curves.png", "embedding-map.svg", "embedding-map.png"]) {
        assert.ok(existsSync(`${dir}/${f}`), `${f} missing`);
      }
      const svg = await Deno.readTextFile(`${dir}/embedding-map.svg`);
      assert.equal(svg.match(/aria-roledescription="circle"/g)?.length, 80);
      assert.ok(svg.includes(">Ankle boot</text>") && svg.includes(">T-shirt/top</text>"));
      assert.ok(svg.includes("checkpoint step 12</text>"));
      const png = readPng(`${dir}/embedding-map.png`);
      assert.ok(png.width > 800 && png.height > 800, `${png.width}x${png.height}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("deno task plot: curves only, bad command lines exit 2, missing inputs exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot-cli-" });
  try {
    let r = await plot([dir]);
    assert.equal(r.code, 1);
    assert.match(r.text, /metrics\.jsonl' does not exist/);
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, metricsLines());
    r = await plot([dir, "--scale", "1"]);
    assert.equal(r.code, 0, r.text);
    assert.ok(existsSync(`${dir}/curves.svg`) && !existsSync(`${dir}/embedding-map.svg`));
    assert.ok(readPng(`${dir}/curves.png`).width > 600);
    r = await plot([dir, "--map"]);
    assert.equal(r.code, 1);
    assert.match(r.text, /holds no checkpoint \(give --checkpoint <file>\)/);
    for (
      const [args, re] of [
        [[], /expected one run folder, got 0/],
        [[dir, "--points", "50"], /--points: it applies to --map only/],
        [[dir, "--map", "--points", "1"], /--points: expected an integer >= 2/],
        [[dir, "--bogus"], /Invalid command line/],
        [[dir, "--no-curves"], /nothing to draw without --map/],
      ] as const
    ) {
      r = await plot([...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.text}`);
      assert.match(r.text, re);
    }
    r = await plot([`${dir}/nope`]);
    assert.equal(r.code, 1);
    assert.match(r.text, /no such folder/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
