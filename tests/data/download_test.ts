/**
 * Download tests against a loopback HTTP server (127.0.0.1) serving small synthetic archives in the
 * real formats: a good one, one whose connection drops halfway (resume), one with a wrong checksum
 * and a truncated one. No test touches the internet.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readCifar10 } from "../../src/data/datasets/cifar.ts";
import { type DatasetSource, downloadDataset } from "../../src/data/download.ts";
import type { DownloadProgress } from "../../src/data/download_http.ts";
import { extractTarGz } from "../../src/data/tar.ts";
import { cifar10Files, tarGz } from "./archive_helpers.ts";

const md5 = (b: Uint8Array) => createHash("md5").update(b).digest("hex");

interface Served {
  bytes: Uint8Array;
  /** Drop the connection after this many bytes on the first request. */
  dropAfter?: number;
}

/** A loopback server with Range support; records every request's path and Range header. */
function serve(files: Record<string, Served>) {
  const requests: { path: string; range: string | null }[] = [];
  const dropped = new Set<string>();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    const range = req.headers.get("range");
    requests.push({ path, range });
    const f = files[path];
    if (!f) return new Response("not found", { status: 404 });
    let start = 0;
    if (range) {
      start = Number(/bytes=(\d+)-/.exec(range)![1]);
      if (start >= f.bytes.length) return new Response(null, { status: 416 });
    }
    const body = f.bytes.slice(start) as Uint8Array<ArrayBuffer>;
    const headers = { "content-length": String(body.length) };
    if (f.dropAfter !== undefined && !dropped.has(path)) {
      dropped.add(path);
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(body.slice(0, f.dropAfter));
        },
        pull(c) {
          c.error(new Error("connection reset by test"));
        },
      });
      return new Response(stream, { status: range ? 206 : 200, headers });
    }
    return new Response(body, { status: range ? 206 : 200, headers });
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return { server, requests, base };
}

function cifarSource(base: string, path: string, sum: string): DatasetSource {
  return {
    folder: "",
    files: [{ url: base + path, file: "cifar-10-binary.tar.gz", md5: sum, extract: true }],
    ready: ["cifar-10-batches-bin/test_batch.bin"],
  };
}

const quiet = { log: () => {} };

