/**
 * The MPI bindings (`ffi/mpi/`): which flavor a library is (from its own version string), clear
 * errors for a missing or foreign library, and, in a one-process MPI job per engine, every bound
 * function with the flavor's handles: in-place reduce, gather, in-place gather, broadcast,
 * barrier, error codes turned into text. Loading alone never initialises MPI.
 */
import assert from "node:assert/strict";
import { loadMpi, mpiFlavorOfVersion, MpiUnavailableError } from "../../ffi/mpi/mod.ts";
import { ENGINES, engineTestName, here, runJob } from "./mpi_job.ts";

Deno.test("mpiFlavorOfVersion tells OpenMPI from MPICH-ABI libraries", () => {
  const table: Array<[string, string | undefined]> = [
    ["Open MPI v4.1.4, package: Debian OpenMPI, ident: 4.1.4", "openmpi"],
    ["MPICH Version: 4.0.2", "mpich"],
    ["Intel(R) MPI Library 2021.10 for Linux* OS", "mpich"],
    ["MVAPICH2 Version: 2.3.7", "mpich"],
    ["Microsoft MPI 10.1", undefined],
    ["", undefined],
  ];
  for (const [version, flavor] of table) assert.equal(mpiFlavorOfVersion(version), flavor, version);
});

Deno.test("loadMpi of a missing file names it and says how to install", () => {
  assert.throws(() => loadMpi({ path: "/nonexistent/libmpi.so.40" }), (e: unknown) => {
    assert.ok(e instanceof MpiUnavailableError);
    assert.match(e.message, /'\/nonexistent\/libmpi.so.40'/);
    assert.match(e.message, /scripts\/setup_mpi.sh/);
    assert.match(e.message, /RESSL_MPI_LIB/);
    return true;
  });
});

Deno.test("loadMpi of a library that is not MPI is refused", () => {
  assert.throws(() => loadMpi({ path: "libc.so.6" }), MpiUnavailableError);
});

for (const engine of ENGINES) {
  const soname = engine.name === "openmpi" ? "libmpi.so.40" : "libmpich.so.12";
  Deno.test({
    name: engineTestName(engine, `loadMpi identifies ${soname} without initialising MPI`),
    ignore: engine.launcher === undefined,
    fn() {
      const lib = loadMpi({ flavor: engine.name });
      try {
        assert.equal(lib.flavor, engine.name);
        assert.equal(lib.path, soname);
        assert.match(
          lib.version,
          engine.name === "openmpi" ? /^Open MPI v\d/ : /^MPICH Version: \d/,
        );
        assert.equal(lib.initialized(), false);
        assert.equal(lib.finalized(), false);
      } finally {
        lib.close();
      }
    },
  });

  Deno.test({
    name: engineTestName(engine, "every binding in a one-process MPI job"),
    ignore: engine.launcher === undefined,
    async fn() {
      const job = await runJob({
        worker: here("mpi_ffi_worker.ts"),
        args: ["--lib", soname],
        limitS: 60,
      });
      assert.equal(job.code, 0, job.output);
      const line = job.output.split("\n").find((l) => l.startsWith("RESULT "));
      assert.ok(line !== undefined, job.output);
      const r = JSON.parse(line.slice(7));
      assert.equal(r.flavor, engine.name);
      assert.deepEqual(
        [r.initializedBefore, r.init, r.initializedAfter, r.errorsReturn, r.rank, r.size],
        [false, 0, true, 0, 0, 1],
      );
      assert.ok(r.provided >= 1, `thread level ${r.provided} < MPI_THREAD_FUNNELED`);
      assert.deepEqual(r.iallreduce, [0, 1, 1.5, -2, 4]);
      assert.deepEqual(r.iallgather, [0, 1, 9, 8]);
      assert.deepEqual(r.iallgatherInPlace, [0, 1, 0.125]);
      assert.deepEqual(r.ibcast, [0, 1, 3, 4]);
      assert.deepEqual(r.ibarrier, [0, 1]);
      assert.notEqual(r.badRoot[0], 0);
      assert.match(r.badRoot[1], /root/i);
      assert.deepEqual([r.finalize, r.finalizedAfter], [0, true]);
    },
  });
}
