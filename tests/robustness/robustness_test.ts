/**
 * The robustness suite: every case of every `*_cases.ts` list beside this file, run through the
 * harness (see README.md). Add a list by importing it here.
 */
import { DATA_CASES } from "./data_cases.ts";
import { registerCases } from "./harness.ts";

registerCases([...DATA_CASES]);