Deno.test("download: fetch, verify, extract, read; a second run fetches nothing", async () => {
  const archive = await tarGz(cifar10Files());
  const { server, requests, base } = serve({ "/c10.tgz": { bytes: archive } });
  const dataDir = await Deno.makeTempDir();
  try {
    const progress: DownloadProgress[] = [];
    const source = cifarSource(base, "/c10.tgz", md5(archive));
    const r = await downloadDataset("cifar10", {
      dataDir,
      source,
      onProgress: (p) => progress.push(p),
      ...quiet,
    });
    assert.deepEqual(r, {
      alreadyPresent: false,
      downloaded: ["cifar-10-binary.tar.gz"],
      extracted: ["cifar-10-batches-bin"],
    });
    const last = progress.at(-1)!;
    assert.equal(last.done, true);
    assert.equal(last.received, archive.length);
    assert.equal(last.total, archive.length);
    const ds = await readCifar10({ root: dataDir, split: "test" });
    assert.deepEqual([...ds.labels!], [0, 9, 3]);
    assert.equal((await readCifar10({ root: dataDir, split: "train" })).length, 10);
    const names = [...Deno.readDirSync(dataDir)].map((e) => e.name).sort();
    assert.deepEqual(
      names,
      ["cifar-10-batches-bin", "cifar-10-binary.tar.gz"],
      "no .part or temp folder left",
    );
    const again = await downloadDataset("cifar10", { dataDir, source, ...quiet });
    assert.equal(again.alreadyPresent, true);
    assert.equal(requests.length, 1);
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("download: a dropped connection keeps the part file; the next run resumes with Range", async () => {
  const archive = await tarGz(cifar10Files());
  const half = Math.floor(archive.length / 2);
  const { server, requests, base } = serve({ "/c10.tgz": { bytes: archive, dropAfter: half } });
  const dataDir = await Deno.makeTempDir();
  try {
    const source = cifarSource(base, "/c10.tgz", md5(archive));
    await assert.rejects(
      downloadDataset("cifar10", { dataDir, source, retries: 0, onProgress: () => {}, ...quiet }),
      /'cifar-10-binary\.tar\.gz' .*(interrupted|stopped) after \d+ (of \d+ )?bytes.*run --download again to resume/,
    );
    const partSize = Deno.statSync(`${dataDir}/cifar-10-binary.tar.gz.part`).size;
    assert.ok(partSize > 0 && partSize < archive.length, `part holds ${partSize} bytes`);
    const r = await downloadDataset("cifar10", { dataDir, source, onProgress: () => {}, ...quiet });
    assert.deepEqual(r.downloaded, ["cifar-10-binary.tar.gz"]);
    assert.equal(requests[1].range, `bytes=${partSize}-`);
    assert.equal((await readCifar10({ root: dataDir, split: "test" })).length, 3);
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("download: a checksum mismatch keeps verified files, sets the bad one aside, says what to do", async () => {
  const good = [1, 2, 3].map((k) => new Uint8Array(1000 * k).fill(k));
  const wrong = new Uint8Array(3000).fill(7);
  const { server, base } = serve({
    "/a.gz": { bytes: good[0] },
    "/b.gz": { bytes: good[1] },
    "/c.gz": { bytes: wrong },
  });
  const dataDir = await Deno.makeTempDir();
  try {
    const source: DatasetSource = {
      folder: "fm",
      files: ["a", "b", "c"].map((n, k) => ({
        url: `${base}/${n}.gz`,
        file: `${n}.gz`,
        md5: md5(good[k]),
      })),
      ready: ["fm/a.gz", "fm/b.gz", "fm/c.gz"],
    };
    await assert.rejects(
      downloadDataset("fm", { dataDir, source, onProgress: () => {}, ...quiet }),
      (e: Error) => {
        assert.match(
          e.message,
          /Checksum mismatch for 'c\.gz' downloaded from http:\/\/127\.0\.0\.1:\d+\/c\.gz: md5 [0-9a-f]{32}, expected/,
        );
        assert.match(
          e.message,
          /set aside as '.*c\.gz\.md5-mismatch' \(files verified before are kept\)\. Run --download again/,
        );
        return true;
      },
    );
    const names = [...Deno.readDirSync(`${dataDir}/fm`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["a.gz", "b.gz", "c.gz.md5-mismatch"]);
    assert.deepEqual(await Deno.readFile(`${dataDir}/fm/a.gz`), good[0]);
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("download: a truncated archive (checksum matching) fails extraction and leaves no half-written folder", async () => {
  const archive = await tarGz(cifar10Files());
  const truncated = archive.subarray(0, Math.floor(archive.length * 0.6));
  const { server, base } = serve({ "/t.tgz": { bytes: truncated } });
  const dataDir = await Deno.makeTempDir();
  try {
    const source = cifarSource(base, "/t.tgz", md5(truncated));
    await assert.rejects(
      downloadDataset("cifar10", { dataDir, source, onProgress: () => {}, ...quiet }),
      /Cannot extract '.*cifar-10-binary\.tar\.gz': .*(truncated|corrupt).*delete it and run --download again/,
    );
    const names = [...Deno.readDirSync(dataDir)].map((e) => e.name);
    assert.deepEqual(names, ["cifar-10-binary.tar.gz"], "no extracted folder, no temp folder");
  } finally {
    await server.shutdown();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("tar: archives made by GNU tar (long names, directories) extract exactly", async () => {
  const src = await Deno.makeTempDir();
  const dest = await Deno.makeTempDir();
  try {
    const long = "d/" + "x".repeat(120) + "/file.bin";
    const files: Record<string, Uint8Array> = {
      "d/a.bin": Uint8Array.from({ length: 5000 }, (_, k) => k & 255),
      "d/empty.bin": new Uint8Array(0),
      [long]: new Uint8Array(513).fill(9),
    };
    for (const [p, b] of Object.entries(files)) {
      await Deno.mkdir(`${src}/${p.slice(0, p.lastIndexOf("/"))}`, { recursive: true });
      await Deno.writeFile(`${src}/${p}`, b);
    }
    for (const format of ["gnu", "posix"]) {
      const out = await new Deno.Command("tar", {
        args: [`--format=${format}`, "-czf", `${src}/a.tgz`, "-C", src, "d"],
      }).output();
      if (!out.success) throw new Error(new TextDecoder().decode(out.stderr));
      const into = `${dest}/${format}`;
      assert.deepEqual(await extractTarGz(`${src}/a.tgz`, into), ["d"]);
      for (const [p, b] of Object.entries(files)) {
        assert.deepEqual(await Deno.readFile(`${into}/${p}`), b, p);
      }
    }
  } finally {
    await Deno.remove(src, { recursive: true });
    await Deno.remove(dest, { recursive: true });
  }
});

Deno.test("download CLI: an unknown dataset exits non-zero with the reason", async () => {
  const script = new URL("../../src/data/download.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", script, "cifar11"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /error: Cannot download 'cifar11': no known source \(downloadable: cifar10, cifar100, stl10, fashion-mnist\)/,
  );
});

Deno.test("tar: a file and a folder of the same name are named as such, not as corrupt gzip", async () => {
  const dest = await Deno.makeTempDir();
  try {
    const bytes = new Uint8Array(10).fill(1);
    for (
      const [order, entry, clash] of [
        [{ "d/x": bytes, "d/x/y": bytes }, "d/x/y", "file"],
        [{ "d/x/y": bytes, "d/x": bytes }, "d/x", "folder"],
      ] as const
    ) {
      await Deno.writeFile(`${dest}/a.tgz`, await tarGz(order));
      await assert.rejects(extractTarGz(`${dest}/a.tgz`, `${dest}/out`), (e: Error) => {
        assert.equal(e.name, "DataError");
        assert.match(
          e.message,
          new RegExp(
            `^Cannot extract '.*a\\.tgz': entry '${entry}' needs 'd/x' to be a (file|folder), but the archive also has a ${clash} of that name \\(a file and a folder with the same path`,
          ),
        );
        assert.doesNotMatch(e.message, /gzip/);
        return true;
      });
      assert.deepEqual([...Deno.readDirSync(`${dest}/out`)], [], "nothing extracted");
    }
  } finally {
    await Deno.remove(dest, { recursive: true });
  }
});
