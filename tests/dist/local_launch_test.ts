/**
 * `--nproc`'s launcher command (`localJobCommand`) for machines described by tables: OpenMPI
 * preferred with `--bind-to none` (and `--oversubscribe` beyond the cores, `--allow-run-as-root`
 * as root), a generic `mpirun` used only when it is OpenMPI's, MPICH otherwise, a clear error
 * when there is none; and the rank args of `train --nproc` (in `tasks/train.ts`) are covered by
 * `train_kill_test.ts`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { localJobCommand, type LocalMachine } from "../../src/dist/local_launch.ts";

function machine(bins: string[], cores = 2, root = false): LocalMachine {
  return { which: (n) => (bins.includes(n) ? `/usr/bin/${n}` : undefined), cores, root };
}

const program = ["deno", "run", "-A", "tasks/train.ts", "--epochs", "1"];

Deno.test("localJobCommand: OpenMPI first, with --bind-to none, oversubscription and root", () => {
  assert.deepEqual(localJobCommand(2, program, machine(["mpirun.openmpi", "mpirun.mpich"])), {
    engine: "openmpi",
    launcher: "/usr/bin/mpirun.openmpi",
    args: ["--bind-to", "none", "-np", "2", ...program],
  });
  assert.deepEqual(
    localJobCommand(4, program, machine(["mpirun.openmpi"], 2, true)).args.slice(0, 4),
    ["--bind-to", "none", "--oversubscribe", "--allow-run-as-root"],
  );
});

Deno.test("localJobCommand: a generic mpirun is OpenMPI's only when it says so; else MPICH", () => {
  const isOmpi = (answer: boolean) => () => answer;
  const generic = machine(["mpirun"]);
  assert.equal(localJobCommand(2, program, generic, isOmpi(true)).engine, "openmpi");
  const mpich = localJobCommand(2, program, generic, isOmpi(false));
  assert.deepEqual(mpich, {
    engine: "mpich",
    launcher: "/usr/bin/mpirun",
    args: ["-np", "2", ...program],
  });
  assert.equal(
    localJobCommand(3, program, machine(["mpiexec.mpich"])).launcher,
    "/usr/bin/mpiexec.mpich",
  );
});

Deno.test("localJobCommand: no launcher or a bad count is refused clearly", () => {
  assert.throws(
    () => localJobCommand(2, program, machine([])),
    /no MPI launcher found.*openmpi-bin/,
  );
  assert.throws(
    () => localJobCommand(0, program, machine(["mpirun.openmpi"])),
    /--nproc must be an integer >= 1/,
  );
});
