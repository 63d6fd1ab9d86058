/**
 * Robustness cases of the data and file-format layer (issue 14, cases 4, 5 and 9, and the earlier
 * ones): bad dataset files through `src/data/inspect.ts`, stalling and lying servers through
 * `src/data/download.ts`, and bad safetensors files and archives through their functions.
 */
import jpeg from "jpeg-js";
import { decodeSafetensors, readSafetensors } from "../../src/io/safetensors.ts";
import { extractTarGz } from "../../src/data/tar.ts";
import { cifar10Batch, tarGz } from "../data/archive_helpers.ts";
import { gzipBomb, rawPng } from "../data/bombs.ts";
import { type RawAction, rawServer } from "../data/raw_http_server.ts";
import type { RobustnessCase, Setup } from "./harness.ts";

const FIX = new URL("../data/fixtures/", import.meta.url).pathname;

/** Writes `files` (path relative to `dir` -> bytes), creating folders. */
async function put(dir: string, files: Record<string, Uint8Array | string>): Promise<void> {
  for (const [p, b] of Object.entries(files)) {
    await Deno.mkdir(`${dir}/${p}`.slice(0, `${dir}/${p}`.lastIndexOf("/")), { recursive: true });
    await Deno.writeFile(`${dir}/${p}`, typeof b === "string" ? new TextEncoder().encode(b) : b);
  }
}

function idx(dims: number[], data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  out.set([0, 0, 8, dims.length]);
  dims.forEach((d, k) => new DataView(out.buffer).setUint32(4 + 4 * k, d, false));
  out.set(data, 4 + 4 * dims.length);
  return out;
}

const FM = "fashion-mnist";
/** An inspect run of `dataset` on the case's folder. */
const inspect = (dataset: string, split = "train") => ({
  cli: "src/data/inspect.ts",
  args: (dir: string) => [dataset, "--data-dir", dir, "--split", split],
});
const labels = idx([2], Uint8Array.of(1, 2));

/** Fashion-MNIST train files with the given images file. */
const fashion = (images: Uint8Array, name = "train-images-idx3-ubyte") => (dir: string) =>
  put(dir, { [`${FM}/${name}`]: images, [`${FM}/train-labels-idx1-ubyte`]: labels });

/** Bytes that do not compress (a multiplicative hash). */
const noise = (n: number) =>
  Uint8Array.from({ length: n }, (_, k) => Math.imul(k + 1, 2654435761) >>> 24);
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, k) => (k * 29) & 255);
const jpg = new Uint8Array(
  jpeg.encode({ width: 16, height: 16, data: pattern(16 * 16 * 4) }, 90).data,
);
/** A Tiny-ImageNet train folder holding one good image and `bad` (name -> bytes) in class n01. */
const tiny = (bad: Record<string, Uint8Array | string>) => (dir: string) => {
  const files: Record<string, Uint8Array | string> = {
    "tiny-imagenet-200/train/n01/good.jpg": jpg,
  };
  for (const [k, v] of Object.entries(bad)) files[`tiny-imagenet-200/train/n01/${k}`] = v;
  return put(dir, files);
};

/** Short timeouts and one retry for the download cases. */
const DOWNLOAD_ENV = {
  RESSL_DOWNLOAD_CONNECT_TIMEOUT: "0.3",
  RESSL_DOWNLOAD_IDLE_TIMEOUT: "0.3",
  RESSL_DOWNLOAD_RETRIES: "1",
};

/** A download of cifar10 from a raw server (at `--mirror`) that follows `plan`. */
function download(plan: RawAction[]): Pick<RobustnessCase, "setup" | "run"> {
  const archive = "/cifar-10-binary.tar.gz";
  return {
    setup: (): Setup => {
      const bytes = pattern(20_000);
      const s = rawServer({ [archive]: bytes }, { [archive]: plan });
      return { url: s.base, close: () => s.close() };
    },
    run: {
      cli: "src/data/download.ts",
      args: (dir, setup) => ["cifar10", "--data-dir", dir, "--mirror", setup.url!],
      env: DOWNLOAD_ENV,
    },
  };
}

/** The Fashion-MNIST images file, the first one `--download fashion-mnist` fetches. */
const FM_FIRST = "train-images-idx3-ubyte.gz";
/**
 * A download of fashion-mnist from a raw server (at `--mirror`) into `--data-dir <dir>/<under>`:
 * the first file follows `plan`, or, without a plan, the server has no files at all (HTTP 404).
 */
