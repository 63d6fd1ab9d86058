/**
 * cuDNN 9's sub-libraries. `libcudnn.so.9` is a small dispatcher that loads `libcudnn_graph`,
 * `_ops`, `_cnn`, `_adv` and `_ext` from its own folder on first use, and `libcudnn_graph` loads the
 * engines and heuristics. A missing `libcudnn_graph.so.9` makes the very first call print "Invalid
 * handle. Cannot load symbol cudnnGetVersion" and abort the process (SIGABRT, uncatchable); a missing
 * `_ops` or `_cnn` makes calls fail with NOT_SUPPORTED_SUBLIBRARY_UNAVAILABLE (checked with cuDNN
 * 9.24). So the folder is checked before the library is opened, and an incomplete one refused.
 *
 * @module
 */

import { join } from "node:path";

/** Sub-libraries present in every cuDNN 9 release; all are required. */
export const CUDNN_CORE_SUBLIBRARIES: readonly string[] = [
  "libcudnn_graph.so.9",
  "libcudnn_ops.so.9",
  "libcudnn_cnn.so.9",
  "libcudnn_adv.so.9",
  "libcudnn_heuristic.so.9",
  "libcudnn_engines_precompiled.so.9",
  "libcudnn_engines_runtime_compiled.so.9",
];

/**
 * Sub-libraries of newer cuDNN 9 releases (9.24 ships both). `libcudnn_ext` is required when the
 * dispatcher names it; `libcudnn_engines_tensor_ir` is an extra engine set that `libcudnn_graph`
 * loads when present, so its absence is reported, not refused.
 */
export const CUDNN_LATER_SUBLIBRARIES: readonly string[] = [
  "libcudnn_ext.so.9",
  "libcudnn_engines_tensor_ir.so.9",
];

/** The result of {@link checkCudnnFolder}. */
export interface CudnnFolderCheck {
  /** Required sub-libraries that are missing (the folder must be refused when non-empty). */
  readonly missing: string[];
  /** Optional sub-libraries that are missing (fewer engines; reported only). */
  readonly missingOptional: string[];
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** The `libcudnn_*.so` names the dispatcher binary refers to (what it will try to load). */
export function dispatcherSublibraries(dispatcherPath: string): string[] {
  let bytes: Uint8Array;
  try {
    bytes = Deno.readFileSync(dispatcherPath);
  } catch {
    return [];
  }
  const text = new TextDecoder("latin1").decode(bytes);
  const names = new Set<string>();
  for (const m of text.matchAll(/libcudnn_[a-z_]+\.so/g)) names.add(m[0] + ".9");
  return [...names].sort();
}

/**
 * Checks that the folder of `libcudnn.so.9` holds every sub-library it will load: the core ones,
 * and any other the dispatcher names.
 */
export function checkCudnnFolder(dir: string): CudnnFolderCheck {
  const required = new Set(CUDNN_CORE_SUBLIBRARIES);
  for (const name of dispatcherSublibraries(join(dir, "libcudnn.so.9"))) required.add(name);
  const missing = [...required].filter((f) => !exists(join(dir, f)));
  const missingOptional = CUDNN_LATER_SUBLIBRARIES
    .filter((f) => !required.has(f) && !exists(join(dir, f)));
  return { missing, missingOptional };
}
