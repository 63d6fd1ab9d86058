/**
 * The flag tables: parsing (types, bounds, optional values, removed flags, the flags given) and
 * the `--help` text made from the same table (every flag with its default or bound and config key,
 * examples, the configuration keys), for every task.
 */
import assert from "node:assert/strict";
import {
  type CommandSpec,
  cores,
  parseCommand,
  readValue,
  UsageError,
} from "../../tasks/cli_flags.ts";
import { flagLabel, helpText, wrap } from "../../tasks/help.ts";
import { TRAIN_FLAGS, TRAIN_SPEC } from "../../tasks/train_args.ts";
import { EVAL_SPEC } from "../../tasks/eval.ts";
import { EMBED_SPEC } from "../../tasks/embed.ts";
import { EXPORT_SPEC } from "../../tasks/export.ts";
import { PLOT_SPEC } from "../../tasks/plot.ts";
import { mergeConfig, presetConfig } from "../../src/ressl/config.ts";

const SPEC: CommandSpec = {
  name: "demo",
  usage: "[options]",
  description: "A demo.",
  flags: [
    { name: "n", kind: "int", value: "<n>", min: 1, default: 3, help: "count" },
    { name: "x", kind: "number", value: "<x>", min: 0, exclusiveMin: true, help: "rate" },
    { name: "mode", kind: "choice", value: "<m>", choices: ["a", "b"], default: "a", help: "m" },
    { name: "list", kind: "list", value: "<x,..>", help: "values" },
    { name: "resume", kind: "string", value: "<ckpt>", optionalValue: true, help: "resume" },
    { name: "on", kind: "boolean", help: "switch" },
    {
      name: "cap",
      kind: "int",
      value: "<n>",
      min: 1,
      max: () => ({ value: 4, why: "four" }),
      help: "capped",
    },
  ],
  removed: { old: "use --n instead" },
};

Deno.test("parseCommand() reads typed values, defaults, optional values and the flags given", () => {
  const p = parseCommand(SPEC, ["--x", "0.5", "--list", "1, 2.5,3", "--resume", "--on"])!;
  assert.equal(p.values.n, 3);
  assert.equal(p.values.x, 0.5);
  assert.equal(p.values.mode, "a");
  assert.deepEqual(p.values.list, [1, 2.5, 3]);
  assert.equal(p.values.resume, "");
  assert.equal(p.values.on, true);
  assert.deepEqual(p.given, ["x", "list", "resume", "on"]);
  assert.equal(parseCommand(SPEC, ["--resume", "a.ckpt"])!.values.resume, "a.ckpt");
  assert.equal(parseCommand(SPEC, ["--n", "7", "-h"]), null);
});

Deno.test("parseCommand() refuses bad values naming the flag and what it accepts", () => {
  const bad: [string[], RegExp][] = [
    [["--n", "0"], /Invalid flag --n: expected an integer >= 1, got '0'/],
    [["--n", "2.5"], /--n: expected an integer/],
    [["--x", "0"], /--x: expected a number > 0/],
    [["--x", "Infinity"], /--x: expected a number > 0/],
    [["--mode", "c"], /--mode: expected one of a, b, got 'c'/],
    [["--list", "1,,2"], /--list: expected numbers separated by commas/],
    [["--cap", "5"], /Invalid flag --cap: 5 is more than four \(at most 4\)/],
    [["--old", "1"], /Invalid flag --old: use --n instead/],
    [["--bogus"], /Invalid command line: .*bogus.* \(see --help\)/],
    [["stray"], /Invalid command line/],
  ];
  for (const [args, re] of bad) {
    assert.throws(() => parseCommand(SPEC, args), (e: Error) => {
      assert.ok(e instanceof UsageError, `${args}: ${e}`);
      assert.match(e.message, re);
      return true;
    });
  }
  assert.throws(() => readValue(SPEC.flags[0], "1e3x"), /--n/);
});

Deno.test("--help is made from the table: every flag, its default or bound, config key and examples", () => {
  for (const spec of [TRAIN_SPEC, EVAL_SPEC, EMBED_SPEC, EXPORT_SPEC, PLOT_SPEC]) {
    const text = helpText(spec);
    const flat = text.replace(/\s+/g, " ");
    assert.ok(text.startsWith(`Usage: deno task ${spec.name} `), spec.name);
    for (const f of spec.flags) {
      assert.ok(text.includes(flagLabel(f)), `${spec.name} --help lacks ${flagLabel(f)}`);
      const defaultText = f.defaultText ??
        (f.default !== undefined && f.kind !== "boolean" ? String(f.default) : undefined);
      if (defaultText !== undefined) {
        assert.ok(flat.includes(`default: ${defaultText}`), `${spec.name} --${f.name} default`);
      }
      if (f.max) assert.ok(flat.includes(`at most ${cores()}`), `${spec.name} --${f.name}`);
      if (f.configKey) assert.ok(flat.includes(`config key ${f.configKey}`), f.name);
    }
    assert.ok(spec.examples && spec.examples.length > 0, `${spec.name} has examples`);
    for (const e of spec.examples!) assert.ok(text.includes(e), e);
    for (const line of text.split("\n")) {
      assert.ok(line.length <= 100 || !line.includes(" "), `too wide: ${line}`);
    }
  }
  const train = helpText(TRAIN_SPEC);
  assert.match(train, /Config keys \(--config file\.json/);
  assert.match(train, /optim\.minWarmupSteps\s+100/);
  assert.match(train, /--preset <name> .*fashion-mnist-quick/s);
});

Deno.test("every train flag with a config key sets that key of every preset", () => {
  const withKeys = TRAIN_FLAGS.filter((f) => f.configKey);
  assert.ok(withKeys.length >= 9);
  for (const f of withKeys) {
    const base = presetConfig("fashion-mnist");
    const value = f.kind === "list" ? [0.5] : f.kind === "number" ? 0.5 : 3;
    const nested = f.configKey!.split(".").reduceRight<unknown>((v, k) => ({ [k]: v }), value);
    const merged = mergeConfig(base, nested, `--${f.name}`);
    const got = f.configKey!.split(".").reduce<unknown>(
      (o, k) => (o as Record<string, unknown>)[k],
      merged,
    );
    assert.deepEqual(got, value, `--${f.name} -> ${f.configKey}`);
  }
});

Deno.test("wrap() keeps words whole within the width", () => {
  const lines = wrap("aaa bbb ccc ddd", 8, "  ");
  assert.deepEqual(lines, ["  aaa", "  bbb", "  ccc", "  ddd"]);
  assert.deepEqual(wrap("a b c", 80), ["a b c"]);
});
