/**
 * The `--help` text of a command, made from the same {@link CommandSpec} table that parses its
 * flags: usage, description, every flag with its value, default (or bound) and configuration
 * key, positionals, examples, and the command's epilogue.
 *
 * @module
 */

import type { CommandSpec, FlagSpec } from "./cli_flags.ts";

/** Words of `text` wrapped to lines of at most `width` characters, each prefixed by `indent`. */
export function wrap(text: string, width: number, indent = ""): string[] {
  const lines: string[] = [];
  for (const para of text.split("\n")) {
    let line = "";
    for (const word of para.split(/\s+/).filter((w) => w !== "")) {
      if (line !== "" && indent.length + line.length + 1 + word.length > width) {
        lines.push(indent + line);
        line = word;
      } else {
        line = line === "" ? word : `${line} ${word}`;
      }
    }
    lines.push(indent + line);
  }
  return lines;
}

/** The left column of a flag: `--name <value>` (with `-h, ` style short alias). */
export function flagLabel(f: FlagSpec): string {
  const value = f.kind === "boolean"
    ? ""
    : f.optionalValue
    ? ` [${f.value ?? "<value>"}]`
    : ` ${f.value ?? "<value>"}`;
  return `${f.short ? `-${f.short}, ` : ""}--${f.name}${value}`;
}

/** The help text of a flag after its label: help, choices, default or bound, config key. */
export function flagDetail(f: FlagSpec): string {
  const parts = [f.help];
  if (
    f.kind === "choice" && f.choices && !f.help.includes(f.choices[0]) && !f.value?.includes("|")
  ) {
    parts.push(`(${f.choices.join(" | ")})`);
  }
  const notes: string[] = [];
  if (f.defaultText !== undefined) notes.push(`default: ${f.defaultText}`);
  else if (f.default !== undefined && f.kind !== "boolean") notes.push(`default: ${f.default}`);
  const max = f.max?.();
  if (max) notes.push(`at most ${max.value}`);
  if (f.configKey) notes.push(`config key ${f.configKey}`);
  if (notes.length > 0) parts.push(`[${notes.join("; ")}]`);
  return parts.join(" ");
}

/** The full `--help` text of `spec`, at most `width` columns wide (default 100). */
export function helpText(spec: CommandSpec, width = 100): string {
  const out: string[] = [`Usage: deno task ${spec.name} ${spec.usage}`, ""];
  out.push(...wrap(spec.description, width), "");
  const col = 26;
  const row = (label: string, detail: string) => {
    const body = wrap(detail, width, " ".repeat(col));
    if (label.length + 2 < col) {
      out.push(`  ${label.padEnd(col - 2)}${body[0].slice(col)}`, ...body.slice(1));
    } else {
      out.push(`  ${label}`, ...body);
    }
  };
  if (spec.positionals?.length) {
    out.push("Arguments:");
    for (const p of spec.positionals) row(p.name, p.help);
    out.push("");
  }
  out.push("Options:");
  for (const f of spec.flags) row(flagLabel(f), flagDetail(f));
  row("-h, --help", "this text");
  if (spec.examples?.length) {
    out.push("", "Examples:");
    for (const e of spec.examples) out.push(`  ${e}`);
  }
  const extra = spec.epilogue?.();
  if (extra) out.push("", extra);
  return out.join("\n") + "\n";
}
