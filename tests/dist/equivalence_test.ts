/**
 * The world size never changes the maths: the same training (tiny ReSSL, 3 steps,
 * `equivalence_worker.ts`) on 2 ranks and on 1 process gives the same per-step losses (1e-5
 * relative) and the same final state (every weight, BN running statistic and queue entry within
 * 1e-4 of its tensor's largest element, at least 0.01: student, teacher, BN running statistics,
 * queue; the momentum buffers, sums of gradients whose ReLU masks flip with the last bits of an
 * activation, within 1 % in L2: measured at most 1.7e-3), for BN groups over the global batch with
 * SyncBN (bnSplits 1), one local group per rank (2) and four (8), with and without the teacher
 * shuffle; and the queue and whole state are bit-identical on the two ranks (SHA-256).
 *
 * Engines and backends: OpenMPI (every case) and MPICH (two) on the cpu backend (collectives
 * staged through the host); the cuda backend on the emulated device with the stand-in NCCL (two
 * cases).
 *
 * @module
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Engine, ENGINES, engineTestName, here, runJob } from "./mpi_job.ts";

const WORKER = here("equivalence_worker.ts");
const ALL = ["s1-shuffle", "s1-plain", "s2-shuffle", "s2-plain", "s8-shuffle", "s8-plain"];
const STEPS = 3;
const dnnl = ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/libdnnl.so.2"].some(existsSync);
const emulator = existsSync(new URL("../../build/emulator/lib/libcuda.so.1", import.meta.url));

interface RankResult {
  losses: number[];
  queueHash: string;
  stateHash: string;
  ptr: number;
  step: number;
}

function read(dir: string, name: string, rank: number): RankResult {
  return JSON.parse(Deno.readTextFileSync(join(dir, `${name}.rank${rank}.json`)));
}

function state(dir: string, name: string): Map<string, Float32Array> {
  const index: [string, number, number][] = JSON.parse(
    Deno.readTextFileSync(join(dir, `${name}.index.json`)),
  );
  const all = new Float32Array(Deno.readFileSync(join(dir, `${name}.state.bin`)).buffer);
  return new Map(index.map(([p, at, n]) => [p, all.subarray(at, at + n)]));
}

/** Runs the cases as one job (`engine` with 2 ranks, or one process) into a new folder. */
async function run(
  backend: string,
  cases: string[],
  engine?: Engine,
  env: Record<string, string> = {},
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ressl_equiv_" });
  const job = await runJob({
    engine,
    np: 2,
    worker: WORKER,
    args: [dir, backend, String(STEPS), ...cases],
    env: { RESSL_COMM_TIMEOUT_S: "60", ...env },
    limitS: 240,
  });
  assert.equal(job.code, 0, `${engine?.name ?? "1 process"} ${backend}: ${job.output}`);
  if (engine) {
    // The device communicator the run's backend gets: NCCL on cuda, host collectives on CPUs.
    const kind = backend === "cuda" ? "nccl" : "staged";
    assert.match(job.output, new RegExp(`device communicator: ${kind}`), job.output);
  }
  return dir;
}

/** |a - b| / |b| in the L2 norm. */
function relativeL2(a: Float32Array, b: Float32Array): number {
  let d = 0, n = 0;
  for (let i = 0; i < b.length; i++) {
    d += (a[i] - b[i]) ** 2;
    n += b[i] ** 2;
  }
  return Math.sqrt(d / Math.max(n, 1e-30));
}

/** Asserts the 2-rank results in `two` equal the 1-process results in `one`. */
function compare(one: string, two: string, cases: string[], what: string): string[] {
  const lines: string[] = [];
  for (const name of cases) {
    const base = read(one, name, 0);
    const [r0, r1] = [read(two, name, 0), read(two, name, 1)];
    assert.equal(r0.queueHash, r1.queueHash, `${what} ${name}: the ranks' queues differ`);
    assert.equal(r0.stateHash, r1.stateHash, `${what} ${name}: the ranks' states differ`);
    assert.equal(r0.step, STEPS);
    assert.equal(r0.ptr, base.ptr);
    let worstLoss = 0;
    base.losses.forEach((l, i) => {
      const rel = Math.abs(r0.losses[i] - l) / Math.abs(l);
      worstLoss = Math.max(worstLoss, rel);
      assert.ok(rel <= 1e-5, `${what} ${name} step ${i + 1}: loss ${r0.losses[i]} vs ${l}`);
    });
    const a = state(two, name), b = state(one, name);
    assert.deepEqual([...a.keys()], [...b.keys()]);
    let worst = 0;
    let moments = 0;
    for (const [path, want] of b) {
      const got = a.get(path)!;
      if (path.startsWith("momentum.")) {
        moments = Math.max(moments, relativeL2(got, want));
        assert.ok(moments <= 1e-2, `${what} ${name} ${path}: relative L2 difference ${moments}`);
        continue;
      }
      let scale = 0;
      for (const v of want) scale = Math.max(scale, Math.abs(v));
      for (let i = 0; i < want.length; i++) {
        // Relative to the tensor's largest element, at least 0.01: a tensor still near its zero
        // start (a BN bias after 3 steps, ~1e-5) holds sums of many cancelling terms.
        const d = Math.abs(got[i] - want[i]) / Math.max(scale, 0.01);
        worst = Math.max(worst, d);
        assert.ok(d <= 1e-4, `${what} ${name} ${path}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    }
    lines.push(
      `${what} ${name}: loss rel ${worstLoss.toExponential(1)}, weights/buffers/queue ${
        worst.toExponential(1)
      }, momentum L2 ${moments.toExponential(1)}`,
    );
  }
  return lines;
}

const cpu = dnnl ? "cpu" : "reference";
let baseline: Promise<string> | undefined;
let baselineDir: string | undefined;
const cpuBaseline = () =>
  baseline ??= run(cpu, ALL).then((dir) => {
    baselineDir = dir;
    return dir;
  });

for (const engine of ENGINES) {
  const cases = engine.name === "openmpi" ? ALL : ["s1-shuffle", "s8-plain"];
  Deno.test({
    name: engineTestName(engine, `data parallel = one process: ${cases.join(", ")} on ${cpu}`),
    ignore: engine.launcher === undefined,
    fn: async () => {
      const one = await cpuBaseline();
      const two = await run(cpu, cases, engine);
      try {
        for (const line of compare(one, two, cases, `${engine.name} ${cpu}`)) console.log(line);
      } finally {
        await Deno.remove(two, { recursive: true });
      }
    },
  });
}

Deno.test({
  name: emulator
    ? "data parallel = one process on the cuda backend (emulated device) [openmpi]"
    : "data parallel on cuda (skipped: the emulated device is not built; bash emulator/build.sh)",
  ignore: !emulator || ENGINES[0].launcher === undefined,
  fn: async () => {
    const cases = ["s1-shuffle", "s2-plain"];
    const env = { RESSL_CUDA_EMULATION: "1" };
    const one = await run("cuda", cases, undefined, env);
    const two = await run("cuda", cases, ENGINES[0], env);
    try {
      for (const line of compare(one, two, cases, "openmpi cuda")) console.log(line);
    } finally {
      await Deno.remove(one, { recursive: true });
      await Deno.remove(two, { recursive: true });
    }
  },
});

globalThis.addEventListener("unload", () => {
  if (baselineDir) Deno.removeSync(baselineDir, { recursive: true });
});
