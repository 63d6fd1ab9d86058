/**
 * Convolution microbenchmark, same shapes on both sides: the system oneDNN 2.6.3 (what the cpu
 * backend loads) through a benchdnn-like C program (`bench/onednn_conv.c`, compiled here with
 * `cc -O2 ... -ldnnl` into build/bench/) with the direct, Winograd and auto algorithms, against
 * PyTorch 2.x's convolutions (oneDNN 3.x inside; NCHW and channels_last; `bench/conv_torch.py`).
 * Both sides alternate in rounds; the fastest call of all rounds is reported (the least disturbed
 * by the shared machine's load), with GFLOP/s against the 2-core FMA peak. It answers: is oneDNN
 * 2.6.3 itself the limit on these shapes, and would Winograd help?
 *
 * Usage: deno run -A bench/conv_micro.ts [--only b,c,a64] [--reps N] [--rounds N]
 *        [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadAverage, writeSection } from "./report.ts";
import { selectCases } from "./step_cases.ts";
import { resnet18ConvShapes } from "./step_flops.ts";
import { currentTorch } from "./torch_python.ts";

const PEAK = 440;
const REPO = new URL("..", import.meta.url).pathname;
const SOURCE = new URL("./onednn_conv.c", import.meta.url).pathname;
const BINARY = `${REPO}build/bench/onednn_conv`;
const TORCH = new URL("./conv_torch.py", import.meta.url).pathname;

interface Timing {
  shape: string;
  dir: string;
  /** `direct`/`winograd`/`auto` (oneDNN 2.6.3) or `NCHW`/`channels_last` (torch). */
  variant: string;
  impl?: string;
  min: number;
}

/** Compiles the C microbenchmark (again when the source is newer than the binary). */
export async function buildMicrobench(): Promise<string> {
  const src = await Deno.stat(SOURCE);
  const bin = await Deno.stat(BINARY).catch(() => undefined);
  if (bin && bin.mtime && src.mtime && bin.mtime >= src.mtime) return BINARY;
  await Deno.mkdir(`${REPO}build/bench`, { recursive: true });
  const cc = Deno.env.get("CC") ?? "cc";
  const r = await new Deno.Command(cc, {
    args: ["-O2", "-o", BINARY, SOURCE, "-ldnnl"],
    stderr: "piped",
  }).output().catch((e) => {
    throw new Error(`Cannot compile ${SOURCE}: '${cc}' does not run (${e.message}); set CC`);
  });
  if (!r.success) {
    throw new Error(
      `Cannot compile ${SOURCE} with ${cc} (needs libdnnl-dev): ${
        new TextDecoder().decode(r.stderr).slice(-600)
      }`,
    );
  }
  return BINARY;
}

async function jsonLines(cmd: string, args: string[], env: Record<string, string>) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  if (!r.success) {
    throw new Error(
      `Cannot run ${cmd} ${args.slice(0, 3).join(" ")} ...: ${
        new TextDecoder().decode(r.stderr).slice(-600)
      }`,
    );
  }
  return new TextDecoder().decode(r.stdout).trim().split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l));
}

