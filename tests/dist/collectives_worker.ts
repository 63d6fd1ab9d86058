/**
 * One rank of the collectives test (run under `mpirun.openmpi`, `mpirun.mpich`, or alone): runs
 * every collective on values whose result each rank can compute for every rank, checks them, and
 * writes `<out-dir>/rank_<r>.json` with each check's outcome and the allreduce timings (files, not
 * stdout: launchers interleave long lines of several ranks).
 * Arguments: `--out-dir DIR` (required; also holds the barrier's marker), `--kind auto|single|mpi`,
 * `--max-count N` (pieces per MPI call, exercises chunking), `--sizes 1,7,1000,10000000`,
 * `--timing` (time 4 MB and 40 MB allreduces).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Comm,
  CommError,
  createComm,
  runWithComm,
  stagedDeviceComm,
} from "../../src/dist/mod.ts";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";

const { values } = parseArgs({
  options: {
    kind: { type: "string", default: "auto" },
    "max-count": { type: "string" },
    sizes: { type: "string", default: "1,7,1000,10000000" },
    timing: { type: "boolean", default: false },
    "out-dir": { type: "string" },
    "spin-ms": { type: "string" },
  },
});

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

const checks: Check[] = [];
const record = (name: string, ok: boolean, detail = "") => checks.push({ name, ok, detail });

/** Compares element-wise with `expect(i)`; records the first mismatch. */
function compare(
  name: string,
  got: ArrayLike<number>,
  n: number,
  expect: (i: number) => number,
  tol = 0,
) {
  if (got.length !== n) return record(name, false, `length ${got.length}, want ${n}`);
  for (let i = 0; i < n; i++) {
    const e = expect(i);
    if (!(Math.abs(got[i] - e) <= tol)) {
      return record(name, false, `element ${i}: got ${got[i]}, want ${e}`);
    }
  }
  record(name, true);
}

function fill<T extends Float32Array | Float64Array | Int32Array | Uint8Array | Uint16Array>(
  a: T,
  f: (i: number) => number,
): T {
  for (let i = 0; i < a.length; i++) a[i] = f(i);
  return a;
}

const ranks = (size: number) => Array.from({ length: size }, (_, r) => r);

