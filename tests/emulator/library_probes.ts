/**
 * Calls that need no GPU, made the same way on the real NVIDIA libraries (from the wheels, in an
 * isolated process) and on the stand-ins, so tests can require identical answers: cuBLAS/cuDNN
 * status names and strings, and a sequence of cuDNN descriptor calls (valid and invalid) with
 * their statuses and outputs.
 *
 * @module
 */

import { join } from "node:path";
import { ROOT } from "./emu_helpers.ts";

/** Where setup_cuda.sh installs NVIDIA's wheels. */
export const WHEEL_LIBS = join(
  Deno.env.get("RESSL_CUDA_WHEELS_DIR") ?? join(ROOT, ".cache", "nvidia"),
  "nvidia",
);
export const REAL_CUBLAS = join(WHEEL_LIBS, "cu13", "lib", "libcublas.so.13");
export const REAL_CUDNN = join(WHEEL_LIBS, "cudnn", "lib", "libcudnn.so.9");

const cstr = (p: Deno.PointerValue) => (p ? Deno.UnsafePointerView.getCString(p) : "(null)");

/** cublasGetStatusName/String and cudnnGetErrorString over known and unknown codes. */
export function statusStrings(cublas: string, cudnn: string): string[] {
  const b = Deno.dlopen(cublas, {
    cublasGetStatusName: { parameters: ["i32"], result: "pointer" },
    cublasGetStatusString: { parameters: ["i32"], result: "pointer" },
  });
  const d = Deno.dlopen(cudnn, { cudnnGetErrorString: { parameters: ["i32"], result: "pointer" } });
  const out: string[] = [];
  for (const code of [0, 1, 3, 7, 8, 11, 13, 14, 15, 16, 42, -1]) {
    out.push(
      `${code} ${cstr(b.symbols.cublasGetStatusName(code))} / ${
        cstr(b.symbols.cublasGetStatusString(code))
      }`,
    );
  }
  const dnnCodes = [0, 3, 1000, 2001, 6000, -1];
  for (let c = 1001; c <= 1008; c++) dnnCodes.push(c);
  for (let c = 2000; c <= 2012; c++) dnnCodes.push(c);
  for (let c = 3000; c <= 3014; c++) dnnCodes.push(c);
  for (let c = 4000; c <= 4006; c++) dnnCodes.push(c);
  for (let c = 5000; c <= 5004; c++) dnnCodes.push(c);
  for (const code of dnnCodes) out.push(`${code} ${cstr(d.symbols.cudnnGetErrorString(code))}`);
  return out;
}

const P = "pointer", I = "i32", B = "buffer";
const CUDNN_SYMBOLS = {
  cudnnCreateTensorDescriptor: { parameters: [B], result: I },
  cudnnSetTensor4dDescriptor: { parameters: [P, I, I, I, I, I, I], result: I },
  cudnnSetTensor4dDescriptorEx: { parameters: [P, I, I, I, I, I, I, I, I, I], result: I },
  cudnnSetTensorNdDescriptor: { parameters: [P, I, I, B, B], result: I },
  cudnnSetTensorNdDescriptorEx: { parameters: [P, I, I, I, B], result: I },
  cudnnGetTensor4dDescriptor: { parameters: [P, B, B, B, B, B, B, B, B, B], result: I },
  cudnnGetTensorNdDescriptor: { parameters: [P, I, B, B, B, B], result: I },
  cudnnGetTensorSizeInBytes: { parameters: [P, B], result: I },
  cudnnDestroyTensorDescriptor: { parameters: [P], result: I },
  cudnnCreateFilterDescriptor: { parameters: [B], result: I },
  cudnnSetFilter4dDescriptor: { parameters: [P, I, I, I, I, I, I], result: I },
  cudnnSetFilterNdDescriptor: { parameters: [P, I, I, I, B], result: I },
  cudnnGetFilter4dDescriptor: { parameters: [P, B, B, B, B, B, B], result: I },
  cudnnGetFilterSizeInBytes: { parameters: [P, B], result: I },
  cudnnDestroyFilterDescriptor: { parameters: [P], result: I },
  cudnnCreateConvolutionDescriptor: { parameters: [B], result: I },
  cudnnSetConvolution2dDescriptor: { parameters: [P, I, I, I, I, I, I, I, I], result: I },
  cudnnGetConvolution2dDescriptor: { parameters: [P, B, B, B, B, B, B, B, B], result: I },
  cudnnSetConvolutionNdDescriptor: { parameters: [P, I, B, B, B, I, I], result: I },
  cudnnGetConvolutionNdDescriptor: { parameters: [P, I, B, B, B, B, B, B], result: I },
  cudnnSetConvolutionMathType: { parameters: [P, I], result: I },
  cudnnGetConvolutionMathType: { parameters: [P, B], result: I },
  cudnnSetConvolutionGroupCount: { parameters: [P, I], result: I },
  cudnnGetConvolutionGroupCount: { parameters: [P, B], result: I },
  cudnnGetConvolution2dForwardOutputDim: { parameters: [P, P, P, B, B, B, B], result: I },
  cudnnDestroyConvolutionDescriptor: { parameters: [P], result: I },
} as const satisfies Deno.ForeignLibraryInterface;

