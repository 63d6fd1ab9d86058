import assert from "node:assert/strict";
import { embeddingMap } from "../../src/plot/embedding_map.ts";
import { svgSize } from "../../src/plot/render.ts";
import { clusters, readPng } from "./helpers.ts";

const CLASSES = ["cat", "dog", "ship"];
const TABLEAU = ["#4e79a7", "#f28e2b", "#e15759"];

Deno.test("embeddingMap writes SVG and PNG: one circle per point, coloured by class, legend names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot-map-" });
  try {
    const n = 90, dim = 12;
    const { x, labels } = clusters(n, dim, 3, 3, 11);
    const out = [`${dir}/map.svg`, `${dir}/map.png`];
    const r = await embeddingMap({
      features: x,
      dim,
      labels,
      classes: CLASSES,
      out,
      perplexity: 15,
      iterations: 400,
      title: "three classes",
      scale: 1.5,
    });
    assert.deepEqual({ svg: r.svg, png: r.png }, { svg: [out[0]], png: [out[1]] });
    assert.equal(r.coords.length, 2 * n);
    const svg = await Deno.readTextFile(out[0]);
    assert.ok(svg.includes(">three classes</text>"));
    for (const c of CLASSES) assert.ok(svg.includes(`>${c}</text>`), `legend lacks '${c}'`);
    const circles = [
      ...svg.matchAll(/aria-label="x: [^"]*; class: (\w+)"[^>]*fill="(#[0-9a-f]+)"/g),
    ];
    assert.equal(circles.length, n);
    for (const [, name, fill] of circles) assert.equal(fill, TABLEAU[CLASSES.indexOf(name)]);
    for (let c = 0; c < 3; c++) {
      assert.equal(circles.filter((m) => m[1] === CLASSES[c]).length, n / 3);
    }
    const png = readPng(out[1]);
    const size = svgSize(svg);
    assert.equal(png.width, Math.round(size.width * 1.5));
    assert.equal(png.height, Math.round(size.height * 1.5));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embeddingMap shows unlabelled points and names classes by index without names", async () => {
  const dir = await Deno.makeTempDir({ prefix: "plot-map-" });
  try {
    const { x, labels } = clusters(30, 4, 2, 3, 2);
    labels[0] = -1;
    await embeddingMap({ features: x, dim: 4, labels, out: `${dir}/m.svg`, iterations: 50 });
    const svg = await Deno.readTextFile(`${dir}/m.svg`);
    for (const t of ["(no label)", "0", "1", "t-SNE of 30 embeddings"]) {
      assert.ok(svg.includes(`>${t}</text>`), `lacks '${t}'`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("embeddingMap rejects mismatched labels, ragged features and bad file names", async () => {
  const { x, labels } = clusters(20, 4, 2, 3);
  const base = { features: x, dim: 4, labels, out: "/tmp/never-written.svg" };
  await assert.rejects(embeddingMap({ ...base, labels: labels.subarray(1) }), /19 labels for 20/);
  await assert.rejects(embeddingMap({ ...base, dim: 3 }), /80 feature values .* dimension 3/);
  await assert.rejects(embeddingMap({ ...base, out: "/tmp/m.pdf" }), /must end in \.svg or \.png/);
  await assert.rejects(embeddingMap({ ...base, out: [] }), /no output file/);
});
