import assert from "node:assert/strict";
// @ts-types="@types/pngjs"
import type { PNG } from "pngjs";
import type { MetricsRecord } from "../../src/io/metrics.ts";
import { plotRun, runCurves, SERIES } from "../../src/plot/curves.ts";
import { svgSize, writeChart } from "../../src/plot/render.ts";
import { readPng } from "./helpers.ts";

const LR_RED = [0xd6, 0x27, 0x28];

/** A synthetic log: `epochs` epochs of 50 steps, a step record every 10 steps, kNN per epoch. */
function syntheticLog(epochs: number, knn: boolean): MetricsRecord[] {
  const out: MetricsRecord[] = [];
  for (let s = 10; s <= epochs * 50; s += 10) {
    const epoch = Math.floor((s - 1) / 50);
    const lossMean = 5 + 8 * Math.exp(-s / 150);
    const lr = 0.06 * Math.min(1, s / 100);
    out.push({ kind: "step", step: s, epoch, loss: lossMean + Math.sin(s), lossMean, lr });
    if (s % 50 === 0) {
      const rec: MetricsRecord = { kind: "epoch", step: s, epoch, loss: lossMean };
      if (knn) Object.assign(rec, { knnTop1: 40 + 3 * epoch, knnTop5: 70 + 2 * epoch });
      out.push(rec);
    }
  }
  return out;
}

async function withRun(records: MetricsRecord[] | string, f: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "plot-run-" });
  try {
    const text = typeof records === "string"
      ? records
      : records.map((r) => JSON.stringify(r) + "\n").join("");
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, text);
    await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Number of pixels within `tol` of an RGB colour. */
function countColour(png: PNG, rgb: number[], tol = 12): number {
  let n = 0;
  for (let i = 0; i < png.width * png.height; i++) {
    const d = png.data.subarray(4 * i, 4 * i + 3);
    if (Math.abs(d[0] - rgb[0]) + Math.abs(d[1] - rgb[1]) + Math.abs(d[2] - rgb[2]) <= tol) n++;
  }
  return n;
}

Deno.test("plotRun writes curves.svg and curves.png: loss, lr and kNN panels", async () => {
  await withRun(syntheticLog(4, true), async (dir) => {
    await Deno.writeTextFile(
      `${dir}/config.json`,
      JSON.stringify({
        config: { dataset: "fashion-mnist", model: { depth: 18, width: 16 } },
        run: { preset: "fmnist-small" },
      }),
    );
    const out = await plotRun(dir);
    assert.deepEqual(out, { svg: [`${dir}/curves.svg`], png: [`${dir}/curves.png`] });
    const svg = await Deno.readTextFile(out.svg[0]);
    for (
      const text of [
        "Loss per step",
        "Learning rate",
        "kNN accuracy",
        "relation loss",
        "accuracy (%)",
      ]
    ) {
      assert.ok(svg.includes(`>${text}</text>`), `SVG lacks the text '${text}'`);
    }
    for (const s of Object.values(SERIES).filter((s) => s !== SERIES.lr)) {
      assert.ok(svg.includes(`>${s}</text>`), `SVG lacks the legend entry '${s}'`);
    }
    const name = dir.split("/").at(-1);
    assert.ok(
      svg.includes(`>${name}: ResNet-18 (width 16) on fashion-mnist, preset fmnist-small</text>`),
      "title",
    );
    // two loss lines, one lr line, two kNN lines, and kNN points
    assert.equal(svg.match(/aria-roledescription="line mark"/g)?.length ?? 0, 5);
    assert.equal(svg.match(/aria-roledescription="point"/g)?.length ?? 0, 8);

    const png = readPng(out.png[0]);
    const size = svgSize(svg);
    assert.equal(png.width, Math.round(size.width * 2));
    assert.equal(png.height, Math.round(size.height * 2));
    assert.ok(size.width > 900, `three panels side by side, width ${size.width}`);
    assert.ok(countColour(png, LR_RED) > 200, "the red lr curve is not drawn in the PNG");
    assert.ok(countColour(png, [0, 0, 0], 120) > 500, "no dark text or axes in the PNG");
  });
});

Deno.test("plotRun without kNN records draws two panels; options pick formats, title and scale", async () => {
  await withRun(syntheticLog(2, false), async (dir) => {
    const out = await plotRun(dir, { formats: ["png"], title: "my run", scale: 1 });
    assert.deepEqual(out, { svg: [], png: [`${dir}/curves.png`] });
    const png = readPng(out.png[0]);
    const svgOut = await plotRun(dir, { formats: ["svg"], title: "my run" });
    const svg = await Deno.readTextFile(svgOut.svg[0]);
    assert.ok(!svg.includes("kNN accuracy"));
    assert.ok(svg.includes(">my run</text>"));
    const size = svgSize(svg);
    assert.equal(png.width, size.width);
    assert.equal(png.height, size.height);
    assert.ok(size.width < 900, `two panels, width ${size.width}`);
  });
});

Deno.test("runCurves keeps the last record of a repeated step, thins long logs, counts epochs from 1", () => {
  const log = syntheticLog(2, true);
  log.push({ kind: "step", step: 20, epoch: 0, loss: 99, lossMean: 98, lr: 0.5 });
  const c = runCurves(log);
  const at20 = c.loss.filter((p) => p.x === 20);
  assert.deepEqual(at20.map((p) => p.value).sort(), [98, 99]);
  assert.deepEqual(c.lr.map((p) => p.x), [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]);
  assert.deepEqual(c.knn.filter((p) => p.series === SERIES.knnTop1).map((p) => [p.x, p.value]), [[
    1,
    40,
  ], [2, 43]]);
  const thinned = runCurves(syntheticLog(20, false), 30);
  const steps = thinned.lr.map((p) => p.x);
  assert.ok(steps.length <= 31 && steps.length >= 25, `${steps.length} points`);
  assert.equal(steps.at(-1), 1000);
  assert.equal(steps[0], 10);
});

Deno.test("plotRun errors name the file: missing log, empty log, log without step records", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(plotRun(dir), new RegExp(`'${dir}/metrics.jsonl' does not exist`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  await withRun("", async (d) => {
    await assert.rejects(plotRun(d), /holds no step record with a finite loss.*metrics\.jsonl/);
  });
  await withRun([{ kind: "epoch", step: 5, epoch: 0, loss: 1 }], async (d) => {
    await assert.rejects(plotRun(d), /Cannot plot run .*no step record/);
  });
  await withRun("not json\n{}\n", async (d) => {
    await assert.rejects(plotRun(d), /metrics\.jsonl': line 1 is not JSON/);
  });
});

Deno.test("writeChart refuses file names other than .svg/.png before rendering", async () => {
  await assert.rejects(
    writeChart({ mark: "point" }, ["/tmp/x.jpg"]),
    /'\/tmp\/x.jpg'.*\.svg or \.png/,
  );
});
