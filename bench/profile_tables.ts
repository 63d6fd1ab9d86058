/**
 * Markdown tables of `bench/profile.ts`: where our step goes (kernel classes, loader wait, time
 * between kernels, GC), the convolutions by shape and direction against PyTorch's oneDNN on the
 * same problems, the other oneDNN primitives, reorders, threads and PyTorch's operator profile.
 *
 * @module
 */

import { kernelClass, type KernelRecord } from "./kernel_timer.ts";
import type { ProfileRunResult } from "./profile_run.ts";
import type { ChildOutput, TorchProfile } from "./profile_children.ts";
import {
  convMacs,
  convShape,
  groupVerbose,
  isFallback,
  type VerboseExec,
} from "./onednn_verbose.ts";
import { median } from "./step_cases.ts";

const f0 = (x: number) => x.toFixed(0);
const f1 = (x: number) => x.toFixed(1);

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(" | ")} |`,
    `|---|${head.slice(1).map(() => "---:").join("|")}|`,
    ...rows.map((r) => `| ${r.join(" | ")} |`),
  ].join("\n");
}

/** Per measured step: kernel class -> [ms, calls]. */
function byClass(r: ProfileRunResult): Map<string, [number, number]> {
  const n = r.steps.length;
  const m = new Map<string, [number, number]>();
  for (const k of r.records) {
    const c = kernelClass(k.kernel, k.site);
    const v = m.get(c) ?? [0, 0];
    m.set(c, [v[0] + k.ms / n, v[1] + k.calls / n]);
  }
  return m;
}

/** Table A: where one step goes, training loop and isolated step side by side. */
export function stepBreakdown(
  loop: ChildOutput<ProfileRunResult>,
  iso: ChildOutput<ProfileRunResult>,
): string {
  const a = byClass(loop.result), b = byClass(iso.result);
  const wall = (r: ProfileRunResult) => median(r.steps.map((s) => s.wallMs));
  const mean = (r: ProfileRunResult, k: "wallMs" | "waitMs" | "kernelMs") =>
    r.steps.reduce((x, s) => x + s[k], 0) / r.steps.length;
  const classes = [...new Set([...a.keys(), ...b.keys()])].sort((x, y) =>
    (a.get(y)?.[0] ?? 0) - (a.get(x)?.[0] ?? 0)
  );
  const wl = mean(loop.result, "wallMs"), wi = mean(iso.result, "wallMs");
  const pct = (x: number, w: number) => `${f1(x)} (${f0(100 * x / w)}%)`;
  const rows = classes.map((c) => [
    c,
    pct(a.get(c)?.[0] ?? 0, wl),
    pct(b.get(c)?.[0] ?? 0, wi),
    f0(a.get(c)?.[1] ?? 0),
  ]);
  const between = (r: ProfileRunResult) =>
    mean(r, "wallMs") - mean(r, "waitMs") - mean(r, "kernelMs");
  const gc = (o: ChildOutput<ProfileRunResult>) =>
    o.gc ? o.gc.pauseMs / o.result.steps.length : NaN;
  const calls = (r: ProfileRunResult) =>
    r.records.reduce((x, k) => x + k.calls, 0) / r.steps.length;
  rows.push(
    [
      "**all backend calls**",
      pct(mean(loop.result, "kernelMs"), wl),
      pct(mean(iso.result, "kernelMs"), wi),
      f0(calls(loop.result)),
    ],
    ["waiting for the loader", pct(mean(loop.result, "waitMs"), wl), "-", ""],
    [
      "between kernels (TS ops/autodiff/scopes, FFI, GC)",
      pct(between(loop.result), wl),
      pct(between(iso.result), wi),
      "",
    ],
    ["  of which GC pauses (main isolate)", pct(gc(loop), wl), pct(gc(iso), wi), ""],
    [
      "**step wall (mean; median)**",
      `${f1(wl)}; ${f1(wall(loop.result))}`,
      `${f1(wi)}; ${f1(wall(iso.result))}`,
      "",
    ],
  );
  return table([
    "kernel class",
    "training loop ms/step (%)",
    "isolated step ms/step (%)",
    "calls/step",
  ], rows);
}

/** Table of the per-thread CPU time of the training loop. */
export function threadTable(loop: ProfileRunResult): string {
  const n = loop.steps.length;
  const wall = loop.windowSeconds / n;
  const roles = new Map<string, [number, number, number]>();
  for (const t of loop.threads) {
    const v = roles.get(t.role) ?? [0, 0, 0];
    roles.set(t.role, [
      v[0] + t.cpuSeconds / n,
      v[1] + t.voluntarySwitches / n,
      v[2] + t.involuntarySwitches / n,
    ]);
  }
  const rows = [...roles.entries()].sort((x, y) => y[1][0] - x[1][0]).map(([r, v]) => [
    r,
    f0(1000 * v[0]),
    `${f0(100 * v[0] / wall)}%`,
    f0(v[1]),
    f0(v[2]),
  ]);
  const total = [...roles.values()].reduce((x, v) => x + v[0], 0);
  rows.push([
    "**all threads**",
    f0(1000 * total),
    `${f0(100 * total / wall)}% of one core`,
    "",
    "",
  ]);
  return table(
    ["thread", "CPU ms/step", "of wall", "voluntary switches/step", "involuntary/step"],
    rows,
  );
}

function dir(prop: string): string {
  if (prop.startsWith("forward")) return "fwd";
  if (prop === "backward_data") return "bwd-data";
  if (prop === "backward_weights") return "bwd-weights";
  return prop;
}

interface ConvRow {
  calls: number;
  ms: number;
  impl: string;
}

function convGroups(execs: VerboseExec[], steps: number): Map<string, ConvRow> {
  const m = new Map<string, ConvRow>();
  for (const e of execs) {
    if (e.kind !== "convolution") continue;
    const key = `${convShape(e.problem)}|${dir(e.prop)}|${e.problem}`;
    const r = m.get(key) ?? { calls: 0, ms: 0, impl: e.impl };
    r.calls += 1 / steps;
    r.ms += e.ms / steps;
    if (!r.impl.split(" / ").includes(e.impl)) r.impl += ` / ${e.impl}`;
    m.set(key, r);
  }
  return m;
}

/** Table B: convolutions by shape and direction, ours (oneDNN 2.6.3) vs PyTorch's oneDNN. */
export function convTable(
  ours: ChildOutput<ProfileRunResult>,
  peers: [string, ChildOutput<TorchProfile>][],
  peak: number,
): string {
  const mine = convGroups(ours.verbose, ours.result.steps.length);
  const theirs = peers.map(([l, p]) => [l, convGroups(p.verbose, p.result.times.length)] as const);
  const rows: string[][] = [];
  let total = 0, flops = 0;
  for (const [key, r] of [...mine.entries()].sort((x, y) => y[1].ms - x[1].ms)) {
    const [shape, d, problem] = key.split("|");
    const macs = convMacs(problem) ?? NaN;
    const gf = (ms: number) => 2 * macs / (ms / 1000) / 1e9;
    const perCall = r.ms / r.calls;
    total += r.ms;
    flops += 2 * macs * r.calls;
    rows.push([
      shape,
      d,
      `${r.impl}${isFallback(r.impl) ? " **(fallback)**" : ""}`,
      f1(r.calls),
      f1(r.ms),
      `${f1(perCall)}`,
      `${f0(gf(perCall))} (${f0(100 * gf(perCall) / peak)}%)`,
      ...theirs.map(([, t]) => {
        const o = t.get(key);
        return o ? `${f1(o.ms / o.calls)} ${o.impl} (${f0(gf(o.ms / o.calls))})` : "- (not oneDNN)";
      }),
    ]);
  }
  rows.push([
    "**all convolutions**",
    "",
    "",
    "",
    f1(total),
    "",
    `${f0(flops / (total / 1000) / 1e9)} (${f0(100 * flops / (total / 1000) / 1e9 / peak)}%)`,
    ...theirs.map(([, t]) => {
      const ms = [...t.values()].reduce((x, v) => x + v.ms, 0);
      return `${f1(ms)} ms/step`;
    }),
  ]);
  return table(
    [
      "conv (input -> output)",
      "direction",
      "ours: implementation",
      "calls/step",
      "ms/step",
      "ms/call",
      "GFLOP/s (% of peak)",
      ...theirs.map(([l]) => `${l}: ms/call, implementation (GFLOP/s)`),
    ],
    rows,
  );
}

/** Table C: every other oneDNN primitive (BN, eltwise, sum, reorder, pooling, ...), both sides. */
export function primitiveTable(
  ours: ChildOutput<ProfileRunResult>,
  peers: [string, ChildOutput<TorchProfile>][],
): string {
  const sum = (execs: VerboseExec[], steps: number) => {
    const m = new Map<string, [number, number, Set<string>]>();
    for (const e of execs) {
      if (e.kind === "convolution") continue;
      const key = `${e.kind} ${dir(e.prop)}`;
      const v = m.get(key) ?? [0, 0, new Set<string>()];
      v[0] += 1 / steps;
      v[1] += e.ms / steps;
      v[2].add(e.impl);
      m.set(key, v);
    }
    return m;
  };
  const mine = sum(ours.verbose, ours.result.steps.length);
  const theirs = peers.map(([l, p]) => [l, sum(p.verbose, p.result.times.length)] as const);
  const keys = [...new Set([...mine.keys(), ...theirs.flatMap(([, t]) => [...t.keys()])])];
  keys.sort((a, b) => (mine.get(b)?.[1] ?? 0) - (mine.get(a)?.[1] ?? 0));
  const cell = (v?: [number, number, Set<string>]) =>
    v ? `${f0(v[0])} / ${f1(v[1])} (${[...v[2]].join(", ")})` : "-";
  return table(
    [
      "primitive",
      "ours: calls / ms per step (impl)",
      ...theirs.map(([l]) => `${l}: calls / ms (impl)`),
    ],
    keys.map((k) => [k, cell(mine.get(k)), ...theirs.map(([, t]) => cell(t.get(k)))]),
  );
}

/** Table D: our reorders by source -> destination layout. */
export function reorderTable(ours: ChildOutput<ProfileRunResult>): string {
  const n = ours.result.steps.length;
  const g = groupVerbose(ours.verbose.filter((e) => e.kind === "reorder"));
  const m = new Map<string, [number, number]>();
  for (const r of g) {
    const v = m.get(r.layout) ?? [0, 0];
    m.set(r.layout, [v[0] + r.calls / n, v[1] + r.ms / n]);
  }
  const rows = [...m.entries()].sort((a, b) => b[1][1] - a[1][1]).map((
    [l, v],
  ) => [l, f1(v[0]), f1(v[1])]);
  return table(["reorder (from -> to)", "calls/step", "ms/step"], rows);
}

/** Table E: PyTorch's operators (torch.profiler self CPU time), top `n`. */
export function torchOpsTable(p: TorchProfile, n = 18): string {
  const steps = p.times.length;
  const ops = Object.entries(p.ops).sort((a, b) => b[1].selfMs - a[1].selfMs).slice(0, n);
  return table(
    ["aten operator", "calls/step", "self ms/step"],
    ops.map(([k, v]) => [`\`${k}\``, f1(v.calls / steps), f1(v.selfMs / steps)]),
  );
}

/** Table F: our slowest (kernel, shape, site) records of the training loop. */
export function topKernels(r: ProfileRunResult, n = 25): string {
  const steps = r.steps.length;
  return table(
    ["kernel", "shape", "call site", "calls/step", "ms/step", "ms/call"],
    r.records.slice(0, n).map((k: KernelRecord) => [
      k.kernel,
      k.shape,
      k.site,
      f1(k.calls / steps),
      f1(k.ms / steps),
      (k.ms / k.calls).toFixed(2),
    ]),
  );
}
