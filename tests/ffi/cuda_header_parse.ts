/**
 * Reading the real NVIDIA headers for the binding tests: where `cuda.h` and the wheels' headers
 * are, the redirect macros of `cuda.h` / `cublas_v2.h`, function prototypes and enum values
 * (through the C preprocessor), and the FFI types a C type may be bound as.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { realLibraryDir } from "./cuda_helpers.ts";

function isFile(p: string): boolean {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
}

function which(cmd: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (dir && isFile(join(dir, cmd))) return join(dir, cmd);
  }
  return null;
}

/** The CUDA toolkit's include folder (holding `cuda.h`), from CUDA_HOME, nvcc or the usual place. */
export function cudaIncludeDir(): string | null {
  const candidates: string[] = [];
  const home = Deno.env.get("CUDA_HOME") ?? Deno.env.get("CUDA_PATH");
  if (home) candidates.push(join(home, "include"));
  const nvcc = which("nvcc");
  if (nvcc) candidates.push(join(dirname(dirname(Deno.realPathSync(nvcc))), "include"));
  candidates.push("/usr/local/cuda-13.0/include", "/usr/local/cuda/include");
  return candidates.find((d) => isFile(join(d, "cuda.h"))) ?? null;
}

/** The include folder next to a wheel library folder (`.../nvidia/cu13/lib` -> `.../include`). */
export function wheelIncludeDir(id: "cublas" | "cudnn" | "nvrtc" | "nccl"): string | null {
  const lib = realLibraryDir(id);
  if (lib === null) return null;
  const inc = join(dirname(lib), "include");
  return isFile(
      join(inc, { cublas: "cublas_v2.h", cudnn: "cudnn.h", nvrtc: "nvrtc.h", nccl: "nccl.h" }[id]),
    )
    ? inc
    : null;
}

/** The C compiler used to preprocess headers, or null. */
export function cCompiler(): string | null {
  return which("cc") ?? which("gcc") ?? which("clang");
}

/** Runs the C preprocessor on `#include <header>`; `macros` dumps the macro table instead. */
export function preprocess(header: string, includes: string[], macros = false): string {
  const cc = cCompiler();
  if (cc === null) throw new Error("no C compiler (cc, gcc or clang) on PATH");
  const tmp = Deno.makeTempFileSync({ suffix: ".c" });
  try {
    Deno.writeTextFileSync(tmp, `#include <${header}>\n`);
    const args = ["-E", ...(macros ? ["-dM"] : ["-P"]), ...includes.map((d) => `-I${d}`), tmp];
    const out = new Deno.Command(cc, { args, stdout: "piped", stderr: "piped" }).outputSync();
    if (!out.success) {
      throw new Error(`${cc} -E ${header} failed: ${new TextDecoder().decode(out.stderr)}`);
    }
    return new TextDecoder().decode(out.stdout);
  } finally {
    Deno.removeSync(tmp);
  }
}

/**
 * The name-redirecting macros of a header's text: `#define A B` or `#define A __CUDA_API_PTxx(B)`
 * (identity in the default, non-per-thread mode) with `A !== B`, as a map from A to B.
 */
export function redirects(text: string, prefix: string): Map<string, string> {
  const out = new Map<string, string>();
  const re = new RegExp(
    `^\\s*#\\s*define\\s+(${prefix}\\w*)\\s+(?:__CUDA_API_PT(?:DS|SZ)\\((\\w+)\\)|(\\w+))\\s*$`,
    "gm",
  );
  for (const m of text.matchAll(re)) {
    const target = m[2] ?? m[3];
    if (target !== m[1]) out.set(m[1], target);
  }
  return out;
}

/** A parsed prototype: return type and parameter types (names dropped). */
export interface Prototype {
  result: string;
  params: string[];
}

/** Flattens preprocessed text: no attributes, one space between tokens. */
export function flatten(text: string): string {
  let t = text.replace(/\s+/g, " ");
  // __attribute__((...)) with one level of nested parentheses inside.
  t = t.replace(/__attribute__\s*\(\((?:[^()]|\([^()]*\))*\)\)/g, "");
  return t;
}

/** The prototype of function `name` in flattened preprocessed text, or null. */
export function prototype(flat: string, name: string): Prototype | null {
  const re = new RegExp(`(?:^|[;{}])\\s*([\\w\\s\\*]*?)\\b${name}\\s*\\(([^()]*)\\)\\s*;`);
  const m = flat.match(re);
  if (m === null) return null;
  const params = m[2].trim() === "" || m[2].trim() === "void"
    ? []
    : m[2].split(",").map((p) => paramType(p.trim()));
  return { result: normalizeType(m[1].replace(/\bextern\b/g, "")), params };
}

