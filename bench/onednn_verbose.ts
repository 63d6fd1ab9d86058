/**
 * Parsing and aggregation of oneDNN's verbose log (`ONEDNN_VERBOSE=1`, also `DNNL_VERBOSE=1`): one
 * line per executed primitive with its kind, implementation (`jit:avx512_core`, `brg_conv_fwd:...`,
 * `gemm:jit`, `ref:any`, ...), propagation kind, memory descriptors, problem and time in ms. Reads
 * both the oneDNN 2.x format (`onednn_verbose,exec,cpu,...`) and the 3.x one
 * (`onednn_verbose,v1,primitive,exec,cpu,...`, what PyTorch 2.x prints).
 *
 * @module
 */

/** One executed primitive. */
export interface VerboseExec {
  kind: string;
  impl: string;
  prop: string;
  mds: string;
  aux: string;
  problem: string;
  ms: number;
}

/** The executed primitive of a verbose line, or undefined for any other line. */
export function parseVerboseLine(line: string): VerboseExec | undefined {
  if (!line.startsWith("onednn_verbose,") && !line.startsWith("dnnl_verbose,")) return undefined;
  const f = line.trim().split(",");
  const i = f.indexOf("exec");
  if (i < 0 || f[i + 1] !== "cpu" || f.length < i + 10) return undefined;
  const ms = Number(f[f.length - 1]);
  if (!Number.isFinite(ms)) return undefined;
  // exec, cpu, kind, impl, prop, mds, attrs, aux, problem, time
  return {
    kind: f[i + 2],
    impl: f[i + 3],
    prop: f[i + 4],
    mds: f[i + 5],
    aux: f[i + 7],
    problem: f[f.length - 2],
    ms,
  };
}

/** Executions with the same kind, implementation, direction and problem, summed. */
export interface VerboseGroup {
  kind: string;
  impl: string;
  prop: string;
  problem: string;
  /** For reorders: `from -> to` formats; else the data layout of the first tensor. */
  layout: string;
  calls: number;
  ms: number;
}

function formats(mds: string): string[] {
  // 2.x: "src_f32::blocked:aBcd16b:f0 dst_f32::blocked:abcd:f0"; 3.x: "src:f32::blocked:acdb::f0"
  return mds.split(" ").map((m) => m.match(/blocked:([A-Za-z0-9]+)/)?.[1] ?? m.split(":")[0]);
}

/** Groups executions (see {@link VerboseGroup}), slowest first. */
export function groupVerbose(execs: VerboseExec[]): VerboseGroup[] {
  const map = new Map<string, VerboseGroup>();
  for (const e of execs) {
    const f = formats(e.mds);
    const layout = e.kind === "reorder" ? `${f[0]} -> ${f[f.length - 1]}` : f[0] ?? "";
    const key = `${e.kind}|${e.impl}|${e.prop}|${e.problem}|${layout}`;
    const g = map.get(key);
    if (g) {
      g.calls++;
      g.ms += e.ms;
    } else {
      map.set(key, {
        kind: e.kind,
        impl: e.impl,
        prop: e.prop,
        problem: e.problem,
        layout,
        calls: 1,
        ms: e.ms,
      });
    }
  }
  return [...map.values()].sort((a, b) => b.ms - a.ms);
}

/** Multiply-accumulates of a convolution problem string (`mb64_ic64oc64_ih28oh28kh3..._iw...`). */
export function convMacs(problem: string): number | undefined {
  const n = (k: string) => Number(problem.match(new RegExp(`${k}(\\d+)`))?.[1]);
  const mb = n("mb"), ic = n("ic"), oc = n("oc"), oh = n("oh"), ow = n("ow");
  const kh = n("kh"), kw = n("kw");
  const g = problem.match(/g(\d+)/) ? n("g") : 1;
  const v = mb * (ic / g) * oc * oh * ow * kh * kw;
  return Number.isFinite(v) ? v : undefined;
}

/** A short conv shape from a problem string: `mb64 64x28x28 -> 64x28x28 k3 s1`. */
export function convShape(problem: string): string {
  const n = (k: string) => problem.match(new RegExp(`${k}(\\d+)`))?.[1] ?? "?";
  return `mb${n("mb")} ${n("ic")}x${n("ih")}x${n("iw")} -> ${n("oc")}x${n("oh")}x${n("ow")} k${
    n("kh")
  } s${n("sh")}`;
}

/** Implementation classes that mean a slow fallback: reference code or im2col + gemm. */
export function isFallback(impl: string): boolean {
  return /^ref|gemm:|simple:|:any$/.test(impl) && !/brg|jit:avx512/.test(impl);
}
