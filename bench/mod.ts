/**
 * `deno task bench [step|data|all] [options]`: benchmarks that run the peer (PyTorch) side by side
 * in the same invocation. `step`: a ReSSL training step, ours vs PyTorch; `data`: the augmentation
 * loader's images/s. Each sub-benchmark also runs on its own (`deno run -A bench/step.ts`).
 *
 * @module
 */

const SUITES: Record<string, string> = {
  step: "./step.ts",
  data: "./data.ts",
};

if (import.meta.main) {
  const [which = "all", ...rest] = Deno.args;
  if (which === "--help" || which === "-h") {
    console.log(`Usage: deno task bench [${Object.keys(SUITES).join("|")}|all] [options]`);
    Deno.exit(0);
  }
  const names = which === "all" ? Object.keys(SUITES) : [which];
  for (const name of names) {
    const path = SUITES[name];
    if (!path) {
      console.error(
        `Cannot run benchmark '${name}': known ones are ${Object.keys(SUITES).join(", ")}, all`,
      );
      Deno.exit(2);
    }
    const mod = await import(path);
    await mod.main(which === "all" ? [] : rest);
  }
}
