/**
 * Training curves of a run folder: the loss per step (mean over each logging interval, and the
 * last step's loss), the learning rate per step and, when the run had the kNN monitor on, the kNN
 * top-1 (and top-5) accuracy per epoch, side by side in one chart written as `curves.svg` and
 * `curves.png` in the run folder.
 *
 * @module
 */

import { basename, join, resolve } from "node:path";
import { type MetricsRecord, readMetrics } from "../io/metrics.ts";
import { type SvgToPngOptions, type VegaLiteSpec, writeChart } from "./render.ts";

/** One point of a curve: `x` (step or epoch), `value`, and the series it belongs to. */
export interface CurvePoint {
  /** Step (loss, learning rate) or epoch (kNN accuracy). */
  x: number;
  /** The value at `x`. */
  value: number;
  /** Name of the series (legend entry). */
  series: string;
}

/** The curves of a metrics log, ready to draw. */
export interface RunCurves {
  /** Loss per logged step (last and mean of the interval). */
  loss: CurvePoint[];
  /** Learning rate per logged step. */
  lr: CurvePoint[];
  /** Empty when the run logged no kNN accuracy. */
  knn: CurvePoint[];
}

/** Series names used in the charts (and legends). */
export const SERIES = {
  lossMean: "interval mean",
  loss: "last step",
  lr: "learning rate",
  knnTop1: "kNN top-1",
  knnTop5: "kNN top-5",
} as const;

function finite(v: unknown): v is number {
  return typeof v === "number" && Number.isFinite(v);
}

/** Keeps the last record of each `step` (a resumed run may repeat steps), sorted by step. */
function lastPerStep(records: MetricsRecord[]): MetricsRecord[] {
  const byStep = new Map<number, MetricsRecord>();
  for (const r of records) byStep.set(r.step, r);
  return [...byStep.values()].sort((a, b) => a.step - b.step);
}

/** Every `k`-th element (and the last) so that at most `max` remain. */
function thin<T>(xs: T[], max: number): T[] {
  if (xs.length <= max) return xs;
  const k = Math.ceil(xs.length / max);
  const out = xs.filter((_, i) => i % k === 0);
  if (out[out.length - 1] !== xs[xs.length - 1]) out.push(xs[xs.length - 1]);
  return out;
}

/**
 * The curves of a metrics log's records. Step records give the loss and lr curves (at most
 * `maxPoints` points each, evenly thinned), epoch records with `knnTop1` the accuracy curve with
 * x = epoch number counted from 1. Throws when there is no step record with a finite loss.
 */
export function runCurves(records: MetricsRecord[], maxPoints = 2000): RunCurves {
  const steps = thin(lastPerStep(records.filter((r) => r.kind === "step")), maxPoints);
  const loss: CurvePoint[] = [], lr: CurvePoint[] = [], knn: CurvePoint[] = [];
  for (const r of steps) {
    const mean = finite(r.lossMean) ? r.lossMean : r.loss;
    // the faint last-step series comes first so that it is drawn under the mean
    if (finite(r.loss) && finite(r.lossMean)) {
      loss.push({ x: r.step, value: r.loss, series: SERIES.loss });
    }
    if (finite(mean)) loss.push({ x: r.step, value: mean, series: SERIES.lossMean });
    if (finite(r.lr)) lr.push({ x: r.step, value: r.lr, series: SERIES.lr });
  }
  if (loss.length === 0) {
    throw new Error("the metrics log holds no step record with a finite loss");
  }
  for (const r of lastPerStep(records.filter((r) => r.kind === "epoch"))) {
    if (finite(r.knnTop1)) knn.push({ x: r.epoch + 1, value: r.knnTop1, series: SERIES.knnTop1 });
    if (finite(r.knnTop5)) knn.push({ x: r.epoch + 1, value: r.knnTop5, series: SERIES.knnTop5 });
  }
  return { loss, lr, knn };
}

const PANEL = { width: 340, height: 230 };