/** Entry point. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      only: { type: "string", default: "c" },
      reps: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
      threads: { type: "string", default: "2" },
      "cpu-time": { type: "boolean", default: false },
      write: { type: "string" },
    },
  });
  const reps = Number(values.reps), rounds = Number(values.rounds);
  const threads = values.threads!, cpuTime = values["cpu-time"]!;
  const peak = PEAK * Number(threads) / 2;
  const bin = await buildMicrobench();
  const torch = await currentTorch();
  const parts: string[] = [];
  for (const c of selectCases(values.only)) {
    const inCh = c.preset === "cifar10" ? 3 : 1, size = c.preset === "cifar10" ? 32 : 28;
    const shapes = resnet18ConvShapes(c.width, inCh, size);
    const argv = shapes.flatMap((s) => [c.batch, s.c, s.h, s.h, s.k, s.r, s.stride, s.pad])
      .map(String);
    const best = new Map<string, Timing>();
    const keep = (t: Timing) => {
      const key = `${t.shape}|${t.dir}|${t.variant}`;
      const old = best.get(key);
      if (!old || t.min < old.min) best.set(key, t);
    };
    for (let r = 0; r < rounds; r++) {
      console.error(`conv micro ${c.id}: round ${r + 1}/${rounds} oneDNN 2.6.3 ...`);
      const cEnv = { OMP_NUM_THREADS: threads, ONEDNN_CONV_CPU_TIME: cpuTime ? "1" : "0" };
      for (const x of await jsonLines(bin, [String(reps), ...argv], cEnv)) {
        if (x.impl !== "unimplemented") {
          keep({ shape: x.shape, dir: x.dir, variant: x.alg, impl: x.impl, min: x.min });
        } else keep({ shape: x.shape, dir: x.dir, variant: x.alg, impl: "n/a", min: Infinity });
      }
      console.error(`conv micro ${c.id}: round ${r + 1}/${rounds} ${torch.torch} ...`);
      const tEnv = { CONV_CPU_TIME: cpuTime ? "1" : "0" };
      for (
        const x of await jsonLines(torch.python, [TORCH, String(reps), threads, ...argv], tEnv)
      ) {
        keep({ shape: x.shape, dir: x.dir, variant: x.layout, min: x.min });
      }
    }
    parts.push(convMicroTable(c.label, c.batch, shapes, best, torch.torch));
  }
  const md = parts.join("\n\n");
  console.log(md);
  if (values.write) {
    const load = loadAverage();
    await writeSection(
      values.write,
      "conv-micro",
      [
        "## Convolutions alone: oneDNN 2.6.3 (direct / Winograd / auto) vs PyTorch 2.x's oneDNN",
        "",
        `Produced by \`deno run --allow-all bench/conv_micro.ts ${args.join(" ")}\` on ${
          new Date().toISOString().slice(0, 10)
        } (load average at the end: ${load.split(" ").slice(0, 3).join(" ")}). Fastest of ` +
        `${rounds} rounds x ${reps} calls, ${threads} thread(s), ${
          cpuTime ? "process CPU time (immune to preemption)" : "wall time"
        }; GFLOP/s = 2 x MACs / time, peak ${peak} (${threads} core(s)).`,
        "",
        md,
      ].join("\n"),
    );
  }
  return md;
}

function convMicroTable(
  label: string,
  batch: number,
  shapes: ReturnType<typeof resnet18ConvShapes>,
  best: Map<string, Timing>,
  torchVersion: string,
): string {
  const variants = ["direct", "winograd", "auto", "NCHW", "channels_last"];
  const head = [
    "conv",
    "dir",
    "per fwd pass",
    "2.6.3 direct ms (GFLOP/s)",
    "2.6.3 winograd ms (total: direct where n/a)",
    "2.6.3 auto ms (impl)",
    `torch ${torchVersion.split("+")[0]} NCHW ms`,
    "torch channels_last ms (GFLOP/s)",
    "faster torch / 2.6.3 direct",
  ];
  const rows = [`| ${head.join(" | ")} |`, `|---|${head.slice(1).map(() => "---:").join("|")}|`];
  const totals = new Map<string, number>();
  for (const s of shapes) {
    const shape =
      `mb${batch} ${s.c}x${s.h}x${s.h} -> ${s.k}x${s.out}x${s.out} k${s.r} s${s.stride}`;
    const macs = batch * s.c * s.k * s.out * s.out * s.r * s.r;
    const gf = (ms: number) => (2 * macs / (ms / 1000) / 1e9).toFixed(0);
    for (const dir of ["fwd", "bwd-data", "bwd-weights"]) {
      const t = (v: string) => best.get(`${shape}|${dir}|${v}`);
      for (const v of variants) {
        // Winograd covers only 3x3 stride 1: elsewhere its total counts the direct kernel.
        let ms = t(v)?.min ?? Infinity;
        if (!Number.isFinite(ms) && v === "winograd") ms = t("direct")?.min ?? Infinity;
        totals.set(`${v}|${dir}`, (totals.get(`${v}|${dir}`) ?? 0) + s.count * ms);
      }
      const ms = (v: string) => {
        const x = t(v)?.min;
        return x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(2);
      };
      const d = t("direct")?.min ?? NaN;
      const torchBest = Math.min(t("NCHW")?.min ?? Infinity, t("channels_last")?.min ?? Infinity);
      rows.push(`| ${
        [
          shape,
          dir,
          String(s.count),
          `${ms("direct")} (${gf(d)})`,
          ms("winograd"),
          `${ms("auto")} (${t("auto")?.impl ?? "?"})`,
          ms("NCHW"),
          `${ms("channels_last")} (${gf(t("channels_last")?.min ?? NaN)})`,
          `${(d / torchBest).toFixed(2)}x`,
        ].join(" | ")
      } |`);
    }
  }
  const sum = (v: string) =>
    ["fwd", "bwd-data", "bwd-weights"].reduce((a, d) => a + (totals.get(`${v}|${d}`) ?? 0), 0);
  rows.push(
    `| **one fwd + bwd pass, weighted by count** | | | ${sum("direct").toFixed(1)} | ${
      sum("winograd").toFixed(1)
    } | ${sum("auto").toFixed(1)} | ${sum("NCHW").toFixed(1)} | ${
      sum("channels_last").toFixed(1)
    } | ${(sum("direct") / Math.min(sum("NCHW"), sum("channels_last"))).toFixed(2)}x |`,
  );
  return [`### ${label}`, "", ...rows].join("\n");
}

if (import.meta.main) await main(Deno.args);
