/**
 * Command line: opens a dataset the way training does and prints its size, shape and classes, or
 * the reason it cannot be read (exit 1). `deno run --allow-all src/data/inspect.ts <dataset>
 * [--data-dir DIR] [--split pretrain|train|test]`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { DATASET_NAMES, type DatasetSplit, DEFAULT_DATA_DIR, openDataset } from "./datasets/mod.ts";
import { DataError } from "./errors.ts";

/** Runs the command; returns the exit code (0 ok, 1 unreadable data, 2 usage). */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: {
      "data-dir": { type: "string", default: DEFAULT_DATA_DIR },
      split: { type: "string", default: "train" },
    },
    allowPositionals: true,
  });
  const split = values.split as DatasetSplit;
  if (positionals.length !== 1 || !["pretrain", "train", "test"].includes(split)) {
    console.error(
      `usage: inspect.ts <${
        DATASET_NAMES.join("|")
      }> [--data-dir DIR] [--split pretrain|train|test]`,
    );
    return 2;
  }
  try {
    const ds = await openDataset(positionals[0], { dataDir: values["data-dir"], split });
    try {
      console.log(`${ds.name}: ${ds.length} images of ${ds.height}x${ds.width}x${ds.channels}`);
      if (ds.labels) {
        const counts = new Map<number, number>();
        for (const l of ds.labels) counts.set(l, (counts.get(l) ?? 0) + 1);
        const parts = [...counts].sort((a, b) => a[0] - b[0])
          .map(([l, n]) => `${l < 0 ? "unlabelled" : ds.classes?.[l] ?? l}: ${n}`);
        console.log(`labels: ${parts.join(", ")}`);
      }
    } finally {
      ds.close();
    }
    return 0;
  } catch (err) {
    if (!(err instanceof DataError)) throw err;
    console.error(`error: ${err.message}`);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
