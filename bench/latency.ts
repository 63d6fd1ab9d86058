/**
 * Fixed cost of one backend call on a busy machine. Every cpu-backend kernel is a oneDNN primitive
 * (an OpenMP parallel region over all threads) or a TypeScript loop; a step makes ~1,600 backend
 * calls and ~450 oneDNN executions, most of them on tiny tensors (BN running statistics, EMA and
 * SGD per parameter tensor). When the two cores are shared, an OpenMP fork/join waits until every
 * thread of the team has been scheduled, so a tiny kernel can cost a scheduler time slice instead
 * of microseconds. This measures the per-call latency of `axpby` (oneDNN sum) and `relu` (eltwise)
 * on a few sizes with 1 and 2 threads, in child processes (OpenMP settings are per process), one
 * after the other in rounds, optionally under OMP_WAIT_POLICY=passive/active.
 *
 * Usage: deno run -A bench/latency.ts [--rounds N] [--calls N] [--policies default,passive,active]
 *        [--write docs/benchmarks.md]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { createCpuBackend } from "../src/backend/cpu/backend.ts";
import { loadAverage, writeSection } from "./report.ts";
import { median } from "./step_cases.ts";

const SIZES = [64, 4096, 65536, 802816];

/** Child: per-call microseconds of each (kernel, size), median and mean. */
function child(threads: number, calls: number): Record<string, [number, number]> {
  const be = createCpuBackend({ threads });
  const out: Record<string, [number, number]> = {};
  try {
    for (const n of SIZES) {
      const x = be.alloc("f32", n), y = be.alloc("f32", n), z = be.alloc("f32", n);
      be.upload(x, new Float32Array(n).fill(1));
      be.upload(y, new Float32Array(n).fill(2));
      const kernels: [string, () => void][] = [
        ["axpby", () => be.axpby({ x, y, out: z, alpha: 0.99, beta: 0.01, n })],
        ["relu", () => be.relu({ x, y: z, n })],
      ];
      for (const [name, fn] of kernels) {
        for (let i = 0; i < 20; i++) fn();
        const t: number[] = [];
        const reps = n >= 65536 ? Math.max(20, calls >> 4) : calls;
        for (let i = 0; i < reps; i++) {
          const t0 = performance.now();
          fn();
          t.push((performance.now() - t0) * 1000);
        }
        out[`${name} x${n}`] = [median(t), t.reduce((a, b) => a + b, 0) / t.length];
      }
      for (const s of [x, y, z]) be.free(s);
    }
  } finally {
    be.dispose();
  }
  return out;
}

/** Entry point. */
export async function main(args: string[]): Promise<string> {
  const { values } = parseArgs({
    args,
    options: {
      child: { type: "string" },
      rounds: { type: "string", default: "3" },
      calls: { type: "string", default: "400" },
      policies: { type: "string", default: "default,passive" },
      write: { type: "string" },
    },
  });
  const calls = Number(values.calls);
  if (values.child) {
    console.log(JSON.stringify(child(Number(values.child), calls)));
    return "";
  }
  const configs: { label: string; threads: number; env: Record<string, string> }[] = [];
  for (const p of values.policies!.split(",")) {
    const env: Record<string, string> = p === "default" ? {} : { OMP_WAIT_POLICY: p };
    for (const threads of [1, 2]) {
      configs.push({ label: `${threads} thread(s), OMP_WAIT_POLICY ${p}`, threads, env });
    }
  }
  const results = configs.map(() => [] as Record<string, [number, number]>[]);
  const self = new URL(import.meta.url).pathname;
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const [i, c] of configs.entries()) {
      const o = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-all", self, "--child", String(c.threads), "--calls", String(calls)],
        env: c.env,
        stdout: "piped",
        stderr: "piped",
      }).output();
      if (!o.success) {
        throw new Error(
          `Cannot measure latency: ${new TextDecoder().decode(o.stderr).slice(-600)}`,
        );
      }
      results[i].push(JSON.parse(new TextDecoder().decode(o.stdout)));
      console.error(`latency round ${r + 1}: ${c.label} done`);
    }
  }
  const keys = Object.keys(results[0][0]);
  const head = ["kernel", ...configs.map((c) => `${c.label}: median / mean µs`)];
  const rows = [`| ${head.join(" | ")} |`, `|---|${configs.map(() => "---:").join("|")}|`];
  for (const k of keys) {
    rows.push(
      `| ${k} | ${
        results.map((rs) => {
          const med = median(rs.map((x) => x[k][0])), mean = median(rs.map((x) => x[k][1]));
          return `${med.toFixed(0)} / ${mean.toFixed(0)}`;
        }).join(" | ")
      } |`,
    );
  }
  const md = rows.join("\n");
  console.log(md);
  if (values.write) {
    const load = loadAverage();
    await writeSection(
      values.write,
      "latency",
      [
        "## Fixed cost of a backend call on the shared machine (1 vs 2 OpenMP threads)",
        "",
        `Produced by \`deno run --allow-all bench/latency.ts ${args.join(" ")}\` on ${
          new Date().toISOString().slice(0, 10)
        } (load average at the end: ${load.split(" ").slice(0, 3).join(" ")}). Per-call wall ` +
        "time through the cpu backend (median over the calls of a round, then median over " +
        "rounds; mean likewise).",
        "",
        md,
      ].join("\n"),
    );
  }
  return md;
}

if (import.meta.main) await main(Deno.args);
