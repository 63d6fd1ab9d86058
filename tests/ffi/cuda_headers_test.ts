/**
 * The symbol tables against the real headers: no bound driver or cuBLAS name is a legacy name that
 * `cuda.h` / `cublas_v2.h` redirect to a versioned one; every bound function has the header's
 * parameter count and an FFI type of the same calling convention for each parameter and result;
 * the enum values and the cuDNN perf-struct layout are the headers'.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CUBLAS_SYMBOLS } from "../../ffi/cuda/cublas_symbols.ts";
import { CUDNN_SYMBOLS } from "../../ffi/cuda/cudnn_symbols.ts";
import { DRIVER_SYMBOLS } from "../../ffi/cuda/driver_symbols.ts";
import { NCCL_SYMBOLS } from "../../ffi/cuda/nccl.ts";
import { NVRTC_SYMBOLS } from "../../ffi/cuda/nvrtc.ts";
import {
  cCompiler,
  cudaIncludeDir,
  ffiTypeName,
  ffiTypesFor,
  flatten,
  preprocess,
  prototype,
  redirects,
  wheelIncludeDir,
} from "./cuda_header_parse.ts";

type Table = Record<string, { name?: string; parameters: readonly unknown[]; result: unknown }>;

/** The C names a table binds (an entry's `name` when it renames the symbol). */
function boundNames(table: Table): string[] {
  return Object.entries(table).map(([k, v]) => v.name ?? k);
}

const cudaInc = cudaIncludeDir();
const noCudaH = cudaInc === null ? " (skipped: no CUDA toolkit cuda.h found)" : "";

Deno.test({
  name: "cuda.h: no bound driver name is a legacy name cuda.h redirects" + noCudaH,
  ignore: cudaInc === null,
  fn() {
    const text = Deno.readTextFileSync(join(cudaInc!, "cuda.h"));
    const map = redirects(text, "cu");
    // The parse sees the redirects this test exists for.
    assert.equal(map.get("cuMemAlloc"), "cuMemAlloc_v2");
    assert.equal(map.get("cuMemcpyHtoDAsync"), "cuMemcpyHtoDAsync_v2");
    assert.equal(map.get("cuStreamBeginCapture"), "cuStreamBeginCapture_v2");
    assert.equal(map.get("cuGraphInstantiate"), "cuGraphInstantiateWithFlags");
    assert.ok(!map.has("cuLaunchKernel"), "cuLaunchKernel maps to itself outside per-thread mode");
    const declared = new Set([...text.matchAll(/CUresult CUDAAPI (\w+)\s*\(/g)].map((m) => m[1]));
    const targets = new Set(map.values());
    for (const name of boundNames(DRIVER_SYMBOLS as unknown as Table)) {
      assert.ok(!map.has(name), `${name} is redirected by cuda.h to ${map.get(name)}: bind that`);
      assert.ok(declared.has(name) || targets.has(name), `${name} is not a cuda.h function`);
    }
  },
});

const cublasInc = wheelIncludeDir("cublas");
Deno.test({
  name: "cublas_v2.h: no bound cuBLAS name is a legacy name it redirects" +
    (cublasInc === null ? " (skipped: cuBLAS headers not installed)" : ""),
  ignore: cublasInc === null,
  fn() {
    const map = redirects(Deno.readTextFileSync(join(cublasInc!, "cublas_v2.h")), "cublas");
    assert.equal(map.get("cublasCreate"), "cublasCreate_v2");
    assert.equal(map.get("cublasSgemm"), "cublasSgemm_v2");
    for (const name of boundNames(CUBLAS_SYMBOLS as unknown as Table)) {
      assert.ok(!map.has(name), `${name} is redirected by cublas_v2.h to ${map.get(name)}`);
    }
  },
});

interface HeaderSet {
  lib: string;
  table: Table;
  header: string;
  includes: (string | null)[];
}

const sets: HeaderSet[] = [
  {
    lib: "driver",
    table: DRIVER_SYMBOLS as unknown as Table,
    header: "cuda.h",
    includes: [cudaInc],
  },
  {
    lib: "cuBLAS",
    table: CUBLAS_SYMBOLS as unknown as Table,
    header: "cublas_v2.h",
    includes: [cublasInc, cudaInc],
  },
  {
    lib: "cuDNN",
    table: CUDNN_SYMBOLS as unknown as Table,
    header: "cudnn.h",
    includes: [wheelIncludeDir("cudnn"), cudaInc],
  },
  {
    lib: "NVRTC",
    table: NVRTC_SYMBOLS as unknown as Table,
    header: "nvrtc.h",
    includes: [wheelIncludeDir("nvrtc")],
  },
  {
    lib: "NCCL",
    table: NCCL_SYMBOLS as unknown as Table,
    header: "nccl.h",
    includes: [wheelIncludeDir("nccl"), cudaInc],
  },
];

for (const set of sets) {
  const reason = set.includes.some((d) => d === null)
    ? "headers not installed"
    : cCompiler() === null
    ? "no C compiler to preprocess the headers"
    : undefined;
  Deno.test({
    name: `${set.header}: every ${set.lib} binding matches the prototype's arity and ABI types` +
      (reason ? ` (skipped: ${reason})` : ""),
    ignore: reason !== undefined,
    fn() {
      const flat = flatten(preprocess(set.header, set.includes as string[]));
      const problems: string[] = [];
      for (const [key, def] of Object.entries(set.table)) {
        const name = def.name ?? key;
        const proto = prototype(flat, name);
        if (proto === null) {
          problems.push(`${name}: no prototype in ${set.header}`);
          continue;
        }
        if (proto.params.length !== def.parameters.length) {
          problems.push(
            `${name}: ${def.parameters.length} parameters bound, header has ${proto.params.length}`,
          );
          continue;
        }
        const check = (cType: string, ffi: unknown, what: string) => {
          const allowed = ffiTypesFor(cType);
          const got = ffiTypeName(ffi);
          if (allowed === null) problems.push(`${name} ${what}: unknown C type '${cType}'`);
          else if (!allowed.includes(got)) {
            problems.push(`${name} ${what}: C '${cType}' bound as '${got}' (use ${allowed})`);
          }
        };
        proto.params.forEach((c, i) => check(c, def.parameters[i], `parameter ${i}`));
        check(proto.result, def.result, "result");
      }
      assert.deepEqual(problems, []);
    },
  });
}
