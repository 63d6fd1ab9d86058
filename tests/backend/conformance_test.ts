/**
 * Runs the conformance spec against every backend available here (`tests/backends.ts`): reference
 * always (against itself it checks NaN poisoning, leaks and the spec's own consistency), cpu where
 * oneDNN 2.6.3 loads; a backend that does not load is registered as ignored, with the reason.
 *
 * @module
 */

import { forEachBackend } from "../backends.ts";
import { defineConformance } from "./conformance_spec.ts";

forEachBackend("conformance", (b) => defineConformance(b.name, b.create));