function fashionDownload(
  plan?: RawAction[],
  under = "",
): Pick<RobustnessCase, "setup" | "run"> {
  return {
    setup: (): Setup => {
      const s = plan
        ? rawServer({ [`/${FM_FIRST}`]: pattern(20_000) }, { [`/${FM_FIRST}`]: plan })
        : rawServer({});
      return { url: s.base, close: () => s.close() };
    },
    run: {
      cli: "src/data/download.ts",
      env: DOWNLOAD_ENV,
      args: (dir, setup) => [FM, "--data-dir", `${dir}${under}`, "--mirror", setup.url!],
    },
  };
}

const st = (header: string, data = new Uint8Array(0)) => {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
};
const t4 = (name: string, at: number) =>
  `"${name}":{"dtype":"F32","shape":[1],"data_offsets":[${at},${at + 4}]}`;

/** The cases. */
export const DATA_CASES: RobustnessCase[] = [
  // --- IDX (Fashion-MNIST) ---
  {
    name: "14 IDX: truncated images file",
    setup: fashion(idx([2, 28, 28], pattern(1568)).subarray(0, 1000)),
    run: inspect(FM),
    expect: {
      keywords: [/train-images-idx3-ubyte'/, /bytes short of its 2x28x28 data \(truncated/],
    },
  },
  {
    name: "14 IDX: garbage instead of an IDX file",
    setup: fashion(new TextEncoder().encode("<html>404 Not Found</html>")),
    run: inspect(FM),
    expect: { keywords: [/bad magic 0x3c68746d/, /not an IDX file\?/] },
  },
  {
    name: "14 IDX: corrupt gzip",
    setup: fashion(
      gzipBomb(idx([2, 28, 28], noise(1568)), 0).subarray(0, 800),
      "train-images-idx3-ubyte.gz",
    ),
    run: inspect(FM),
    expect: { keywords: [/train-images-idx3-ubyte\.gz': gzip data is corrupt or truncated/] },
  },
  {
    name: "14.5 IDX: a 1.5 MB gzip bomb stops inflating at the header's declared size",
    setup: fashion(
      gzipBomb(idx([2, 28, 28], new Uint8Array(0)), 1536),
      "train-images-idx3-ubyte.gz",
    ),
    run: inspect(FM),
    expect: { keywords: [/gzip data inflates beyond the 1584 bytes its header declares/] },
  },
  {
    name: "14.5 IDX: a header declaring more than the gzip can hold is refused before inflating",
    setup: fashion(
      gzipBomb(idx([60000, 280, 280], new Uint8Array(0)), 1),
      "train-images-idx3-ubyte.gz",
    ),
    run: inspect(FM),
    expect: {
      keywords: [
        /declares 60000x280x280 data \(4704000016 bytes\)/,
        /(above the limit|can hold at most)/,
      ],
    },
  },
  // --- CIFAR-10, STL-10 ---
  {
    name: "14 CIFAR-10: truncated batch",
    setup: async (dir) => {
      const files: Record<string, Uint8Array> = {};
      for (let b = 1; b <= 5; b++) {
        files[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifar10Batch([1, 2], b);
      }
      files["cifar-10-batches-bin/data_batch_4.bin"] = cifar10Batch([1, 2], 4).subarray(0, 5000);
      await put(dir, files);
    },
    run: inspect("cifar10"),
    expect: {
      keywords: [
        /CIFAR-10 batch 'data_batch_4\.bin': file is 1146 bytes short \(truncated download\?\)/,
      ],
    },
  },
  {
    name: "14 CIFAR-10: garbage batch (labels out of range)",
    setup: async (dir) => {
      const files: Record<string, Uint8Array> = {};
      for (let b = 1; b <= 5; b++) {
        files[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifar10Batch([1, 2], b);
      }
      files["cifar-10-batches-bin/data_batch_2.bin"] = new Uint8Array(3073).fill(200);
      await put(dir, files);
    },
    run: inspect("cifar10"),
    expect: {
      keywords: [
        /'data_batch_2\.bin': record 0 has label 200, expected 0\.\.9 \(not a CIFAR-10 binary file\?\)/,
      ],
    },
  },
  {
    name: "14 STL-10: truncated images",
    setup: (dir) =>
      put(dir, {
        "stl10_binary/train_X.bin": pattern(96 * 96 * 3 * 2 - 100),
        "stl10_binary/train_y.bin": Uint8Array.of(1, 2),
      }),
    run: inspect("stl10"),
    expect: {
      keywords: [
        /STL-10 images '.*train_X\.bin'/,
        /bytes short of a whole number of 96x96x3 images \(truncated download\?\)/,
      ],
    },
  },
  {
    name: "14 STL-10: garbage labels",
    setup: (dir) =>
      put(dir, {
        "stl10_binary/train_X.bin": pattern(96 * 96 * 3),
        "stl10_binary/train_y.bin": Uint8Array.of(77),
      }),
    run: inspect("stl10"),
    expect: { keywords: [/STL-10 labels '.*train_y\.bin': label 0 is 77, expected 1\.\.10/] },
  },
  // --- images (a Tiny-ImageNet folder) ---
  {
    name: "14.5 PNG: 65 bytes claiming 20000x20000 pixels",
    setup: tiny({ "bomb.png": rawPng(20000, 20000, new Uint8Array(0)) }),
    run: inspect("tiny-imagenet"),
    expect: {
      keywords: [
        /'.*bomb\.png': its header declares 20000x20000 pixels \(400\.0 megapixels\), above the limit/,
      ],
    },
  },
  {
    name: "14.5 PNG: pixel data missing (would decode as black)",
    setup: tiny({ "short.png": rawPng(16, 16, new Uint8Array(2 * 49)) }),
    run: inspect("tiny-imagenet"),
    expect: {
      keywords: [
        /'.*short\.png': pixel data is 686 of 784 bytes short for its 16x16 pixels \(truncated PNG\?\)/,
      ],
    },
  },
  {
    name: "14.5 JPEG: a frame header claiming 30000x30000 pixels",
    setup: (dir) => {
      const big = jpg.slice();
      let at = 2;
      while (big[at + 1] !== 0xc0) at += 2 + ((big[at + 2] << 8) | big[at + 3]);
      big.set([30000 >> 8, 30000 & 255, 30000 >> 8, 30000 & 255], at + 5);
      return tiny({ "big.jpg": big })(dir);
    },
    run: inspect("tiny-imagenet"),
    expect: {
      keywords: [/'.*big\.jpg': its header declares 30000x30000 pixels \(900\.0 megapixels\)/],
    },
  },
  {
    name: "14 JPEG: truncated file",
    setup: tiny({ "cut.jpg": jpg.subarray(0, Math.floor(jpg.length * 0.6)) }),
    run: inspect("tiny-imagenet"),
    expect: { keywords: [/'.*cut\.jpg': .*corrupt or truncated JPEG/] },
  },
  {
    name: "14 image: garbage with an image name",
    setup: tiny({ "page.jpg": "<html>captive portal</html>" }),
    run: inspect("tiny-imagenet"),
    expect: { keywords: [/'.*page\.jpg': not a JPEG, PNG or WebP file/] },
  },
  {
    name: "14 WebP: truncated file",
    setup: (dir) => {
      const w = Deno.readFileSync(`${FIX}pattern_lossy.webp`);
      return tiny({ "cut.webp": w.subarray(0, w.length - 30) })(dir);
    },
    run: inspect("tiny-imagenet"),
    expect: { keywords: [/'.*cut\.webp': .*corrupt or truncated WebP/] },
  },
  {
    name: "13 image folder: GIF and HEIC refused by name with the supported formats",
    setup: tiny({ "anim.gif": "GIF89a\x01\0\x01\0", "phone.heic": "\0\0\0\x18ftypheic\0\0\0\0" }),
    run: inspect("tiny-imagenet"),
    expect: {
      keywords: [
        /2 images are in a format that is not supported: '.*anim\.gif' \(GIF\), '.*phone\.heic' \(HEIC\)/,
        /Supported formats: JPEG, PNG, WebP/,
      ],
    },
  },
  // --- downloads ---
  {
    name: "14.4 download: a server that never answers times out, retries, says so",
    ...download([{ kind: "stall-headers" }]),
    expect: {
      keywords: [
        /cifar-10-binary\.tar\.gz' from http:\/\/127\.0\.0\.1:\d+\/cifar-10-binary\.tar\.gz failed 2 times: no response within 0\.3 s/,
        /RESSL_DOWNLOAD_CONNECT_TIMEOUT/,
      ],
    },
  },
  {
    name: "14.4 download: a body that stalls keeps the part for resume",
    ...download([{ kind: "stall-body", after: 7000 }]),
    expect: {
      keywords: [
        /failed 2 times: interrupted after 14000 of 20000 bytes \(no data for 0\.3 s\); the 14000 bytes received are kept in '.*cifar-10-binary\.tar\.gz\.part': run --download again to resume/,
      ],
      created: ["cifar-10-binary.tar.gz.part"],
    },
  },
  {
    name: "14.9 download: more bytes than Content-Length",
    ...download([{ kind: "oversize", announced: 5000 }]),
    expect: {
      keywords: [
        /the server sent more than it announced \(more than its Content-Length of 5000 bytes\)/,
      ],
    },
  },
  {
    name: "14 download: a failed Fashion-MNIST download leaves no empty dataset folder",
    ...fashionDownload(),
    expect: {
      keywords: [/Download of 'train-images-idx3-ubyte\.gz' from .* failed: HTTP 404/],
    },
  },
  {
    name: "14 download: a failed download removes the data folders it created, empty",
    ...fashionDownload(undefined, "/new/data"),
    expect: { keywords: [/failed: HTTP 404/] },
  },
  {
    name: "14 download: a dataset folder that was there before the failure stays",
    ...fashionDownload(),
    setup: async (dir) => {
      await Deno.mkdir(`${dir}/${FM}`);
      return (fashionDownload().setup as () => Setup)();
    },
    expect: { keywords: [/failed: HTTP 404/] },
  },
  {
    name: "14.4 download: the dataset folder stays when it keeps a part for resume",
    ...fashionDownload([{ kind: "stall-body", after: 7000 }]),
    expect: {
      keywords: [
        /the 14000 bytes received are kept in '.*fashion-mnist\/train-images-idx3-ubyte\.gz\.part'/,
      ],
      created: [`${FM}/`, `${FM}/${FM_FIRST}.part`],
    },
  },
  // --- archives ---
  {
    name: "14.9 tar: a file and a folder of the same name",
    setup: async (dir) =>
      put(dir, { "a.tgz": await tarGz({ "d/x": Uint8Array.of(1), "d/x/y": Uint8Array.of(2) }) }),
    run: { call: (dir) => extractTarGz(`${dir}/a.tgz`, `${dir}/out`) },
    expect: {
      errorName: "DataError",
      keywords: [
        /entry 'd\/x\/y' needs 'd\/x' to be a folder, but the archive also has a file of that name/,
      ],
      created: ["out/"],
    },
  },
  // --- safetensors ---
  {
    // Two identical entries: a valid file either way, so JSON.parse (which keeps the last) used to
    // accept it; entries of different offsets would fail another check (a gap) anyway.
    name: "14.9 safetensors: duplicate tensor name",
    setup: (dir) =>
      put(dir, { "w.safetensors": st(`{${t4("a", 0)},${t4("a", 0)}}`, new Uint8Array(4)) }),
    run: { call: (dir) => readSafetensors(`${dir}/w.safetensors`) },
    expect: {
      errorName: "Error",
      keywords: [/'.*w\.safetensors': duplicate key 'a' in the header/],
    },
  },
  {
    name: "14 safetensors: header length beyond the file",
    setup: () => {},
    run: {
      call: () =>
        decodeSafetensors(st("{}").map((b, i) => (i === 0 ? 200 : b)), { source: "h.safetensors" }),
    },
    expect: {
      errorName: "Error",
      keywords: [
        /'h\.safetensors': it is truncated or not a safetensors file \(its first 8 bytes give a header length of 200, but the file has 10 bytes\)/,
      ],
    },
  },
  {
    name: "14 safetensors: truncated data",
    setup: (dir) =>
      put(dir, { "t.safetensors": st(`{${t4("a", 0)},${t4("b", 4)}}`, new Uint8Array(6)) }),
    run: { call: (dir) => readSafetensors(`${dir}/t.safetensors`) },
    expect: {
      errorName: "Error",
      keywords: [
        /tensor 'b' ends at data byte 8 but the file holds only 6 data bytes \(truncated\?\)/,
      ],
    },
  },
  {
    name: "14 safetensors: header is not JSON",
    setup: (dir) => put(dir, { "g.safetensors": st("{garbage") }),
    run: { call: (dir) => readSafetensors(`${dir}/g.safetensors`) },
    expect: { errorName: "Error", keywords: [/header is not valid UTF-8 JSON/] },
  },
];
