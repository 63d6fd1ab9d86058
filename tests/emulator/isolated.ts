/**
 * Runs one emulator test case in this process and prints `{"ok":true}` or `{"ok":false,"error":…}`
 * as its last line (see runIsolated in emu_helpers.ts). Usage: deno run --allow-all isolated.ts CASE
 *
 * @module
 */

import * as faults from "./fault_cases.ts";
import * as streams from "./streams_cases.ts";

const cases: Record<string, () => void> = { ...streams, ...faults } as unknown as Record<
  string,
  () => void
>;
const name = Deno.args[0];
const run = cases[name];
if (!run || typeof run !== "function") {
  console.log(JSON.stringify({ ok: false, error: `no case '${name}' in isolated.ts` }));
} else {
  try {
    run();
    console.log(JSON.stringify({ ok: true }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: (e as Error).stack ?? String(e) }));
  }
}
