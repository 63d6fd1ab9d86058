/**
 * The step benchmark's Markdown table: median step time per side, the speed-up of ours over the
 * faster current PyTorch (NCHW or channels_last) and over PyTorch 1.13 with its spread over the
 * rounds, and our achieved GFLOP/s.
 *
 * @module
 */

import type { PeerSpec } from "./peers.ts";
import { median } from "./step_cases.ts";

/** Seconds per step of one side, one array per round. */
export type SideTimes = number[][];

/** One case's measurements, as {@link stepTable} reads them. */
export interface StepRow {
  case: { label: string; target: number };
  batch: number;
  gflop: number;
  sides: Record<string, SideTimes>;
  /** Process CPU seconds (all threads) per step, same layout as `sides`. */
  cpu?: Record<string, SideTimes>;
}

/** Median over every step of every round. */
export function overall(t: SideTimes): number {
  return median(t.flat());
}

/**
 * Speed-up of ours over `peerIds` (per round the fastest of them): overall (median of all steps,
 * fastest peer by its overall median) and the min/max of the per-round ratios.
 */
export function speedup(
  sides: Record<string, SideTimes>,
  peerIds: string[],
  ours = "ours",
): { ratio: number; min: number; max: number; best: string } | undefined {
  const present = peerIds.filter((id) => sides[id]?.length);
  if (present.length === 0 || !sides[ours]?.length) return undefined;
  const best = present.reduce((a, b) => (overall(sides[a]) <= overall(sides[b]) ? a : b));
  const rounds = sides[ours].map((o, r) => {
    const peer = Math.min(...present.map((id) => median(sides[id][r] ?? sides[id].flat())));
    return peer / median(o);
  });
  return {
    ratio: overall(sides[best]) / overall(sides[ours]),
    min: Math.min(...rounds),
    max: Math.max(...rounds),
    best,
  };
}

/** Relative spread (max - min) / median of a side's per-round medians, in %. */
export function roundSpread(t: SideTimes): number {
  const m = t.map((r) => median(r));
  return 100 * (Math.max(...m) - Math.min(...m)) / median(m);
}

/** `1.23x (1.10-1.31)`, or `-` when there is no such peer. */
export function fmtSpeedup(s: ReturnType<typeof speedup>): string {
  return s ? `${s.ratio.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})` : "-";
}

/** The Markdown table of {@link StepRow}s. */
export function stepTable(
  rows: StepRow[],
  peers: PeerSpec[],
  threads: number,
  peak: number,
): string {
  const current = peers.filter((p) => p.current).map((p) => p.id);
  const old = peers.filter((p) => !p.current).map((p) => p.id);
  const head = [
    "case",
    "ours ms/step",
    ...peers.map((p) => `${p.label} ms/step`),
    "ours vs faster torch 2.x",
    "ours vs torch 1.13",
    "target",
    "GFLOP/step",
    "ours GFLOP/s (% of peak)",
    "spread of round medians (ours / peers)",
  ];
  const out = [`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`];
  for (const r of rows) {
    const ours = overall(r.sides.ours);
    const gflops = r.gflop / ours;
    const spreads = ["ours", ...peers.map((p) => p.id)]
      .filter((id) => r.sides[id]?.length)
      .map((id) => `${roundSpread(r.sides[id]).toFixed(0)}%`);
    out.push(
      `| ${
        [
          r.case.label,
          (ours * 1000).toFixed(0),
          ...peers.map((p) =>
            r.sides[p.id]?.length ? (overall(r.sides[p.id]) * 1000).toFixed(0) : "-"
          ),
          fmtSpeedup(speedup(r.sides, current)),
          fmtSpeedup(speedup(r.sides, old)),
          `${r.case.target}x`,
          r.gflop.toFixed(1),
          `${gflops.toFixed(0)} (${(100 * gflops / peak).toFixed(0)}%)`,
          spreads.join(" / "),
        ].join(" | ")
      } |`,
    );
  }
  out.push("", ...robustTable(rows, peers));
  out.push(
    "",
    `${threads} threads on every side; speed-up = peer time / our time (overall medians; in ` +
      "brackets the lowest and highest per-round ratio). Peak = " +
      `${peak} GFLOP/s (2-core AVX-512 FMA). ` +
      peers.map((p) => `${p.label}: oneDNN ${p.onednn}`).join("; ") + ".",
  );
  return out.join("\n");
}

/**
 * Views less sensitive to the shared machine's load: the fastest step of each side (closest to an
 * undisturbed run) and the process CPU seconds per step (work done by all threads, spinning
 * included).
 */
function robustTable(rows: StepRow[], peers: PeerSpec[]): string[] {
  const ids = ["ours", ...peers.map((p) => p.id)];
  const current = peers.filter((p) => p.current).map((p) => p.id);
  const head = [
    "case",
    `fastest step ms (${ids.join(" / ")})`,
    "fastest: ours vs faster torch 2.x",
    "fastest: ours vs torch 1.13",
    `median CPU s/step, all threads (${ids.join(" / ")})`,
  ];
  const out = [`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`];
  for (const r of rows) {
    const fastest = (id: string) =>
      r.sides[id]?.length ? Math.min(...r.sides[id].flat()) : undefined;
    const o = fastest("ours")!;
    const best2 = current.map(fastest).filter((x): x is number => x !== undefined);
    const t113 = fastest("t113");
    const cpu = (id: string) => r.cpu?.[id]?.length ? median(r.cpu[id].flat()).toFixed(2) : "-";
    out.push(
      `| ${
        [
          r.case.label,
          ids.map((id) => fastest(id) === undefined ? "-" : (1000 * fastest(id)!).toFixed(0))
            .join(" / "),
          best2.length ? `${(Math.min(...best2) / o).toFixed(2)}x` : "-",
          t113 === undefined ? "-" : `${(t113 / o).toFixed(2)}x`,
          ids.map(cpu).join(" / "),
        ].join(" | ")
      } |`,
    );
  }
  return out;
}
