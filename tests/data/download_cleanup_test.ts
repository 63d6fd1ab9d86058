/**
 * What a failed download leaves in the data folder (a loopback server, 127.0.0.1 only): the
 * folders it created are removed when they end empty, and kept when they hold a verified file, a
 * `.part` to resume or a file set aside for its checksum; a folder that was there before stays.
 * The command line's cases (Fashion-MNIST through `--mirror`) are in tests/robustness/data_cases.ts.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type DatasetSource, downloadDataset } from "../../src/data/download.ts";
import { listTree } from "../robustness/harness.ts";
import { type RawAction, rawServer } from "./raw_http_server.ts";

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const a = Uint8Array.from({ length: 3000 }, (_, k) => (k * 13) & 255);
const b = Uint8Array.from({ length: 3000 }, (_, k) => (k * 31) & 255);
const options = {
  connectTimeoutMs: 250,
  idleTimeoutMs: 250,
  retries: 0,
  onProgress: () => {},
  log: () => {},
};

/** Two files `a.bin`, `b.bin` in `folder`, served by `base` (`b.bin` follows the server's plan). */
function twoFiles(base: string, folder: string, bMd5 = md5(b)): DatasetSource {
  return {
    folder,
    files: [
      { url: `${base}/a.bin`, file: "a.bin", md5: md5(a) },
      { url: `${base}/b.bin`, file: "b.bin", md5: bMd5 },
    ],
    ready: [`${folder}/a.bin`, `${folder}/b.bin`],
  };
}

/** Runs a download of `twoFiles` into `<tmp>/<under>` that must fail; returns what the tmp
 * folder holds afterwards (as {@link listTree} names it) and the error. */
async function failedDownload(
  plan: RawAction[],
  { under = "data", folder = "ds", before = [] as string[], bMd5 = md5(b) } = {},
): Promise<{ tree: string[]; error: Error }> {
  const server = rawServer({ "/a.bin": a, "/b.bin": b }, { "/b.bin": plan });
  const tmp = await Deno.makeTempDir();
  try {
    for (const d of before) await Deno.mkdir(`${tmp}/${d}`, { recursive: true });
    const error = await downloadDataset("two", {
      ...options,
      dataDir: `${tmp}/${under}`,
      source: twoFiles(server.base, folder, bMd5),
    }).then(() => assert.fail("the download succeeded"), (e: Error) => e);
    return { tree: listTree(tmp), error };
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("download cleanup: a verified file keeps the folders it created", async () => {
  const { tree, error } = await failedDownload([{ kind: "status", status: 404 }], {
    under: "data/new",
  });
  assert.match(error.message, /'b\.bin' .* failed: HTTP 404/);
  assert.deepEqual(tree, ["data/", "data/new/", "data/new/ds/", "data/new/ds/a.bin"]);
});

Deno.test("download cleanup: a first file that fails leaves nothing the download created", async () => {
  const server = rawServer({});
  const tmp = await Deno.makeTempDir();
  try {
    await assert.rejects(
      downloadDataset("two", {
        ...options,
        dataDir: `${tmp}/data/new`,
        source: twoFiles(server.base, "ds"),
      }),
      /'a\.bin' .* failed: HTTP 404/,
    );
    assert.deepEqual(listTree(tmp), []);
    // The data folder is the dataset's folder (folder ""), as for CIFAR and STL-10.
    await assert.rejects(
      downloadDataset("two", {
        ...options,
        dataDir: `${tmp}/data`,
        source: { ...twoFiles(server.base, ""), ready: ["a.bin", "b.bin"] },
      }),
      /failed: HTTP 404/,
    );
    assert.deepEqual(listTree(tmp), []);
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("download cleanup: folders that were there before stay, empty or not", async () => {
  const server = rawServer({});
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${tmp}/data/ds`, { recursive: true });
    const source = twoFiles(server.base, "ds");
    await assert.rejects(downloadDataset("two", { ...options, dataDir: `${tmp}/data`, source }));
    assert.deepEqual(listTree(tmp), ["data/", "data/ds/"]);
    await Deno.remove(`${tmp}/data/ds`);
    // Only the dataset folder is new: it goes, the data folder stays.
    await assert.rejects(downloadDataset("two", { ...options, dataDir: `${tmp}/data`, source }));
    assert.deepEqual(listTree(tmp), ["data/"]);
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("download cleanup: a kept .part or a file set aside keeps its folders", async () => {
  const stalled = await failedDownload([{ kind: "stall-body", after: 1000 }]);
  assert.match(stalled.error.message, /the 1000 bytes received are kept in '.*b\.bin\.part'/);
  assert.deepEqual(stalled.tree, ["data/", "data/ds/", "data/ds/a.bin", "data/ds/b.bin.part"]);
  const wrong = await failedDownload([{ kind: "ok" }], { bMd5: "0".repeat(32) });
  assert.match(wrong.error.message, /Checksum mismatch for 'b\.bin'/);
  assert.deepEqual(wrong.tree, [
    "data/",
    "data/ds/",
    "data/ds/a.bin",
    "data/ds/b.bin.md5-mismatch",
  ]);
});
