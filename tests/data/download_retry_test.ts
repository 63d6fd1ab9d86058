/**
 * Downloads from servers that misbehave (a raw loopback server, 127.0.0.1 only): stalls before the
 * headers or mid-body are timed out and retried with resume, a server that keeps stalling ends in
 * a clear error that keeps the part file, more bytes than Content-Length is refused, and timeouts
 * and retries come from options or the environment. Timeouts are a few hundred milliseconds here.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { type DatasetSource, downloadDataset } from "../../src/data/download.ts";
import { resolveDownloadPolicy } from "../../src/data/download_http.ts";
import { tarGz } from "./archive_helpers.ts";
import { type RawAction, rawServer } from "./raw_http_server.ts";

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");
const quiet = { log: () => {} };

/** Rejects when `p` takes longer than `ms`: a download that hangs fails the test instead of
 * hanging it. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} hung for ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

const fast = { connectTimeoutMs: 250, idleTimeoutMs: 250, retryDelayMs: 5, onProgress: () => {} };

/** A one-file source served at `/f.bin` by `base`. */
function oneFile(base: string, bytes: Uint8Array): DatasetSource {
  return {
    folder: "",
    files: [{ url: `${base}/f.bin`, file: "f.bin", md5: md5(bytes) }],
    ready: ["f.bin"],
  };
}

async function withServer(
  bytes: Uint8Array,
  plan: RawAction[],
  body: (
    s: { base: string; dataDir: string; requests: { range: string | null }[] },
  ) => Promise<void>,
) {
  const server = rawServer({ "/f.bin": bytes }, { "/f.bin": plan });
  const dataDir = await Deno.makeTempDir();
  try {
    await body({ base: server.base, dataDir, requests: server.requests });
  } finally {
    await server.close();
    await Deno.remove(dataDir, { recursive: true });
  }
}

const payload = Uint8Array.from({ length: 5000 }, (_, k) => (k * 7) & 255);

Deno.test("download: a server that stalls before its headers or mid-body is retried, resuming with Range", async () => {
  await withServer(
    payload,
    [{ kind: "stall-headers" }, { kind: "stall-body", after: 1200 }, { kind: "ok" }],
    async ({ base, dataDir, requests }) => {
      const r = await within(
        downloadDataset("x", { dataDir, source: oneFile(base, payload), ...fast, ...quiet }),
        10_000,
        "download",
      );
      assert.deepEqual(r.downloaded, ["f.bin"]);
      assert.deepEqual(await Deno.readFile(`${dataDir}/f.bin`), payload);
      assert.deepEqual(requests.map((q) => q.range), [null, null, "bytes=1200-"]);
    },
  );
});

Deno.test("download: a server that keeps stalling ends in a clear error after the retries; the part is kept", async () => {
  await withServer(
    payload,
    [{ kind: "stall-body", after: 1000 }, { kind: "stall-body", after: 500 }],
    async ({ base, dataDir, requests }) => {
      await assert.rejects(
        within(
          downloadDataset("x", { dataDir, source: oneFile(base, payload), ...fast, ...quiet }),
          10_000,
          "download",
        ),
        (e: Error) => {
          assert.equal(e.name, "DataError");
          assert.match(
            e.message,
            /^Download of 'f\.bin' from http:\/\/127\.0\.0\.1:\d+\/f\.bin failed 4 times: interrupted after 2500 of 5000 bytes \(no data for 0\.25 s\); the 2500 bytes received are kept in '.*f\.bin\.part': run --download again to resume \(check the network; .*RESSL_DOWNLOAD_IDLE_TIMEOUT/,
          );
          return true;
        },
      );
      assert.equal(requests.length, 4, "1 attempt + 3 retries (the default)");
      assert.equal(Deno.statSync(`${dataDir}/f.bin.part`).size, 2500);
    },
  );
  await withServer(payload, [{ kind: "stall-headers" }], async ({ base, dataDir, requests }) => {
    await assert.rejects(
      within(
        downloadDataset("x", {
          dataDir,
          source: oneFile(base, payload),
          ...fast,
          retries: 1,
          ...quiet,
        }),
        10_000,
        "download",
      ),
      /failed 2 times: no response within 0\.25 s; run --download again \(check the network/,
    );
    assert.equal(requests.length, 2);
    assert.deepEqual([...Deno.readDirSync(dataDir)].map((e) => e.name), []);
  });
});

Deno.test("download: timeouts and retries come from the environment when not given", () => {
  const keys = [
    "RESSL_DOWNLOAD_CONNECT_TIMEOUT",
    "RESSL_DOWNLOAD_IDLE_TIMEOUT",
    "RESSL_DOWNLOAD_RETRIES",
  ];
  const saved = keys.map((k) => Deno.env.get(k));
  try {
    for (const k of keys) Deno.env.delete(k);
    assert.deepEqual(resolveDownloadPolicy(), {
      connectTimeoutMs: 30_000,
      idleTimeoutMs: 60_000,
      retries: 3,
      retryDelayMs: 1000,
    });
    Deno.env.set("RESSL_DOWNLOAD_CONNECT_TIMEOUT", "1.5");
    Deno.env.set("RESSL_DOWNLOAD_IDLE_TIMEOUT", "2");
    Deno.env.set("RESSL_DOWNLOAD_RETRIES", "0");
    assert.deepEqual(resolveDownloadPolicy({ retryDelayMs: 7 }), {
      connectTimeoutMs: 1500,
      idleTimeoutMs: 2000,
      retries: 0,
      retryDelayMs: 7,
    });
    assert.equal(
      resolveDownloadPolicy({ retries: 5 }).retries,
      5,
      "options win over the environment",
    );
    Deno.env.set("RESSL_DOWNLOAD_RETRIES", "many");
    assert.equal(resolveDownloadPolicy().retries, 3, "a value that is not a number is ignored");
  } finally {
    keys.forEach((k, i) =>
      saved[i] === undefined ? Deno.env.delete(k) : Deno.env.set(k, saved[i]!)
    );
  }
});

Deno.test("download: more bytes than Content-Length is named as such, not retried, nothing kept", async () => {
  await withServer(
    payload,
    [{ kind: "oversize", announced: 3000 }],
    async ({ base, dataDir, requests }) => {
      await assert.rejects(
        downloadDataset("x", { dataDir, source: oneFile(base, payload), ...fast, ...quiet }),
        (e: Error) => {
          assert.match(
            e.message,
            /'f\.bin' .* failed: the server sent more than it announced \(more than its Content-Length of 3000 bytes\)/,
          );
          assert.doesNotMatch(e.message, /check the network/);
          return true;
        },
      );
      assert.equal(requests.length, 1);
      assert.deepEqual([...Deno.readDirSync(dataDir)].map((e) => e.name), []);
    },
  );
});

Deno.test("download: a .gz served with Content-Encoding gzip arrives as its own bytes (MD5 matches)", async () => {
  const gz = await tarGz({ "a.txt": new TextEncoder().encode("hello ".repeat(100)) });
  await withServer(gz, [{ kind: "ok", gzipEncoded: true }], async ({ base, dataDir }) => {
    await downloadDataset("x", { dataDir, source: oneFile(base, gz), ...fast, ...quiet });
    assert.deepEqual(await Deno.readFile(`${dataDir}/f.bin`), gz);
  });
});
