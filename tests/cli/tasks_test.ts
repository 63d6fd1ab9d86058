/**
 * The tasks as deno.json declares them: each has a description; the user's tasks (train, eval,
 * export, embed, plot) list the permissions they need instead of `--allow-all`; `--help` through
 * those permissions prints the text made from the flag table; and one name per dataset: every
 * task that takes `--preset` refuses an unknown name with the same spelling of the dataset names
 * and accepts the old `tinyimagenet` with the same note.
 */
import assert from "node:assert/strict";
import { PRESET_NAMES } from "../../src/data/pipelines.ts";
import { DATASET_NAMES } from "../../src/data/datasets/mod.ts";
import { DATASET_SOURCES } from "../../src/data/download.ts";
import { canonicalName, presetConfig, TRAIN_PRESET_NAMES } from "../../src/ressl/config.ts";
import { BUILTIN_NAMES } from "../../tasks/data_source.ts";
import { EMBED_SPEC } from "../../tasks/embed.ts";
import { EVAL_SPEC } from "../../tasks/eval.ts";
import { EXPORT_SPEC } from "../../tasks/export.ts";
import { helpText } from "../../tasks/help.ts";
import { PLOT_SPEC } from "../../tasks/plot.ts";
import { TRAIN_SPEC } from "../../tasks/train_args.ts";
import { ROOT, runTask, taskCommand } from "./cli_helpers.ts";

const SPECS = [TRAIN_SPEC, EVAL_SPEC, EXPORT_SPEC, EMBED_SPEC, PLOT_SPEC];
const TASKS = JSON.parse(Deno.readTextFileSync(`${ROOT}/deno.json`)).tasks as Record<
  string,
  string | { description?: string; command: string }
>;

Deno.test("deno.json: every task has a description; the user's tasks list their permissions", () => {
  for (const [name, t] of Object.entries(TASKS)) {
    assert.ok(typeof t === "object" && (t.description ?? "").length >= 20, `${name}: description`);
  }
  for (const spec of SPECS) {
    const { flags, script } = taskCommand(spec.name);
    assert.equal(script, `tasks/${spec.name}.ts`);
    for (const f of flags) {
      assert.ok(!/^(-A|--allow-all)$/.test(f), `${spec.name}: ${f}`);
      // a bare --allow-env/-run/-net/-sys grants everything of its kind: each lists what it needs
      assert.ok(!/^--allow-(env|run|net|sys|import)$/.test(f), `${spec.name}: bare ${f}`);
      assert.match(f, /^--allow-(read|write|ffi|env|run|net|sys)(=.+)?$/, `${spec.name}: ${f}`);
    }
  }
  // export only reads a checkpoint and writes a file
  assert.deepEqual(taskCommand("export").flags, ["--allow-read", "--allow-write"]);
});

Deno.test("--help through the task's permissions prints the text made from its flag table", async () => {
  for (const spec of SPECS) {
    const r = await runTask(spec.name, ["--help"]);
    assert.equal(r.code, 0, r.text);
    assert.equal(r.stdout, `${helpText(spec)}\n`, `${spec.name} --help`);
    assert.match(r.stdout, /default: /);
    assert.match(r.stdout, /Examples:/);
  }
});

Deno.test("one name per dataset: the lists agree and every task spells the names alike", async () => {
  const lists: Record<string, readonly string[]> = {
    "augmentation presets": PRESET_NAMES,
    "datasets": DATASET_NAMES,
    "--data probes": BUILTIN_NAMES,
    "downloads": Object.keys(DATASET_SOURCES),
    "train presets' datasets": TRAIN_PRESET_NAMES.map((p) => presetConfig(p).dataset),
  };
  const bySquash = new Map<string, string>();
  for (const [list, names] of Object.entries(lists)) {
    for (const n of names) {
      assert.equal(canonicalName(n).name, n, `${list}: '${n}' is an old name`);
      const squash = n.toLowerCase().replace(/[^a-z0-9]/g, "");
      const seen = bySquash.get(squash);
      assert.ok(seen === undefined || seen === n, `${list}: '${n}' and '${seen}'`);
      bySquash.set(squash, n);
    }
  }
  const cases: [string, string[]][] = [
    ["train", []],
    ["eval", ["--protocol", "knn", "--checkpoint", "nowhere.safetensors"]],
    ["embed", ["--checkpoint", "nowhere.safetensors", "--out", "nowhere-e.safetensors"]],
    ["plot", ["nowhere", "--map"]],
  ];
  for (const [task, args] of cases) {
    const bad = await runTask(task, [...args, "--preset", "bogus"]);
    assert.equal(bad.code, 2, `${task}: ${bad.text}`);
    assert.match(bad.text, /Invalid flag --preset: .*'bogus'.* tiny-imagenet/, task);
    assert.doesNotMatch(bad.text, /tinyimagenet/, task);
    const nodata = task === "train" ? ["--data", "nowhere"] : []; // fails before training
    const old = await runTask(task, [...args, "--preset", "tinyimagenet", ...nodata]);
    assert.notEqual(old.code, 0, `${task}: ${old.text}`);
    assert.match(
      old.text,
      /note: 'tinyimagenet' is the old name of 'tiny-imagenet'/,
      `${task}: ${old.text}`,
    );
  }
});
