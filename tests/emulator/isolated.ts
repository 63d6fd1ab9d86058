/**
 * Runs one emulator test case in this process and prints `{"ok":true,"value":…}` or
 * `{"ok":false,"error":…}` as its last line (see runIsolated in emu_helpers.ts).
 * Usage: deno run --allow-all isolated.ts CASE
 *
 * @module
 */

import * as faults from "./fault_cases.ts";
import { cudnnDescriptorProbe, REAL_CUBLAS, REAL_CUDNN, statusStrings } from "./library_probes.ts";
import * as streams from "./streams_cases.ts";

const cases: Record<string, () => unknown> = {
  ...streams,
  ...faults,
  /** The real cuBLAS and cuDNN from the wheels, loaded without the emulator in this process. */
  realStatusStrings: () => statusStrings(REAL_CUBLAS, REAL_CUDNN),
  realCudnnDescriptors: () => cudnnDescriptorProbe(REAL_CUDNN),
};
const name = Deno.args[0];
const run = cases[name];
if (typeof run !== "function") {
  console.log(JSON.stringify({ ok: false, error: `no case '${name}' in isolated.ts` }));
} else {
  try {
    const value = run();
    console.log(JSON.stringify({ ok: true, value: value ?? null }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: (e as Error).stack ?? String(e) }));
  }
}
