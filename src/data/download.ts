/**
 * `--download`: fetches CIFAR-10/100 (binary), STL-10 (binary) and Fashion-MNIST from their
 * canonical URLs into the data folder, with a progress bar, resume of partial files, the published
 * MD5 of every file, and `.tar.gz` extraction. Nothing verified is ever deleted: a file that fails
 * its checksum is set aside as `<name>.md5-mismatch` and the error says what to do. A failed
 * download removes the folders it created that are left empty (nothing else).
 *
 * Command line: `deno run --allow-all src/data/download.ts <dataset> [--data-dir DIR] [--mirror URL]`.
 *
 * @module
 */

import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { DataError, StoppedError, stopReason } from "./errors.ts";
import { stopOnSignals } from "./stop_signals.ts";
import {
  consoleProgress,
  type DownloadPolicy,
  type DownloadProgress,
  fetchResumable,
  md5File,
} from "./download_http.ts";
import { extractTarGz } from "./tar.ts";

/** One file of a dataset's download. */
export interface RemoteFile {
  /** Where to fetch it (https). */
  url: string;
  /** File name in the download folder. */
  file: string;
  /** Published MD5, hex. */
  md5: string;
  /** A .tar.gz to extract after verification. */
  extract?: boolean;
}

/** Where a dataset comes from and what shows that it is in place. */
export interface DatasetSource {
  /** Sub-folder of the data folder for the downloaded files ("" = the data folder itself). */
  folder: string;
  /** The files to fetch. */
  files: RemoteFile[];
  /** Paths (relative to the data folder) that exist once the dataset is ready to read. */
  ready: string[];
}

const FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/**
 * Canonical sources. MD5s: CIFAR and STL-10 as published by their authors (STL-10's equals
 * torchvision's `tgz_md5`); Fashion-MNIST's as in torchvision's `FashionMNIST.resources`.
 */
export const DATASET_SOURCES: Readonly<Record<string, DatasetSource>> = {
  "cifar10": {
    folder: "",
    files: [{
      url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
      file: "cifar-10-binary.tar.gz",
      md5: "c32a1d4ab5d03f1284b67883e8d87530",
      extract: true,
    }],
    ready: ["cifar-10-batches-bin/test_batch.bin"],
  },
  "cifar100": {
    folder: "",
    files: [{
      url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
      file: "cifar-100-binary.tar.gz",
      md5: "03b5dce01913d631647c71ecec9e9cb8",
      extract: true,
    }],
    ready: ["cifar-100-binary/test.bin"],
  },
  "stl10": {
    folder: "",
    files: [{
      url: "http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",
      file: "stl10_binary.tar.gz",
      md5: "91f7769df0f17e558f3565bffb0c7dfb",
      extract: true,
    }],
    ready: ["stl10_binary/test_X.bin"],
  },
  "fashion-mnist": {
    folder: "fashion-mnist",
    files: [
      ["train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"],
      ["train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"],
      ["t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"],
      ["t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"],
    ].map(([file, md5]) => ({ url: FASHION + file, file, md5 })),
    ready: [
      "fashion-mnist/train-images-idx3-ubyte.gz",
      "fashion-mnist/train-labels-idx1-ubyte.gz",
      "fashion-mnist/t10k-images-idx3-ubyte.gz",
      "fashion-mnist/t10k-labels-idx1-ubyte.gz",
    ],
  },
};

/** Options of {@link downloadDataset}; the timeouts and retries of {@link DownloadPolicy} apply to
 * every file. */
export interface DownloadOptions extends DownloadPolicy {
  /** The data folder (created when missing). */
  dataDir: string;
  /** Replaces the canonical source (mirrors, tests). */
  source?: DatasetSource;
  /** Progress reports (default: a bar on stderr when it is a terminal). */
  onProgress?: (p: DownloadProgress) => void;
  /** Messages such as "already there" (default: stderr). */
  log?: (line: string) => void;
  /**
   * Stops the download when aborted (see {@link stopOnSignals}): the fetch or the extraction ends,
   * a `.part` stays for a resume, the folders the download created are removed when empty, and a
   * {@link StoppedError} says what was kept.
   */
  signal?: AbortSignal;
}

