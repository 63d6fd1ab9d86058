/**
 * bf16 gemm of the cpu backend: a oneDNN matmul primitive (`brg:avx512_core_bf16` on CPUs with
 * AVX512_BF16) on row-major operands, a transposed operand described by strides instead of being
 * copied. alpha is the primitive's output scale and beta a sum post-op (accumulation into c), so
 * the result is computed in f32 and rounded to bf16 once; with beta = 0 c is not read.
 *
 * @module
 */

import { Arg, checkStatus, DNNL_SIZEOF } from "../../../ffi/dnnl/mod.ts";
import { bf16ToF32, f32ToBf16 } from "../bf16.ts";
import { withAttr } from "./attr.ts";
import type { CpuRuntime } from "./runtime.ts";
import type { CpuStorage } from "./storage.ts";

/** c = alpha * op(a) @ op(b) + beta * c for bf16 storages (m, n >= 1). */
export function matmulBf16(
  rt: CpuRuntime,
  o: {
    a: CpuStorage;
    b: CpuStorage;
    c: CpuStorage;
    m: number;
    n: number;
    k: number;
    transA: boolean;
    transB: boolean;
    alpha: number;
    beta: number;
  },
): void {
  const { m, n, k, alpha, beta } = o;
  const dt = o.c.dataType;
  const cMd = rt.mds.plain([m * n], dt);
  if (k === 0) {
    // No products: c = beta * c, rounded once.
    const c = (beta === 0 ? rt.output(o.c, cMd) : rt.plain(o.c)).u16;
    for (let i = 0; i < m * n; i++) c[i] = beta === 0 ? 0 : f32ToBf16(beta * bf16ToF32(c[i]));
    return;
  }
  const key = `matmul:${dt}:${m},${n},${k}:${o.transA},${o.transB}:${alpha}:${beta}`;
  const p = rt.primitive(key, "matmul", () => {
    const op = new Uint8Array(DNNL_SIZEOF.matmulDesc);
    checkStatus(
      rt.sym.dnnl_matmul_desc_init(
        op,
        rt.mds.matrix(m, k, o.transA, dt),
        rt.mds.matrix(k, n, o.transB, dt),
        null,
        rt.mds.matrix(m, n, false, dt),
      ),
      `describe matmul [${m}x${k}] @ [${k}x${n}]`,
    );
    const spec = {
      outputScale: alpha === 1 ? undefined : alpha,
      postOps: beta === 0 ? [] : [{ kind: "sum" as const, scale: beta }],
    };
    const pd = withAttr(rt, spec, "matmul", (attr) => rt.createPd(op, "matmul", null, attr));
    return { pd, args: [Arg.src, Arg.weights, Arg.dst] };
  });
  // Operands are plain buffers whose first elements the (strided) descriptors address.
  const a = rt.plain(o.a), b = rt.plain(o.b);
  const c = beta === 0 ? rt.output(o.c, cMd) : rt.plain(o.c);
  p.execute([a.ptr, b.ptr, c.ptr]);
}
