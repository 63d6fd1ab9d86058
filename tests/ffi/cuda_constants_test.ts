/**
 * Every enum value and constant the bindings hard-code equals the one in the real headers (read
 * through the C preprocessor), and the cuDNN perf-struct layout equals `sizeof`/`offsetof` from a
 * program compiled against `cudnn.h`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CUBLAS_COMPUTE,
  CUBLAS_GEMM_DEFAULT,
  CUBLAS_MATH,
  CUBLAS_OP,
  CUBLAS_STATUS,
  CUDA_R,
} from "../../ffi/cuda/cublas_symbols.ts";
import {
  CUDNN_ALGO_COUNT,
  CUDNN_CONV_MODE,
  CUDNN_DATA,
  CUDNN_DETERMINISM,
  CUDNN_MATH,
  CUDNN_PERF,
  CUDNN_STATUS,
  CUDNN_TENSOR,
} from "../../ffi/cuda/cudnn_symbols.ts";
import {
  CU_DEVICE_ATTRIBUTE,
  CU_FLAGS,
  CU_LAUNCH_PARAM,
  CU_RESULT,
} from "../../ffi/cuda/driver_symbols.ts";
import {
  NCCL_DATA,
  NCCL_OP,
  NCCL_RESULT_NAMES,
  NCCL_UNIQUE_ID_BYTES,
} from "../../ffi/cuda/nccl.ts";
import { NVRTC_RESULT } from "../../ffi/cuda/nvrtc.ts";
import {
  cCompiler,
  cudaIncludeDir,
  defineValues,
  enumValues,
  flatten,
  preprocess,
  wheelIncludeDir,
} from "./cuda_header_parse.ts";

const cudaInc = cudaIncludeDir();
const incs = {
  cublas: wheelIncludeDir("cublas"),
  cudnn: wheelIncludeDir("cudnn"),
  nvrtc: wheelIncludeDir("nvrtc"),
  nccl: wheelIncludeDir("nccl"),
};
const reason = cCompiler() === null
  ? "no C compiler to preprocess the headers"
  : cudaInc === null || Object.values(incs).some((d) => d === null)
  ? "CUDA toolkit or NVIDIA wheel headers not installed"
  : undefined;

function headerValues(header: string, includes: (string | null)[]): Map<string, number> {
  const dirs = includes as string[];
  const values = enumValues(flatten(preprocess(header, dirs)));
  for (const [k, v] of defineValues(preprocess(header, dirs, true))) values.set(k, v);
  return values;
}

function expectAll(
  values: Map<string, number>,
  table: Record<string, number>,
  headerName: (key: string) => string,
): string[] {
  const wrong: string[] = [];
  for (const [key, v] of Object.entries(table)) {
    const name = headerName(key);
    if (values.get(name) !== v) wrong.push(`${name}: bound ${v}, header ${values.get(name)}`);
  }
  return wrong;
}

Deno.test({
  name: "constants: every hard-coded enum value equals the headers'" +
    (reason ? ` (skipped: ${reason})` : ""),
  ignore: reason !== undefined,
  fn() {
    const cu = headerValues("cuda.h", [cudaInc]);
    const cb = headerValues("cublas_v2.h", [incs.cublas, cudaInc]);
    const dn = headerValues("cudnn.h", [incs.cudnn, cudaInc]);
    const nv = headerValues("nvrtc.h", [incs.nvrtc]);
    const nc = headerValues("nccl.h", [incs.nccl, cudaInc]);
    const flags = (k: string) =>
      k.startsWith("GRAPH_") ? `CUDA_${k}` : k.startsWith("MEMHOSTALLOC_") ? `CU_${k}` : `CU_${k}`;
    const wrong = [
      ...expectAll(cu, CU_RESULT, (k) => `CUDA_${k}`),
      ...expectAll(cu, CU_DEVICE_ATTRIBUTE, (k) => `CU_DEVICE_ATTRIBUTE_${k}`),
      ...expectAll(cu, CU_FLAGS, flags),
      ...expectAll(cu, CU_LAUNCH_PARAM, (k) => `CU_LAUNCH_PARAM_${k}_AS_INT`),
      ...expectAll(cb, CUBLAS_STATUS, (k) => `CUBLAS_STATUS_${k}`),
      ...expectAll(cb, CUBLAS_OP, (k) => `CUBLAS_OP_${k}`),
      ...expectAll(
        cb,
        CUBLAS_MATH,
        (k) =>
          k === "DISALLOW_REDUCED_PRECISION_REDUCTION" ? `CUBLAS_MATH_${k}` : `CUBLAS_${k}_MATH`,
      ),
      ...expectAll(cb, CUBLAS_COMPUTE, (k) => `CUBLAS_COMPUTE_${k.slice(1)}`),
      ...expectAll(cb, { GEMM_DEFAULT: CUBLAS_GEMM_DEFAULT }, (k) => `CUBLAS_${k}`),
      ...expectAll(cb, CUDA_R, (k) => `CUDA_R_${k.replace(/^(B?)F(\d+)$/, "$2$1F")}`),
      ...expectAll(dn, CUDNN_STATUS, (k) => `CUDNN_STATUS_${k}`),
      ...expectAll(dn, CUDNN_DATA, (k) => `CUDNN_DATA_${k}`),
      ...expectAll(dn, CUDNN_TENSOR, (k) => `CUDNN_TENSOR_${k}`),
      ...expectAll(dn, CUDNN_CONV_MODE, (k) => `CUDNN_${k}`),
      ...expectAll(
        dn,
        CUDNN_MATH,
        (k) =>
          k === "TENSOR_OP_ALLOW_CONVERSION"
            ? "CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION"
            : `CUDNN_${k}_MATH`,
      ),
      ...expectAll(dn, CUDNN_DETERMINISM, (k) => `CUDNN_${k}`),
      ...expectAll(dn, CUDNN_ALGO_COUNT, (k) =>
        ({
          forward: "CUDNN_CONVOLUTION_FWD_ALGO_COUNT",
          backwardData: "CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT",
          backwardFilter: "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT",
        })[k]!),
      ...expectAll(nv, NVRTC_RESULT, (k) => k === "SUCCESS" ? "NVRTC_SUCCESS" : `NVRTC_ERROR_${k}`),
      ...expectAll(nc, NCCL_DATA, (k) => `nccl${k[0].toUpperCase()}${k.slice(1)}`),
      ...expectAll(nc, NCCL_OP, (k) => `nccl${k[0].toUpperCase()}${k.slice(1)}`),
      ...expectAll(nc, { NCCL_UNIQUE_ID_BYTES }, (k) => k),
      ...expectAll(nc, Object.fromEntries(NCCL_RESULT_NAMES.map((n, i) => [n, i])), (k) => k),
    ];
    assert.deepEqual(wrong, []);
    // The parse itself reads real values (a wrong table could not hide behind empty maps).
    assert.equal(cu.get("CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR"), 75);
    assert.equal(dn.get("CUDNN_DATA_BFLOAT16"), 9);
  },
});

Deno.test({
  name: "constants: the cuDNN perf-struct layout equals offsetof/sizeof from cudnn.h" +
    (reason ? ` (skipped: ${reason})` : ""),
  ignore: reason !== undefined,
  fn() {
    const dir = Deno.makeTempDirSync({ prefix: "ressl_cudnn_layout_" });
    try {
      const src = join(dir, "layout.c");
      const fields = ["algo", "status", "time", "memory", "determinism", "mathType"];
      const lines = ["Fwd", "BwdData", "BwdFilter"].map((d) => {
        const t = `cudnnConvolution${d}AlgoPerf_t`;
        const offs = fields.map((f) => `(int)offsetof(${t}, ${f})`).join(", ");
        return `printf("%d ${fields.map(() => "%d").join(" ")}\\n", (int)sizeof(${t}), ${offs});`;
      });
      Deno.writeTextFileSync(
        src,
        `#include <stdio.h>\n#include <stddef.h>\n#include <cudnn.h>\nint main(void) {\n` +
          lines.join("\n") + "\nreturn 0; }\n",
      );
      const exe = join(dir, "layout");
      const cc = new Deno.Command(cCompiler()!, {
        args: [`-I${incs.cudnn}`, `-I${cudaInc}`, src, "-o", exe],
        stderr: "piped",
      }).outputSync();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const out = new TextDecoder().decode(new Deno.Command(exe).outputSync().stdout).trim();
      const want = [CUDNN_PERF.size, ...fields.map((f) => CUDNN_PERF[f as keyof typeof CUDNN_PERF])]
        .join(" ");
      assert.deepEqual(out.split("\n"), [want, want, want]);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
