/**
 * The cpu backend's OpenMP wait policy (`ffi/dnnl/openmp_env.ts`): in a fresh process, loading
 * oneDNN sets `OMP_WAIT_POLICY=passive` before libgomp reads it (libgomp's own report,
 * `omp_display_env`, says PASSIVE), and a policy the user set is kept (ACTIVE stays ACTIVE). Each
 * case runs in a child process: libgomp reads its environment once per process.
 *
 * @module
 */

import assert from "node:assert/strict";
import { DnnlUnavailableError, loadDnnl } from "../../ffi/dnnl/mod.ts";

function missing(): string | null {
  try {
    loadDnnl().close();
    return null;
  } catch (e) {
    if (e instanceof DnnlUnavailableError) return e.message;
    throw e;
  }
}

const CHILD = `
import { loadDnnl } from "${new URL("../../ffi/dnnl/mod.ts", import.meta.url).href}";
const lib = loadDnnl();
const gomp = Deno.dlopen("libgomp.so.1", { omp_display_env: { parameters: ["i32"], result: "void" } });
gomp.symbols.omp_display_env(0);
console.log("@@" + lib.openmpWait);
`;

async function child(env: Record<string, string>): Promise<{ policy: string; said: string }> {
  const clean = Deno.env.toObject();
  delete clean.OMP_WAIT_POLICY;
  delete clean.GOMP_SPINCOUNT;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", CHILD],
    env: { ...clean, ...env },
    clearEnv: true,
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  const policy = text.match(/OMP_WAIT_POLICY = '(\w+)'/)?.[1];
  const said = text.match(/@@(.*)/)?.[1];
  assert.ok(policy !== undefined && said !== undefined, text);
  return { policy, said };
}

const why = missing();

Deno.test({
  name: "cpu openmp: oneDNN's threads wait passively unless the user chose a policy",
  ignore: why !== null,
  fn: async () => {
    const dflt = await child({});
    assert.equal(dflt.policy, "PASSIVE");
    assert.match(dflt.said, /OMP_WAIT_POLICY=passive \(set by the cpu backend\)/);
    const user = await child({ OMP_WAIT_POLICY: "active" });
    assert.equal(user.policy, "ACTIVE");
    assert.match(user.said, /OMP_WAIT_POLICY=active \(from the environment\)/);
  },
});
