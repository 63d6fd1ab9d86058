/**
 * Reads a JUnit XML report written by `deno test --junit-path` and prints the CI summary line
 * `N passed, N failed[, N skipped]`. An extra failed count (e.g. a failed `deno task check`) can be
 * passed as the second argument. Exits non-zero when anything failed or no test ran.
 *
 * Usage: deno run --allow-read tasks/junit_summary.ts <report.xml> [extraFailed]
 *
 * @module
 */

/** Counts of a JUnit report. */
export interface JunitCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/** Counts the `<testcase>` elements of a JUnit report by outcome. */
export function countJunit(xml: string): JunitCounts {
  const counts = { passed: 0, failed: 0, skipped: 0 };
  const re = /<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const body = m[2] ?? "";
    if (/<(failure|error)\b/.test(body)) counts.failed++;
    else if (/<skipped\b/.test(body)) counts.skipped++;
    else counts.passed++;
  }
  return counts;
}

/** Formats the summary line. */
export function summaryLine(c: JunitCounts): string {
  const base = `${c.passed} passed, ${c.failed} failed`;
  return c.skipped > 0 ? `${base}, ${c.skipped} skipped` : base;
}

if (import.meta.main) {
  const [path, extra] = Deno.args;
  let counts: JunitCounts = { passed: 0, failed: 1, skipped: 0 };
  try {
    counts = countJunit(await Deno.readTextFile(path));
  } catch (e) {
    console.error(`Cannot read the JUnit report '${path}': ${(e as Error).message}`);
  }
  counts.failed += Number(extra ?? 0);
  console.log(summaryLine(counts));
  Deno.exit(counts.failed > 0 || counts.passed === 0 ? 1 : 0);
}