/** What {@link downloadDataset} did. */
export interface DownloadResult {
  /** True when the dataset was already in place and nothing was fetched. */
  alreadyPresent: boolean;
  /** Files fetched (fully or resumed) in this run. */
  downloaded: string[];
  /** Top-level folders extracted in this run. */
  extracted: string[];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Creates `path` with the folders above it that are missing; returns the folders it created,
 * deepest first.
 */
async function makeFolders(path: string): Promise<string[]> {
  const missing: string[] = [];
  for (let p = path; !exists(p);) {
    missing.push(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  await Deno.mkdir(path, { recursive: true });
  return missing;
}

/**
 * After a failed download: removes the folders of `created` (deepest first) that are empty, so
 * that a failure leaves no empty dataset or data folder behind. A folder holding anything (a
 * `.part` kept for resume, a verified file, a `.md5-mismatch` set aside) stays, and so do the
 * folders above it; a folder that existed before the download is never in `created`.
 */
async function removeEmptyFolders(created: string[]): Promise<void> {
  for (const p of created) {
    try {
      if (!(await Deno.lstat(p)).isDirectory) return;
      await Deno.remove(p); // not recursive: fails on a folder that is not empty
    } catch {
      return; // not empty (or gone): it and the folders above it stay
    }
  }
}

/** Fetches one file to `target` through `target.part`, verifying its MD5; returns true if fetched. */
async function fetchVerified(
  f: RemoteFile,
  target: string,
  onProgress: (p: DownloadProgress) => void,
  policy: DownloadPolicy & { signal?: AbortSignal },
): Promise<boolean> {
  if (exists(target)) {
    const sum = await md5File(target);
    if (sum === f.md5) return false;
    throw new DataError(
      `Checksum mismatch for '${target}' (already in the data folder): md5 ${sum}, expected ${f.md5}. ` +
        `It was left as it is: delete it and run --download again, or fetch ${f.url} by hand to that path`,
      { file: target },
    );
  }
  const part = `${target}.part`;
  await fetchResumable({ ...policy, url: f.url, part, file: f.file, onProgress });
  const sum = await md5File(part);
  if (sum !== f.md5) {
    const aside = `${target}.md5-mismatch`;
    await Deno.rename(part, aside);
    throw new DataError(
      `Checksum mismatch for '${f.file}' downloaded from ${f.url}: md5 ${sum}, expected ${f.md5}. ` +
        `The download was set aside as '${aside}' (files verified before are kept). ` +
        `Run --download again to fetch it afresh; if it fails again, the source may have changed: ` +
        `fetch ${f.url} by hand, check it, and put it at '${target}'`,
      { file: aside },
    );
  }
  await Deno.rename(part, target);
  return true;
}

/**
 * Downloads, verifies and extracts a dataset of {@link DATASET_SOURCES} into `dataDir`, resuming
 * partial files. Does nothing when the dataset is already in place. On failure, the folders it
 * created (the data folder, the dataset's folder) are removed when they are empty; what they hold
 * (a `.part` to resume, verified files) keeps them.
 */
export async function downloadDataset(
  name: string,
  options: DownloadOptions,
): Promise<DownloadResult> {
  const source = options.source ?? DATASET_SOURCES[name];
  if (!source) {
    throw new DataError(
      `Cannot download '${name}': no known source (downloadable: ${
        Object.keys(DATASET_SOURCES).join(", ")
      })`,
    );
  }
  const log = options.log ?? ((line: string) => console.error(line));
  const { dataDir } = options;
  if (source.ready.every((p) => exists(`${dataDir}/${p}`))) {
    log(`${name}: already in ${dataDir}`);
    return { alreadyPresent: true, downloaded: [], extracted: [] };
  }
  const folder = source.folder ? `${dataDir}/${source.folder}` : dataDir;
  const created = await makeFolders(folder);
  const onProgress = options.onProgress ?? consoleProgress();
  const result: DownloadResult = { alreadyPresent: false, downloaded: [], extracted: [] };
  try {
    for (const f of source.files) {
      const target = `${folder}/${f.file}`;
      stopIfAsked(options.signal, f.file);
      if (await fetchVerified(f, target, onProgress, options)) result.downloaded.push(f.file);
      if (f.extract) {
        result.extracted.push(...(await extractTarGz(target, dataDir, options.signal)));
      }
    }
  } catch (err) {
    await removeEmptyFolders(created);
    throw err;
  }
  const missing = source.ready.filter((p) => !exists(`${dataDir}/${p}`));
  if (missing.length > 0) {
    throw new DataError(
      `Downloaded ${name} but '${
        missing[0]
      }' is missing from ${dataDir} (unexpected archive layout)`,
    );
  }
  log(`${name}: ready in ${dataDir}`);
  return result;
}

/** Throws a {@link StoppedError} when `signal` is aborted (between the files of a download). */
function stopIfAsked(signal: AbortSignal | undefined, file: string): void {
  if (!signal?.aborted) return;
  throw new StoppedError(
    `Download stopped (${stopReason(signal)}) before '${file}': run --download again to go on`,
    { file },
  );
}

/**
 * `source` with every file fetched from `mirror` (a base URL: `<mirror>/<file name>`) instead of its
 * canonical URL; the published checksums still apply.
 */
export function mirroredSource(source: DatasetSource, mirror: string): DatasetSource {
  const base = mirror.replace(/\/+$/, "");
  return { ...source, files: source.files.map((f) => ({ ...f, url: `${base}/${f.file}` })) };
}

/** True for the operating system's file errors (permissions, a full disk, ...): no stack needed. */
function isOsError(err: unknown): err is Error {
  return err instanceof Error &&
    Object.values(Deno.errors).some((cls) => err instanceof (cls as typeof Error));
}

const USAGE = `usage: download.ts <${
  Object.keys(DATASET_SOURCES).join("|")
}> [--data-dir DIR] [--mirror URL]`;

/**
 * Command line: `download.ts <dataset> [--data-dir DIR] [--mirror URL]`; exits 1 with the message
 * on failure, 2 on a usage error, 130 when stopped by SIGINT/SIGTERM (a second signal quits at
 * once). Timeouts and retries come from the environment
 * ({@link DownloadPolicy}).
 */
export async function main(args: string[]): Promise<number> {
  let values: { "data-dir"?: string; mirror?: string }, positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args,
      options: { "data-dir": { type: "string", default: "data" }, mirror: { type: "string" } },
      allowPositionals: true,
    }));
  } catch (err) {
    console.error(`error: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (positionals.length !== 1) {
    console.error(USAGE);
    return 2;
  }
  const name = positionals[0];
  try {
    const known = DATASET_SOURCES[name];
    const source = known && values.mirror ? mirroredSource(known, values.mirror) : undefined;
    await stopOnSignals((signal) =>
      downloadDataset(name, { dataDir: values["data-dir"]!, source, signal })
    );
    return 0;
  } catch (err) {
    if (!(err instanceof DataError) && !isOsError(err)) throw err;
    console.error(`${err instanceof StoppedError ? "\n" : ""}error: ${(err as Error).message}`);
    return err instanceof StoppedError ? 130 : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