function collectives(comm: Comm, sizes: number[]) {
  const { rank, size } = comm;
  const R = ranks(size);
  for (const n of sizes) {
    // sum and avg of f32: small integers, exact in any order.
    const init = (r: number, i: number) => (r + 1) * ((i % 13) + 1);
    const sumOf = (i: number) => R.reduce((s, r) => s + init(r, i), 0);
    const a = fill(new Float32Array(n), (i) => init(rank, i));
    comm.allreduce(a, "sum");
    compare(`allreduce sum f32 n=${n}`, a, n, sumOf);
    fill(a, (i) => init(rank, i));
    comm.allreduce(a, "avg");
    compare(`allreduce avg f32 n=${n}`, a, n, (i) => Math.fround(sumOf(i) / size));
    // max and min: each element's largest value sits on a different rank.
    const mm = (r: number, i: number) => ((i + r) % size === 0 ? 50 + (i % 5) : -(i % 7) - r);
    fill(a, (i) => mm(rank, i));
    comm.allreduce(a, "max");
    compare(`allreduce max f32 n=${n}`, a, n, (i) => Math.max(...R.map((r) => mm(r, i))));
    fill(a, (i) => mm(rank, i));
    comm.allreduce(a, "min");
    compare(`allreduce min f32 n=${n}`, a, n, (i) => Math.min(...R.map((r) => mm(r, i))));
    // allgather: rank order, every block.
    const g = (r: number, i: number) => r * 1000 + (i % 997);
    const gathered = comm.allgather(fill(new Float32Array(n), (i) => g(rank, i)));
    compare(`allgather f32 n=${n}`, gathered, n * size, (j) => g(Math.floor(j / n), j % n));
    // broadcast from the last rank.
    const root = size - 1;
    const b = fill(new Float32Array(n), (i) => (rank === root ? (i % 251) + 0.5 : -1));
    comm.broadcast(b, root);
    compare(`broadcast f32 n=${n} root=${root}`, b, n, (i) => (i % 251) + 0.5);
  }
  const n = 1001;
  const d = fill(new Float64Array(n), (i) => (rank + 1) * 0.1 + i * 1e-9);
  comm.allreduce(d, "avg");
  const dAvg = (i: number) => R.reduce((s, r) => s + (r + 1) * 0.1 + i * 1e-9, 0) / size;
  compare("allreduce avg f64", d, n, dAvg, 1e-15);
  const k = fill(new Int32Array(n), (i) => (rank + 1) * 1_000_003 - i);
  comm.allreduce(k, "sum");
  compare("allreduce sum i32", k, n, (i) => R.reduce((s, r) => s + (r + 1) * 1_000_003 - i, 0));
  // in-place allgather: this rank's block already sits in the result.
  const res = new Int32Array(n * size).fill(-7);
  fill(res.subarray(rank * n, (rank + 1) * n), (i) => rank * 100_000 + i);
  comm.allgather(res.subarray(rank * n, (rank + 1) * n), res);
  compare("allgather in place i32", res, n * size, (j) => Math.floor(j / n) * 100_000 + (j % n));
  const img = comm.allgather(fill(new Uint8Array(3 * 32 * 32), (i) => (i * 7 + rank * 31) & 255));
  compare(
    "allgather u8",
    img,
    3072 * size,
    (j) => ((j % 3072) * 7 + Math.floor(j / 3072) * 31) & 255,
  );
  const bits = fill(new Uint16Array(99), (i) => (rank === 0 ? 0x3f80 + i : 0));
  comm.broadcast(bits, 0);
  compare("broadcast u16 (bf16 bits)", bits, 99, (i) => 0x3f80 + i);
  // Two overlapped allreduces (gradient buckets), waited in the opposite order.
  const b1 = fill(new Float32Array(5000), (i) => rank + i);
  const b2 = fill(new Float32Array(3), (i) => (rank + 1) * (i + 1));
  const r1 = comm.allreduceStart(b1, "sum");
  const r2 = comm.allreduceStart(b2, "avg");
  r2.wait();
  r1.test();
  r1.wait();
  compare("allreduceStart sum (overlapped)", b1, 5000, (i) => R.reduce((s, r) => s + r + i, 0));
  compare(
    "allreduceStart avg (overlapped)",
    b2,
    3,
    (i) => R.reduce((s, r) => s + (r + 1) * (i + 1), 0) / size,
  );
  // Refused arguments throw on every rank before any MPI call (the job goes on).
  try {
    comm.allreduce(new Uint8Array(4) as unknown as Int32Array);
    record("allreduce u8 refused", false, "no error");
  } catch (e) {
    record(
      "allreduce u8 refused",
      e instanceof CommError && /Uint8Array/.test(e.message),
      String(e),
    );
  }
  // Device storages through the host (reference backend).
  const backend = createReferenceBackend();
  const dc = stagedDeviceComm(comm, backend);
  const s = backend.alloc("f32", 10);
  backend.upload(s, fill(new Float32Array(10), (i) => rank * 10 + i));
  dc.allreduce(s, "sum");
  compare(
    "staged device allreduce",
    backend.download(s),
    10,
    (i) => R.reduce((t, r) => t + r * 10 + i, 0),
  );
  const all = backend.alloc("f32", 10 * size);
  dc.allgather(s, all);
  compare(
    "staged device allgather",
    backend.download(all),
    10 * size,
    (j) => R.reduce((t, r) => t + r * 10 + (j % 10), 0),
  );
  backend.free(s);
  backend.free(all);
}

async function barrierCheck(comm: Comm, dir: string) {
  // Rank 0 writes its marker late; every other rank looks for it right after the barrier.
  const marker = `${dir}/rank0_before_barrier`;
  if (comm.rank === 0) {
    await new Promise((r) => setTimeout(r, 300));
    await Deno.writeTextFile(marker, "x");
  }
  comm.barrier();
  let seen = true;
  try {
    await Deno.stat(marker);
  } catch {
    seen = false;
  }
  record("barrier orders rank 0's write before every rank's read", seen);
}

function timeAllreduce(comm: Comm): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [label, n] of [["4MB", 1 << 20], ["40MB", 10 << 20]] as const) {
    const a = new Float32Array(n).fill(1);
    comm.allreduce(a); // warm-up
    const ms: number[] = [];
    for (let i = 0; i < 7; i++) {
      comm.barrier();
      const t = performance.now();
      comm.allreduce(a);
      ms.push(performance.now() - t);
    }
    out[label] = ms.map((x) => Math.round(x * 1000) / 1000);
  }
  return out;
}

const outDir = values["out-dir"];
if (outDir === undefined) throw new Error("collectives_worker: --out-dir DIR is required");
const maxCount = values["max-count"] === undefined ? undefined : Number(values["max-count"]);
const spinMs = values["spin-ms"] === undefined ? undefined : Number(values["spin-ms"]);
const comm = createComm({ kind: values.kind as "auto" | "single" | "mpi", maxCount, spinMs });
await runWithComm(comm, async (c) => {
  collectives(c, values.sizes.split(",").map(Number));
  await barrierCheck(c, outDir);
  const timings = values.timing ? timeAllreduce(c) : undefined;
  const report = {
    rank: c.rank,
    size: c.size,
    localRank: c.localRank,
    localSize: c.localSize,
    kind: c.kind,
    description: c.description,
    checks,
    timings,
  };
  await Deno.writeTextFile(`${outDir}/rank_${c.rank}.json`, JSON.stringify(report));
});
