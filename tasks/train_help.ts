/**
 * The parts of `train --help` that come from the presets: each config flag's default (the default
 * preset's value) and the list of every configuration key.
 *
 * @module
 */

import type { FlagSpec } from "./cli_flags.ts";
import { presetConfig } from "../src/ressl/config.ts";

/** The preset used when `--preset` is absent (and `--data` does not hold one's own images). */
export const DEFAULT_PRESET = "fashion-mnist";

/** The value of dotted `key` in the default preset. */
function presetValue(key: string): unknown {
  return key.split(".").reduce<unknown>(
    (o, k) => (o as Record<string, unknown>)[k],
    presetConfig(DEFAULT_PRESET),
  );
}

/** Flags setting a config key show the default preset's value as their default. */
export function withPresetDefaults(flags: FlagSpec[]): FlagSpec[] {
  return flags.map((f) =>
    f.configKey && f.defaultText === undefined
      ? {
        ...f,
        defaultText: `the preset's (${DEFAULT_PRESET}: ${
          JSON.stringify(presetValue(f.configKey))
        })`,
      }
      : f
  );
}

/** Dotted keys and values of a configuration, in order. */
export function configEntries(c: unknown, prefix = ""): [string, unknown][] {
  if (typeof c !== "object" || c === null || Array.isArray(c)) return [[prefix, c]];
  return Object.entries(c).flatMap(([k, v]) => configEntries(v, prefix ? `${prefix}.${k}` : k));
}

/** The configuration keys (with the default preset's values), for the help's epilogue. */
export function configKeysText(): string {
  const fm = presetConfig(DEFAULT_PRESET);
  const lines = configEntries(fm).map(([k, v]) => `  ${k.padEnd(24)}${JSON.stringify(v)}`);
  return `Config keys (--config file.json, nested as in configs/*.json; values of ${DEFAULT_PRESET}):\n${
    lines.join("\n")
  }\n  multiCrop               {"sizes":[..],"minScales":[..],"maxScales":[..]} (imagenet-multicrop)`;
}
