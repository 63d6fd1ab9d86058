/**
 * Imports the library by URL (no clone, no config) and trains a tiny ReSSL encoder for a few
 * steps on random images, on the pure-TypeScript reference backend (no native library, no
 * permission beyond importing).
 *
 * ```sh
 * deno run --allow-import=<host> examples/url_import.ts <base-url-of-the-repo> [steps]
 * ```
 *
 * The server must send `.ts` files as TypeScript (`content-type: application/typescript`, as
 * GitHub's raw host does). `python3 -m http.server` on Debian sends `text/vnd.trolltech.linguist`
 * (a Qt translation file, from /etc/mime.types): Deno then reads mod.ts as JavaScript and stops
 * with `SyntaxError: Expected ',', got '*'` at its first `export type *`. A server that works
 * (tests/cli/url_import_test.ts uses the same):
 *
 * ```ts
 * Deno.serve({ hostname: "127.0.0.1", port: 8000 }, async (req) => {
 *   const path = new URL(req.url).pathname;
 *   const type = path.endsWith(".ts") ? "application/typescript"
 *     : path.endsWith(".json") ? "application/json" : "application/javascript";
 *   return new Response(await Deno.readFile(`.${path}`), { headers: { "content-type": type } });
 * });
 * ```
 *
 * @module
 */

const base = (Deno.args[0] ?? "").replace(/\/+$/, "");
if (!base) {
  console.error("usage: deno run --allow-import=<host> examples/url_import.ts <base-url> [steps]");
  Deno.exit(2);
}
const steps = Number(Deno.args[1] ?? 3);

// The URL is only known at run time, so the import is dynamic; its types are the ones of mod.ts.
const ressl: typeof import("../mod.ts") = await import(`${base}/mod.ts`);
const { createReferenceBackend, createContext, presetConfig, mergeConfig, validateConfig } = ressl;

// The fashion-mnist recipe shrunk to a toy: width 4, a small head and queue, batch 16.
const config = validateConfig(mergeConfig(presetConfig("fashion-mnist"), {
  model: { width: 4 },
  head: { hidden: 32, out: 16 },
  ressl: { queueSize: 64 },
  batchSize: 16,
  epochs: 1,
}, "the example"));

// 64 random 28x28 grey images stand in for a dataset.
const n = 64, size = config.image.size;
const images = new Uint8Array(n * size * size);
for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
const dataset = ressl.memoryDataset({
  name: "random",
  images,
  height: size,
  width: size,
  channels: 1,
});

const backend = createReferenceBackend();
const ctx = createContext(backend);
const root = ressl.rngKey(config.seed);
const views = ressl.trainViews(config);
const loader = new ressl.Loader({
  dataset,
  weak: views.weak,
  strong: views.strong,
  key: root,
  batchSize: config.batchSize,
  workers: 0,
});
const step = ressl.createTrainStep(ressl.trainStepConfig(config, loader.batchesPerEpoch()));
let state = ressl.initTrainState(ctx, config);
try {
  for await (const b of loader.epoch(0)) {
    if (state.step >= steps) break;
    const current = state;
    const next = ctx.scope(() =>
      step(current, {
        weak: ctx.fromArray(b.weak, [b.indices.length, 1, size, size]),
        strong: ctx.fromArray(b.strong, [b.indices.length, 1, size, size]),
        extraStrong: [],
      }, ressl.foldIn(root, ressl.nameId("step"), current.step))
    );
    ressl.disposeTrainState(state);
    state = next.state;
    console.log(
      `step ${state.step}: loss ${next.metrics.loss.item().toFixed(4)}, lr ${next.metrics.lr}`,
    );
    next.metrics.loss.dispose();
  }
} finally {
  ressl.disposeTrainState(state);
  await loader[Symbol.asyncDispose]();
  backend.dispose();
}
