/**
 * Stopping a download (Ctrl-C): the `signal` of `downloadDataset`, aborted while the server stalls,
 * ends the fetch at once (no retry, no waiting for a timeout), keeps a `.part` for a resume, removes
 * the folders the download created when they are empty, and says so in a {@link StoppedError};
 * `extractTarGz` aborted leaves the destination unchanged. The command line (`download.ts`) does the
 * same on a real SIGINT and exits 130. Loopback server only (127.0.0.1).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type DatasetSource, downloadDataset } from "../../src/data/download.ts";
import { StoppedError } from "../../src/data/errors.ts";
import { extractTarGz } from "../../src/data/tar.ts";
import { listTree } from "../robustness/harness.ts";
import { tarGz } from "./archive_helpers.ts";
import { type RawAction, rawServer } from "./raw_http_server.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const bytes = Uint8Array.from({ length: 20_000 }, (_, k) => (k * 13) & 255);
const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

/** Resolves once `ready()` holds (polled), or fails after `ms`. */
async function until(ready: () => boolean, ms = 10_000): Promise<void> {
  const end = performance.now() + ms;
  while (!ready()) {
    if (performance.now() > end) throw new Error("timed out waiting for the server");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const size = (p: string) => {
  try {
    return Deno.statSync(p).size;
  } catch {
    return 0;
  }
};

/**
 * A download of one file whose server follows `plan`, stopped once `ready(tmp)` holds; returns
 * the error, what `tmp` holds afterwards and how long the stop took.
 */
async function stoppedDownload(
  plan: RawAction[],
  ready: (server: { requests: unknown[] }, tmp: string) => boolean,
  policy: { retries?: number; retryDelayMs?: number } = {},
): Promise<{ error: Error; tree: string[]; stopMs: number }> {
  const server = rawServer({ "/f.bin": bytes }, { "/f.bin": plan });
  const tmp = await Deno.makeTempDir();
  const source: DatasetSource = {
    folder: "ds",
    files: [{ url: `${server.base}/f.bin`, file: "f.bin", md5: md5(bytes) }],
    ready: ["ds/f.bin"],
  };
  const control = new AbortController();
  try {
    const done = downloadDataset("one", {
      dataDir: `${tmp}/data`,
      source,
      signal: control.signal,
      // Long timeouts: only the stop may end the attempt within this test's time.
      connectTimeoutMs: 60_000,
      idleTimeoutMs: 60_000,
      retries: policy.retries ?? 0,
      retryDelayMs: policy.retryDelayMs,
      onProgress: () => {},
      log: () => {},
    }).then(() => assert.fail("the download succeeded"), (e: Error) => e);
    await until(() => ready(server, tmp));
    const t0 = performance.now();
    control.abort("SIGINT");
    const error = await done;
    return { error, tree: listTree(tmp), stopMs: performance.now() - t0 };
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.test("download stop: before the first byte, nothing the download created is left", async () => {
  const { error, tree, stopMs } = await stoppedDownload(
    [{ kind: "stall-headers" }],
    (s) => s.requests.length > 0,
  );
  assert.ok(error instanceof StoppedError, String(error));
  assert.match(error.message, /'f\.bin' from http:\/\/127\.0\.0\.1:\d+\/f\.bin stopped \(SIGINT\)/);
  assert.match(error.message, /nothing was received: run --download again/);
  assert.deepEqual(tree, []);
  assert.ok(stopMs < 5_000, `the stop took ${stopMs} ms`);
});

Deno.test("download stop: in the middle of the body, the part stays for a resume", async () => {
  const { error, tree } = await stoppedDownload(
    [{ kind: "stall-body", after: 7000 }],
    (_, tmp) => size(`${tmp}/data/ds/f.bin.part`) === 7000,
  );
  assert.ok(error instanceof StoppedError, String(error));
  assert.match(
    error.message,
    /stopped \(SIGINT\); the 7000 bytes received are kept in '.*\/data\/ds\/f\.bin\.part': run --download again to resume/,
  );
  assert.deepEqual(tree, ["data/", "data/ds/", "data/ds/f.bin.part"]);
});

Deno.test("download stop: the wait before a retry ends at once", async () => {
  const { error, tree, stopMs } = await stoppedDownload(
    [{ kind: "status", status: 503 }],
    (s) => s.requests.length > 0,
    { retries: 3, retryDelayMs: 60_000 },
  );
  assert.ok(error instanceof StoppedError, String(error));
  assert.match(error.message, /stopped \(SIGINT\)/);
  assert.deepEqual(tree, []);
  assert.ok(stopMs < 5_000, `the stop took ${stopMs} ms (waited for the retry?)`);
});

Deno.test("download stop: an extraction stopped leaves the destination as it was", async () => {
  const tmp = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${tmp}/a.tgz`, await tarGz({ "d/x": Uint8Array.of(1), "d/y": bytes }));
    await Deno.mkdir(`${tmp}/out`);
    const control = new AbortController();
    control.abort("SIGTERM");
    await assert.rejects(
      extractTarGz(`${tmp}/a.tgz`, `${tmp}/out`, control.signal),
      (e: Error) =>
        e instanceof StoppedError &&
        /Extraction of '.*a\.tgz' stopped \(SIGTERM\): nothing of it was kept/.test(e.message),
    );
    assert.deepEqual(listTree(`${tmp}/out`), []);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

Deno.test("download stop: SIGINT to the command line exits 130, says what was kept, leaves no folder", async () => {
  const server = rawServer({}, { "/train-images-idx3-ubyte.gz": [{ kind: "stall-headers" }] });
  const tmp = await Deno.makeTempDir();
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-all",
        `${ROOT}src/data/download.ts`,
        "fashion-mnist",
        "--data-dir",
        `${tmp}/data`,
        "--mirror",
        server.base,
      ],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", RESSL_DOWNLOAD_CONNECT_TIMEOUT: "60" },
    }).spawn();
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await until(() => server.requests.length > 0, 30_000);
    child.kill("SIGINT");
    const out = await child.output();
    clearTimeout(killer);
    const text = new TextDecoder().decode(out.stderr) + new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 130, text);
    assert.match(text, /SIGINT: stopping/);
    assert.match(
      text,
      /error: Download of 'train-images-idx3-ubyte\.gz' .* stopped \(SIGINT\); nothing was received/,
    );
    assert.doesNotMatch(text, /^\s+at /m, "a stack trace was printed");
    assert.deepEqual(listTree(tmp), []);
  } finally {
    await server.close();
    await Deno.remove(tmp, { recursive: true });
  }
});