function normalizeType(t: string): string {
  return t.replace(/\bconst\b/g, "").replace(/\s*\*\s*/g, "*").replace(/\s+/g, " ").trim();
}

function paramType(p: string): string {
  const array = /\[\s*\]$/.test(p);
  const body = p.replace(/\[\s*\]$/, "").trim();
  const m = body.match(/^(.*?[\s*])([A-Za-z_]\w*)$/);
  const type =
    m !== null && normalizeType(m[1]) !== "" && !/^(unsigned|signed)$/.test(normalizeType(m[1]))
      ? m[1]
      : body;
  return normalizeType(type) + (array ? "*" : "");
}

const HANDLES = new Set([
  "CUcontext",
  "CUstream",
  "CUevent",
  "CUmodule",
  "CUfunction",
  "CUgraph",
  "CUgraphExec",
  "cublasHandle_t",
  "cudaStream_t",
  "cudnnHandle_t",
  "cudnnTensorDescriptor_t",
  "cudnnFilterDescriptor_t",
  "cudnnConvolutionDescriptor_t",
  "nvrtcProgram",
  "ncclComm_t",
]);

const ENUMS = new Set([
  "CUresult",
  "CUdevice",
  "CUdevice_attribute",
  "CUstreamCaptureMode",
  "cublasStatus_t",
  "cublasOperation_t",
  "cublasMath_t",
  "cudaDataType",
  "cublasComputeType_t",
  "cublasGemmAlgo_t",
  "libraryPropertyType",
  "cudnnStatus_t",
  "cudnnTensorFormat_t",
  "cudnnDataType_t",
  "cudnnConvolutionMode_t",
  "cudnnMathType_t",
  "cudnnConvolutionFwdAlgo_t",
  "cudnnConvolutionBwdDataAlgo_t",
  "cudnnConvolutionBwdFilterAlgo_t",
  "nvrtcResult",
  "ncclResult_t",
  "ncclDataType_t",
  "ncclRedOp_t",
  "int",
]);

const SCALARS: Record<string, string[]> = {
  "CUdeviceptr": ["u64"],
  "size_t": ["usize", "u64"],
  "unsigned long long": ["u64"],
  "unsigned long long int": ["u64"],
  "cuuint64_t": ["u64"],
  "long long": ["i64"],
  "long long int": ["i64"],
  "int64_t": ["i64"],
  "unsigned int": ["u32"],
  "unsigned": ["u32"],
  "unsigned char": ["u8"],
  "float": ["f32"],
  "double": ["f64"],
  "void": ["void"],
  "ncclUniqueId": ["struct16xu64"],
};

/**
 * The Deno FFI types a C type may be bound as with the same calling convention: pointers and
 * handles as `pointer`/`buffer` (or `u64`/`usize` for device addresses), enums and `int` as `i32`,
 * the rest by width and class. Null for a type this table does not know.
 */
export function ffiTypesFor(cType: string): string[] | null {
  if (cType.endsWith("*")) return ["pointer", "buffer", "u64", "usize"];
  if (HANDLES.has(cType)) return ["pointer"];
  if (ENUMS.has(cType)) return ["i32"];
  return SCALARS[cType] ?? null;
}

/** A symbol-table type as a comparable string (`struct16xu64` for the NCCL id). */
export function ffiTypeName(t: unknown): string {
  if (typeof t === "string") return t;
  const s = (t as { struct?: unknown[] }).struct;
  if (Array.isArray(s)) return `struct${s.length}x${s[0]}`;
  return JSON.stringify(t);
}

/** `NAME = value` of every enum in flattened text (implicit values counted; expressions skipped). */
export function enumValues(flat: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const body of flat.matchAll(/\benum\s*\w*\s*\{([^}]*)\}/g)) {
    let next = 0;
    for (const item of body[1].split(",")) {
      const m = item.trim().match(/^(\w+)\s*(?:=\s*(.+))?$/);
      if (m === null) continue;
      let v: number | undefined = next;
      if (m[2] !== undefined) {
        const e = m[2].trim();
        v = /^-?(0x[0-9a-f]+|\d+)$/i.test(e) ? Number(e) : out.get(e);
      }
      if (v === undefined) continue;
      out.set(m[1], v);
      next = v + 1;
    }
  }
  return out;
}

/** `#define NAME number` values from a `-dM` macro dump. */
export function defineValues(macros: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of macros.matchAll(/^#define (\w+) \(?(-?(?:0x[0-9a-fA-F]+|\d+))\)?$/gm)) {
    out.set(m[1], Number(m[2]));
  }
  return out;
}
