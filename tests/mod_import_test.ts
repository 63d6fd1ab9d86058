import assert from "node:assert/strict";

Deno.test("mod.ts imports cleanly by file URL from a directory without project config", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_import_" });
  try {
    const modUrl = new URL("../mod.ts", import.meta.url).href;
    const script = `${dir}/use.ts`;
    await Deno.writeTextFile(
      script,
      `import * as ressl from ${JSON.stringify(modUrl)};\n` +
        `const names = Object.keys(ressl).sort();\n` +
        `console.log(JSON.stringify(names));\n`,
    );
    const denoDir = Deno.env.get("DENO_DIR");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--allow-read", "--node-modules-dir=none", script],
      cwd: dir,
      env: denoDir ? { DENO_DIR: denoDir } : {},
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `importing mod.ts failed:\n${stderr}`);
    const names: string[] = JSON.parse(new TextDecoder().decode(out.stdout));
    for (
      const expected of [
        "createContext",
        "valueAndGrad",
        "Tensor",
        "rngKey",
        "createBackend",
        "conv2d",
        "resnetForward",
        "createTrainStep",
        "runTraining",
        "Loader",
        "knnClassify",
        "saveCheckpoint",
      ]
    ) {
      assert.ok(names.includes(expected), `mod.ts does not export '${expected}'`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
