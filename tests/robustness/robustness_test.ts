/**
 * The robustness suite: the data/file-format, checkpoint-file and command-line-limit lists, run through the harness
 * (see README.md). The run-folder list has its own test file (`run_robustness_test.ts`) so the
 * two can run in parallel. Add a list by importing it here.
 */
import { CHECKPOINT_CASES } from "./checkpoint_cases.ts";
import { DATA_CASES } from "./data_cases.ts";
import { registerCases } from "./harness.ts";
import { LIMITS_CASES } from "./limits_cases.ts";

registerCases([...DATA_CASES, ...CHECKPOINT_CASES, ...LIMITS_CASES]);
