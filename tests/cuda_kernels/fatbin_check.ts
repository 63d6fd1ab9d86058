/**
 * Checks that a kernels folder's fatbin was built from its sources: the manifest's sha256 of every
 * source (and of build.sh) against the files, the fatbin against the manifest's sha256 and size,
 * the fatbin's entries, and the kernel names and argument types of the sources against the
 * manifest and `signatures.ts`. Used by fatbin_test.ts on the real folder and on tampered copies.
 *
 * @module
 */

import { join } from "node:path";

/** The manifest written by build.sh. */
export interface KernelManifest {
  fatbin: string;
  fatbinSha256: string;
  fatbinBytes: number;
  nvcc: string;
  command: string;
  sources: Record<string, string>;
  kernels: string[];
}

/** One entry of a fatbin: kind (PTX or ELF), the SM it targets, whether it is compressed. */
export interface FatbinEntry {
  kind: "ptx" | "elf";
  sm: number;
  compressed: boolean;
}

/** Hex sha256 of bytes. */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return [...d].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads the manifest of a kernels folder. */
export function readManifest(dir: string): KernelManifest {
  const path = join(dir, "ressl_kernels.manifest.json");
  return JSON.parse(Deno.readTextFileSync(path)) as KernelManifest;
}

/** The inputs build.sh hashes: every *.cu and *.cuh file and build.sh, sorted. */
export function sourceFiles(dir: string): string[] {
  return [...Deno.readDirSync(dir)]
    .filter((e) => e.isFile && (/\.(cu|cuh)$/.test(e.name) || e.name === "build.sh"))
    .map((e) => e.name)
    .sort();
}

const REBUILD = "run ffi/cuda/kernels/build.sh and commit ressl_kernels.fatbin and " +
  "ressl_kernels.manifest.json with the sources";

/** Problems of the manifest against the folder's sources and fatbin (empty: consistent). */
export async function manifestProblems(dir: string): Promise<string[]> {
  const m = readManifest(dir);
  const problems: string[] = [];
  const files = sourceFiles(dir);
  for (const f of files) {
    const want = m.sources[f];
    if (want === undefined) problems.push(`${f} is not in the manifest (new file?): ${REBUILD}`);
    else if (want !== await sha256(Deno.readFileSync(join(dir, f)))) {
      problems.push(`${f} changed since the fatbin was built: ${REBUILD}`);
    }
  }
  for (const f of Object.keys(m.sources)) {
    if (!files.includes(f)) problems.push(`${f} is in the manifest but gone: ${REBUILD}`);
  }
  const fatbin = Deno.readFileSync(join(dir, m.fatbin));
  if (fatbin.length !== m.fatbinBytes || await sha256(fatbin) !== m.fatbinSha256) {
    problems.push(`${m.fatbin} is not the file the manifest describes: ${REBUILD}`);
  }
  return problems;
}

/** The entries of a fatbin (header magic 0xBA55ED50; entry kind 1 = PTX, 2 = ELF). */
export function fatbinEntries(bytes: Uint8Array): FatbinEntry[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 16 || v.getUint32(0, true) !== 0xba55ed50) {
    throw new Error("not a fatbin: the magic number 0xBA55ED50 is missing");
  }
  const headerSize = v.getUint16(6, true);
  const end = headerSize + Number(v.getBigUint64(8, true));
  if (end > bytes.length) throw new Error(`truncated fatbin: ${end} bytes announced`);
  const out: FatbinEntry[] = [];
  for (let at = headerSize; at < end;) {
    const kind = v.getUint16(at, true);
    const size = v.getUint32(at + 4, true);
    const payload = v.getUint32(at + 8, true);
    const sm = v.getUint32(at + 28, true);
    const flags = v.getBigUint64(at + 40, true);
    if (kind !== 1 && kind !== 2) throw new Error(`unknown fatbin entry kind ${kind} at ${at}`);
    out.push({ kind: kind === 1 ? "ptx" : "elf", sm, compressed: (flags & 0x8000n) !== 0n });
    at += size + payload;
  }
  return out;
}

/** A kernel declared in the sources: its name and argument C types mapped to launch types. */
export interface DeclaredKernel {
  name: string;
  args: string[];
}

/** `extern "C" __global__ void NAME(ARGS)` declarations of every .cu file of the folder. */
export function declaredKernels(dir: string): DeclaredKernel[] {
  const out: DeclaredKernel[] = [];
  for (const f of sourceFiles(dir).filter((f) => f.endsWith(".cu"))) {
    const text = Deno.readTextFileSync(join(dir, f));
    const re =
      /extern\s+"C"\s+__global__\s+void\s+(?:__launch_bounds__\s*\([^)]*\)\s+)?([A-Za-z_]\w*)\s*\(([^)]*)\)/g;
    for (const match of text.matchAll(re)) {
      const args = match[2].split(",").map((a) => a.trim()).filter((a) => a.length > 0);
      out.push({ name: match[1], args: args.map((a) => launchType(a, `${f}: ${match[1]}`)) });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** The launch type of one C parameter declaration (`const float* x` -> ptr, `int n` -> i32). */
function launchType(decl: string, where: string): string {
  if (decl.includes("*")) return "ptr";
  const type = decl.replace(/\s+[A-Za-z_]\w*$/, "").replace(/\bconst\b/g, "").trim();
  if (type === "int") return "i32";
  if (type === "float") return "f32";
  if (type === "double") return "f64";
  throw new Error(`${where}: parameter '${decl}' has a type the launch table cannot express`);
}