function panel(
  title: string,
  points: CurvePoint[],
  x: { title: string; field?: string },
  y: { title: string; format?: string; zero?: boolean },
  opts: { legend: string | null; points?: boolean; colors: string[]; domain: string[] },
): VegaLiteSpec {
  return {
    ...PANEL,
    title,
    data: { values: points },
    mark: { type: "line", point: opts.points ?? false, strokeWidth: 1.6, clip: true },
    encoding: {
      // steps and epochs are whole numbers from 0 (a lone kNN point at epoch 3 otherwise gets
      // the one-value domain [3, 3] and a tick labelled "3.000000")
      x: {
        field: "x",
        type: "quantitative",
        title: x.title,
        scale: { domainMin: 0 },
        axis: { tickMinStep: 1, format: "d" },
      },
      y: {
        field: "value",
        type: "quantitative",
        title: y.title,
        scale: { zero: y.zero ?? false },
        ...(y.format ? { axis: { format: y.format } } : {}),
      },
      color: {
        field: "series",
        type: "nominal",
        scale: { domain: opts.domain, range: opts.colors },
        legend: opts.legend === null ? null : {
          title: null,
          orient: opts.legend,
          labelLimit: 220,
          fillColor: "#ffffffcc",
          padding: 4,
        },
      },
      // the noisy per-step loss is drawn faint, under the interval mean
      opacity: { condition: { test: `datum.series === '${SERIES.loss}'`, value: 0.4 }, value: 1 },
    },
  };
}

/** The Vega-Lite specification of a run's curves (panels side by side), titled `title`. */
export function curvesSpec(curves: RunCurves, title: string): VegaLiteSpec {
  const panels: VegaLiteSpec[] = [
    panel("Loss per step", curves.loss, { title: "step" }, { title: "relation loss" }, {
      legend: "top",
      colors: ["#1f77b4", "#9ecae1"],
      domain: [SERIES.lossMean, SERIES.loss],
    }),
    panel("Learning rate", curves.lr, { title: "step" }, {
      title: "lr",
      format: ".2~g",
      zero: true,
    }, {
      legend: "top", // a one-entry legend keeps the three plots aligned
      colors: ["#d62728"],
      domain: [SERIES.lr],
    }),
  ];
  if (curves.knn.length > 0) {
    panels.push(
      panel("kNN accuracy", curves.knn, { title: "epoch" }, { title: "accuracy (%)" }, {
        legend: "top",
        points: true,
        colors: ["#2ca02c", "#98df8a"],
        domain: [SERIES.knnTop1, SERIES.knnTop5],
      }),
    );
  }
  return {
    title: { text: title, anchor: "start", fontSize: 15 },
    hconcat: panels,
    spacing: 30,
    padding: { left: 5, top: 5, right: 16, bottom: 5 },
    resolve: { scale: { color: "independent" } },
    config: { view: { stroke: "#ddd" } },
  };
}

/** Options of {@link plotRun}. */
export interface PlotRunOptions extends SvgToPngOptions {
  /** Chart title (default: the run folder's name, with the preset and dataset of config.json). */
  title?: string;
  /** At most this many points per step curve (default 2000). */
  maxPoints?: number;
  /** Which files to write (default both). */
  formats?: readonly ("svg" | "png")[];
}

function defaultTitle(runDir: string): string {
  const name = basename(resolve(runDir));
  let cfg;
  try {
    cfg = JSON.parse(Deno.readTextFileSync(join(runDir, "config.json")));
  } catch {
    return name; // config.json is optional for plotting
  }
  const model = cfg?.config?.model, dataset = cfg?.config?.dataset, preset = cfg?.run?.preset;
  let text = typeof model?.depth === "number" ? `ResNet-${model.depth}` : "";
  if (text && typeof model?.width === "number" && model.width !== 64) {
    text += ` (width ${model.width})`;
  }
  if (typeof dataset === "string") text += `${text ? " on " : ""}${dataset}`;
  if (typeof preset === "string" && preset !== dataset) text += `, preset ${preset}`;
  return text ? `${name}: ${text}` : name;
}

/**
 * Draws the training curves of the run folder `runDir` from its `metrics.jsonl` and writes
 * `curves.svg` and `curves.png` there (atomically). Returns the paths written. Throws, naming the
 * file, when the log is missing, unreadable or holds no step record.
 */
export async function plotRun(
  runDir: string,
  options: PlotRunOptions = {},
): Promise<{ svg: string[]; png: string[] }> {
  const path = join(runDir, "metrics.jsonl");
  let records: MetricsRecord[];
  try {
    records = readMetrics(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot plot run '${runDir}': '${path}' does not exist (is it a run folder of deno task train?)`,
        { cause: e },
      );
    }
    throw new Error(`Cannot plot run '${runDir}': ${(e as Error).message}`, { cause: e });
  }
  let curves: RunCurves;
  try {
    curves = runCurves(records, options.maxPoints);
  } catch (e) {
    throw new Error(`Cannot plot run '${runDir}': ${(e as Error).message} ('${path}')`, {
      cause: e,
    });
  }
  const formats = options.formats ?? ["svg", "png"];
  const out = formats.map((f) => join(runDir, `curves.${f}`));
  return await writeChart(curvesSpec(curves, options.title ?? defaultTitle(runDir)), out, options);
}
