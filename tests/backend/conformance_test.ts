/**
 * Runs the conformance spec against every backend available here: reference always, cpu where
 * oneDNN 2.6.3 loads (otherwise its tests are registered as ignored, with the reason).
 *
 * @module
 */

import { createCpuBackend } from "../../src/backend/cpu/backend.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { DnnlUnavailableError } from "../../ffi/dnnl/mod.ts";
import { defineConformance } from "./conformance_spec.ts";

defineConformance("reference", () => createReferenceBackend());

let cpuMissing: string | null = null;
try {
  createCpuBackend().dispose();
} catch (e) {
  if (!(e instanceof DnnlUnavailableError)) throw e;
  cpuMissing = e.message;
}
if (cpuMissing === null) {
  defineConformance("cpu", () => createCpuBackend());
} else {
  Deno.test({ name: `conformance cpu: skipped (${cpuMissing})`, ignore: true, fn() {} });
}