const FLOAT = 0, HALF = 2, INT8 = 3, INT32 = 4, INT8x4 = 5, BF16 = 9, DOUBLE = 1;
const NCHW = 0, NHWC = 1, VECT_C = 2;

/** The descriptor sequence; each entry: label, status, then the outputs the call wrote. */
export function cudnnDescriptorProbe(cudnn: string): (string | number)[][] {
  const lib = Deno.dlopen(cudnn, CUDNN_SYMBOLS);
  const s = lib.symbols;
  const out = new BigUint64Array(1);
  const make = (f: (o: BigUint64Array) => number) => (f(out), Deno.UnsafePointer.create(out[0]));
  const t = make(s.cudnnCreateTensorDescriptor), u = make(s.cudnnCreateTensorDescriptor);
  const f = make(s.cudnnCreateFilterDescriptor);
  const c = make(s.cudnnCreateConvolutionDescriptor),
    fresh = make(s.cudnnCreateConvolutionDescriptor);
  const ints = (n: number) => Array.from({ length: n }, () => new Int32Array(1));
  const vals = (xs: Int32Array[]) => xs.map((x) => x[0]);
  const i32 = (xs: number[]) => Int32Array.from(xs);
  const rows: (string | number)[][] = [];
  const row = (label: string, status: number, ...outputs: number[]) =>
    rows.push([label, status, ...outputs]);
  const t4 = (label: string, fmt: number, dt: number, d: number[]) =>
    row(`tensor4d ${label}`, s.cudnnSetTensor4dDescriptor(t, fmt, dt, d[0], d[1], d[2], d[3]));

  row("create null", s.cudnnCreateTensorDescriptor(null));
  t4("ok", NCHW, FLOAT, [2, 3, 8, 8]);
  t4("n=0", NCHW, FLOAT, [0, 3, 8, 8]);
  t4("n=-1", NCHW, FLOAT, [-1, 3, 8, 8]);
  t4("dtype 99", NCHW, 99, [2, 3, 8, 8]);
  t4("dtype 18", NCHW, 18, [2, 3, 8, 8]);
  t4("format 7", 7, FLOAT, [2, 3, 8, 8]);
  t4("vect_c f32", VECT_C, FLOAT, [2, 3, 8, 8]);
  t4("vect_c int8x4", VECT_C, INT8x4, [2, 4, 8, 8]);
  t4("nchw int8x4", NCHW, INT8x4, [2, 4, 8, 8]);
  t4("half", NCHW, HALF, [2, 3, 8, 8]);
  t4("2^31-32768 elements", NCHW, FLOAT, [1, 1, 32768, 65535]);
  t4("2^31 elements", NCHW, FLOAT, [1, 1, 32768, 65536]);
  row("tensor4d null", s.cudnnSetTensor4dDescriptor(null, NCHW, FLOAT, 2, 3, 8, 8));
  for (
    const [label, st] of [
      ["ok", [192, 64, 8, 1]],
      ["stride 0", [192, 64, 8, 0]],
      ["stride -1", [192, 64, 8, -1]],
      ["overlap", [1, 1, 1, 1]],
      ["2^31 span", [1 << 30, 64, 8, 1]],
    ] as const
  ) {
    const n = label === "2^31 span" ? 3 : 2;
    row(
      `tensor4dEx ${label}`,
      s.cudnnSetTensor4dDescriptorEx(t, FLOAT, n, 3, 8, 8, st[0], st[1], st[2], st[3]),
    );
  }
  const dims = i32([2, 3, 4, 5, 6]), strides = i32([360, 120, 30, 6, 1]);
  for (const nb of [5, 3, 2, 1, 9, 0]) {
    row(
      `tensorNd nb=${nb}`,
      s.cudnnSetTensorNdDescriptor(t, FLOAT, nb, dims, strides.subarray(5 - Math.min(nb, 5))),
    );
  }
  for (const [fmt, nb] of [[NCHW, 4], [NHWC, 4], [NCHW, 3], [NHWC, 3]]) {
    row(`tensorNdEx ${fmt} ${nb}`, s.cudnnSetTensorNdDescriptorEx(t, fmt, FLOAT, nb, dims));
  }
  t4("nhwc bf16", NHWC, BF16, [2, 3, 4, 5]);
  let o = ints(9);
  row(
    "get tensor4d",
    s.cudnnGetTensor4dDescriptor(t, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8]),
    ...vals(o),
  );
  const nd = new Int32Array(4),
    ns = new Int32Array(4),
    dt = new Int32Array(1),
    nbo = new Int32Array(1);
  row(
    "get tensorNd 2",
    s.cudnnGetTensorNdDescriptor(t, 2, dt, nbo, nd, ns),
    dt[0],
    nbo[0],
    ...nd,
    ...ns,
  );
  const size = new BigUint64Array(1);
  row("tensor size", s.cudnnGetTensorSizeInBytes(t, size), Number(size[0]));
  o = ints(9);
  row(
    "get fresh tensor4d",
    s.cudnnGetTensor4dDescriptor(u, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7], o[8]),
    ...vals(o),
  );

  const f4 = (label: string, dt: number, fmt: number, d: number[]) =>
    row(`filter4d ${label}`, s.cudnnSetFilter4dDescriptor(f, dt, fmt, d[0], d[1], d[2], d[3]));
  f4("ok", FLOAT, NCHW, [4, 3, 3, 3]);
  f4("k=0", FLOAT, NCHW, [0, 3, 3, 3]);
  f4("dtype 99", 99, NCHW, [4, 3, 3, 3]);
  f4("format 9", FLOAT, 9, [4, 3, 3, 3]);
  f4("vect_c f32", FLOAT, VECT_C, [4, 3, 2, 5]);
  f4("huge", FLOAT, NCHW, [1 << 16, 1 << 16, 8, 8]);
  for (const nb of [5, 2, 3, 9]) {
    row(
      `filterNd nb=${nb}`,
      s.cudnnSetFilterNdDescriptor(f, FLOAT, NCHW, nb, i32([4, 3, 3, 3, 3])),
    );
  }
  f4("nhwc", FLOAT, NHWC, [4, 3, 2, 5]);
  o = ints(6);
  row(
    "get filter4d",
    s.cudnnGetFilter4dDescriptor(f, o[0], o[1], o[2], o[3], o[4], o[5]),
    ...vals(o),
  );
  row("filter size", s.cudnnGetFilterSizeInBytes(f, size), Number(size[0]));

  const c2 = (label: string, p: number[], mode: number, dt: number) =>
    row(
      `conv2d ${label}`,
      s.cudnnSetConvolution2dDescriptor(c, p[0], p[1], p[2], p[3], p[4], p[5], mode, dt),
    );
  c2("ok", [1, 1, 1, 1, 1, 1], 1, FLOAT);
  c2("pad -1", [-1, 1, 1, 1, 1, 1], 1, FLOAT);
  c2("stride 0", [1, 1, 0, 1, 1, 1], 1, FLOAT);
  c2("dilation 0", [1, 1, 1, 1, 0, 1], 1, FLOAT);
  c2("mode 5", [1, 1, 1, 1, 1, 1], 5, FLOAT);
  for (
    const [name, dt] of [["f64", DOUBLE], ["f16", HALF], ["i32", INT32], ["i8", INT8], [
      "bf16",
      BF16,
    ], ["99", 99]] as const
  ) {
    c2(`compute ${name}`, [0, 0, 1, 1, 1, 1], 1, dt);
  }
  c2("convolution mode", [1, 2, 2, 3, 2, 1], 0, FLOAT);
  o = ints(8);
  row(
    "get conv2d",
    s.cudnnGetConvolution2dDescriptor(c, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]),
    ...vals(o),
  );
  const pa = i32([1, 2, 1]), st = i32([1, 1, 1]), di = i32([1, 1, 1]);
  for (const n of [2, 3, 1, 0, 7]) {
    row(`convNd ${n}`, s.cudnnSetConvolutionNdDescriptor(c, n, pa, st, di, 1, FLOAT));
  }
  row("convNd 2 again", s.cudnnSetConvolutionNdDescriptor(c, 2, pa, st, di, 1, FLOAT));
  for (const req of [2, 6, 7, 1, 0]) {
    const al = new Int32Array(1),
      p2 = new Int32Array(6),
      s2 = new Int32Array(6),
      d2 = new Int32Array(6),
      md = new Int32Array(1),
      ct = new Int32Array(1);
    row(
      `get convNd ${req}`,
      s.cudnnGetConvolutionNdDescriptor(c, req, al, p2, s2, d2, md, ct),
      al[0],
      ...p2.subarray(0, Math.min(req, 2)),
    );
  }
  const mt = new Int32Array(1), gc = new Int32Array(1);
  row("math 1", s.cudnnSetConvolutionMathType(c, 1));
  row("math 9", s.cudnnSetConvolutionMathType(c, 9));
  row("get math", s.cudnnGetConvolutionMathType(c, mt), mt[0]);
  for (const g of [2, 0, 1]) row(`groups ${g}`, s.cudnnSetConvolutionGroupCount(c, g));
  o = ints(8);
  row(
    "fresh conv2d",
    s.cudnnGetConvolution2dDescriptor(fresh, o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]),
    ...vals(o),
  );
  row("fresh math", s.cudnnGetConvolutionMathType(fresh, mt), mt[0]);
  row("fresh groups", s.cudnnGetConvolutionGroupCount(fresh, gc), gc[0]);

  const outDim = (label: string, x: number[], w: number[], conv: number[], groups = 1) => {
    s.cudnnSetTensor4dDescriptor(t, NCHW, FLOAT, x[0], x[1], x[2], x[3]);
    s.cudnnSetFilter4dDescriptor(f, FLOAT, NCHW, w[0], w[1], w[2], w[3]);
    s.cudnnSetConvolution2dDescriptor(
      c,
      conv[0],
      conv[1],
      conv[2],
      conv[3],
      conv[4],
      conv[5],
      1,
      FLOAT,
    );
    s.cudnnSetConvolutionGroupCount(c, groups);
    const r = ints(4);
    row(
      `output ${label}`,
      s.cudnnGetConvolution2dForwardOutputDim(c, t, f, r[0], r[1], r[2], r[3]),
      ...vals(r),
    );
  };
  outDim("same", [2, 3, 8, 8], [4, 3, 3, 3], [1, 1, 1, 1, 1, 1]);
  outDim("strided dilated", [2, 3, 9, 7], [4, 3, 3, 2], [1, 0, 2, 3, 2, 1]);
  outDim("channels differ", [2, 3, 8, 8], [4, 5, 3, 3], [1, 1, 1, 1, 1, 1]);
  outDim("filter 5 on 3 pad 1", [2, 3, 3, 3], [4, 3, 5, 5], [1, 1, 1, 1, 1, 1]);
  outDim("filter 6 on 3 pad 1", [2, 3, 3, 3], [4, 3, 6, 6], [1, 1, 1, 1, 1, 1]);
  outDim("3 groups", [2, 3, 8, 8], [6, 1, 3, 3], [1, 1, 2, 2, 1, 1], 3);
  outDim("stride 2", [2, 3, 8, 8], [4, 3, 3, 3], [1, 1, 2, 2, 1, 1]);

  row("destroy tensor", s.cudnnDestroyTensorDescriptor(t));
  row("destroy null tensor", s.cudnnDestroyTensorDescriptor(null));
  row("destroy null filter", s.cudnnDestroyFilterDescriptor(null));
  row("destroy null conv", s.cudnnDestroyConvolutionDescriptor(null));
  s.cudnnDestroyTensorDescriptor(u);
  s.cudnnDestroyFilterDescriptor(f);
  s.cudnnDestroyConvolutionDescriptor(c);
  s.cudnnDestroyConvolutionDescriptor(fresh);
  lib.close();
  return rows;
}
