/**
 * The run-folder, checkpoint and evaluation robustness cases (`run_cases.ts`), run through the
 * harness (see README.md). Kept in its own test file so the two lists can run in parallel.
 */
import { registerCases } from "./harness.ts";
import { RUN_CASES } from "./run_cases.ts";

registerCases([...RUN_CASES]);
