/**
 * Writes one benchmark's section of a Markdown report (`docs/benchmarks.md`): the text between
 * `<!-- NAME:begin -->` and `<!-- NAME:end -->` is replaced (or appended when absent), the rest of
 * the file is kept, the file is written atomically and formatted with `deno fmt`.
 *
 * @module
 */

import { writeFileAtomic } from "../src/io/atomic.ts";

/** Returns `doc` with section `name` set to `body`. */
/**
 * The 1-, 5- and 15-minute load averages as "a b c" (Deno.loadavg: `deno task bench` may not read
 * /proc/loadavg, which Deno guards as a system file), or "n/a" where unavailable.
 */
export function loadAverage(): string {
  try {
    return Deno.loadavg().map((v) => v.toFixed(2)).join(" ");
  } catch {
    return "n/a";
  }
}

/**
 * The sections of an existing report that other commands wrote (between `<!-- kept:begin -->` and
 * `<!-- kept:end -->`, e.g. the quick start's run and the warm-up floor): a regenerated report
 * keeps them at its end instead of dropping them.
 */
export async function keptSections(doc: string): Promise<string> {
  const old = await Deno.readTextFile(doc).catch(() => "");
  const blocks = old.match(/<!-- kept:begin -->[\s\S]*?<!-- kept:end -->/g) ?? [];
  return blocks.map((b) => `\n${b}\n`).join("");
}

export function replaceSection(doc: string, name: string, body: string): string {
  const begin = `<!-- ${name}:begin -->`, end = `<!-- ${name}:end -->`;
  const block = `${begin}\n\n${body.trim()}\n\n${end}`;
  const i = doc.indexOf(begin), j = doc.indexOf(end);
  if (i >= 0 && j > i) return doc.slice(0, i) + block + doc.slice(j + end.length);
  const base = doc.trim() === "" ? "# Benchmarks\n" : doc.trimEnd() + "\n";
  return `${base}\n${block}\n`;
}

/** Sets section `name` of the report at `path` to `body` (atomic write, then `deno fmt`). */
export async function writeSection(path: string, name: string, body: string): Promise<void> {
  const doc = await Deno.readTextFile(path).catch((e) => {
    if (e instanceof Deno.errors.NotFound) return "";
    throw e;
  });
  await writeFileAtomic(path, replaceSection(doc, name, body));
  await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", path] }).output();
}
