/**
 * Collectives through FFI on both MPI engines from Debian, 2 ranks each: every rank runs
 * `collectives_worker.ts` (allreduce sum/avg/max/min, allgather, broadcast, barrier, in place,
 * overlapped requests, sizes 1, 7, 1000 and 10M, pieces of at most 3M elements so that 10M goes
 * in four calls) and writes which checks passed; this test reads both ranks' reports. The same
 * worker runs alone as a one-process MPI job (MPI's singleton init) and with the single
 * communicator without the FFI permission (proof that it loads no library).
 */
import assert from "node:assert/strict";
import { type Engine, ENGINES, engineTestName, here, runJob } from "./mpi_job.ts";

const WORKER = here("collectives_worker.ts");

interface Report {
  rank: number;
  size: number;
  localRank: number;
  localSize: number;
  kind: string;
  description: string;
  checks: { name: string; ok: boolean; detail: string }[];
}

/** The checks every rank must report for the given sizes (so a skipped check fails the test). */
function expectedChecks(sizes: number[], size: number): string[] {
  const names: string[] = [];
  for (const n of sizes) {
    names.push(
      `allreduce sum f32 n=${n}`,
      `allreduce avg f32 n=${n}`,
      `allreduce max f32 n=${n}`,
      `allreduce min f32 n=${n}`,
      `allgather f32 n=${n}`,
      `broadcast f32 n=${n} root=${size - 1}`,
    );
  }
  names.push(
    "allreduce avg f64",
    "allreduce sum i32",
    "allgather in place i32",
    "allgather u8",
    "broadcast u16 (bf16 bits)",
    "allreduceStart sum (overlapped)",
    "allreduceStart avg (overlapped)",
    "allreduce u8 refused",
    "staged device allreduce",
    "staged device allgather",
    "barrier orders rank 0's write before every rank's read",
  );
  return names;
}

async function runWorker(opts: {
  engine?: Engine;
  np: number;
  sizes: number[];
  kind?: string;
  env?: Record<string, string>;
  denoFlags?: string[];
}): Promise<Report[]> {
  const dir = await Deno.makeTempDir({ prefix: "ressl_dist_" });
  try {
    const args = ["--out-dir", dir, "--sizes", opts.sizes.join(","), "--max-count", "3000000"];
    if (opts.kind !== undefined) args.push("--kind", opts.kind);
    const job = await runJob({
      engine: opts.engine,
      np: opts.np,
      worker: WORKER,
      args,
      env: { RESSL_COMM_TIMEOUT_S: "60", ...opts.env },
      denoFlags: opts.denoFlags,
      limitS: 120,
    });
    assert.equal(job.code, 0, `the job failed (status ${job.code}):\n${job.output}`);
    const reports: Report[] = [];
    for (let r = 0; r < opts.np; r++) {
      reports.push(JSON.parse(await Deno.readTextFile(`${dir}/rank_${r}.json`)));
    }
    for (const [r, rep] of reports.entries()) {
      assert.equal(rep.rank, r);
      assert.equal(rep.size, opts.np);
      const failed = rep.checks.filter((c) => !c.ok);
      assert.deepEqual(failed, [], `rank ${r} (${rep.description}) failed checks`);
      assert.deepEqual(rep.checks.map((c) => c.name), expectedChecks(opts.sizes, opts.np));
    }
    return reports;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

for (const engine of ENGINES) {
  Deno.test({
    name: engineTestName(engine, "collectives of 2 ranks through FFI, sizes 1, 7, 1000, 10M"),
    ignore: engine.launcher === undefined,
    async fn() {
      const reports = await runWorker({ engine, np: 2, sizes: [1, 7, 1000, 10_000_000] });
      for (const rep of reports) {
        assert.equal(rep.kind, "mpi");
        assert.match(rep.description, engine.name === "openmpi" ? /Open MPI/ : /MPICH/);
        assert.equal(rep.localSize, 2);
        assert.equal(rep.localRank, rep.rank);
      }
    },
  });

  Deno.test({
    name: engineTestName(engine, "a plain deno run with kind 'mpi' is a one-process MPI job"),
    ignore: engine.launcher === undefined,
    async fn() {
      const lib = engine.name === "openmpi" ? "libmpi.so.40" : "libmpich.so.12";
      const [rep] = await runWorker({
        np: 1,
        sizes: [1, 7, 1000],
        kind: "mpi",
        env: { RESSL_MPI_LIB: lib },
      });
      assert.equal(rep.kind, "mpi");
      assert.match(rep.description, engine.name === "openmpi" ? /Open MPI/ : /MPICH/);
    },
  });
}

Deno.test("the single communicator passes the same checks without the FFI permission", async () => {
  const [rep] = await runWorker({
    np: 1,
    sizes: [1, 7, 1000],
    denoFlags: ["--allow-read", "--allow-write", "--allow-env"],
  });
  assert.equal(rep.kind, "single");
});
