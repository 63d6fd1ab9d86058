/**
 * The committed kernel fatbin is built from the committed sources: the manifest's hashes match
 * every source and build.sh (a tampered copy of the folder fails, naming the file), the fatbin
 * matches the manifest and holds the expected code, the kernel names and argument types agree
 * between the sources, the manifest and signatures.ts, and, where the same nvcc release is
 * installed (CI machines of this kind have nvcc 13.0), a rebuild gives the same bytes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { KERNEL_SIGNATURES } from "../../ffi/cuda/kernels/signatures.ts";
import {
  declaredKernels,
  fatbinEntries,
  manifestProblems,
  readManifest,
  sourceFiles,
} from "./fatbin_check.ts";

const DIR = fileURLToPath(new URL("../../ffi/cuda/kernels/", import.meta.url));

/** `release 13.0, V13.0.88` of the nvcc on PATH, or null when there is none. */
function nvccVersion(): string | null {
  try {
    const out = new Deno.Command("nvcc", { args: ["--version"], stdout: "piped", stderr: "null" })
      .outputSync();
    const m = new TextDecoder().decode(out.stdout).match(/release [0-9.]+, V[0-9.]+/);
    return out.success && m ? m[0] : null;
  } catch {
    return null;
  }
}

/** A copy of the kernels folder in a temporary directory (removed after `body`). */
async function withCopy(body: (dir: string) => Promise<void>): Promise<void> {
  const tmp = Deno.makeTempDirSync({ prefix: "ressl_kernels_" });
  try {
    for (const e of Deno.readDirSync(DIR)) {
      if (e.isFile) Deno.copyFileSync(join(DIR, e.name), join(tmp, e.name));
    }
    await body(tmp);
  } finally {
    Deno.removeSync(tmp, { recursive: true });
  }
}

Deno.test("kernel manifest: every source hash, the fatbin hash and size match", async () => {
  assert.deepEqual(await manifestProblems(DIR), []);
  assert.deepEqual(Object.keys(readManifest(DIR).sources).sort(), sourceFiles(DIR));
});

Deno.test("kernel manifest: a source changed, added or removed without a rebuild fails", async () => {
  await withCopy(async (dir) => {
    const f = join(dir, "rows.cu");
    Deno.writeTextFileSync(f, Deno.readTextFileSync(f).replace("expf(", "__expf("));
    const problems = await manifestProblems(dir);
    assert.equal(problems.length, 1, problems.join("\n"));
    assert.match(problems[0], /^rows\.cu changed since the fatbin was built: run .*build\.sh/);
  });
  await withCopy(async (dir) => {
    Deno.writeTextFileSync(join(dir, "extra.cu"), "// new kernels\n");
    Deno.removeSync(join(dir, "pool.cu"));
    const problems = await manifestProblems(dir);
    assert.deepEqual(problems.map((p) => p.split(" ")[0]), ["extra.cu", "pool.cu"]);
  });
  await withCopy(async (dir) => {
    const fatbin = Deno.readFileSync(join(dir, "ressl_kernels.fatbin"));
    fatbin[fatbin.length - 1] ^= 1;
    Deno.writeFileSync(join(dir, "ressl_kernels.fatbin"), fatbin);
    assert.match((await manifestProblems(dir)).join(), /ressl_kernels\.fatbin is not the file/);
  });
});

Deno.test("kernel fatbin: compressed SASS for sm_80/90/100/120 and compute_80 PTX", () => {
  const entries = fatbinEntries(Deno.readFileSync(join(DIR, "ressl_kernels.fatbin")));
  const seen = entries.map((e) => `${e.kind}${e.sm}`).sort();
  assert.deepEqual(seen, ["elf100", "elf120", "elf80", "elf90", "ptx80"]);
  assert.ok(entries.every((e) => e.compressed), "built with --compress-mode=size");
  assert.throws(() => fatbinEntries(new Uint8Array(32)), /magic number/);
});

Deno.test("kernel names and argument types agree: sources, manifest, signatures.ts", () => {
  const declared = declaredKernels(DIR);
  const names = declared.map((k) => k.name);
  assert.deepEqual(readManifest(DIR).kernels, names, "manifest kernels = source kernels");
  assert.deepEqual(Object.keys(KERNEL_SIGNATURES).sort(), names, "signatures.ts = sources");
  for (const k of declared) {
    const sig = KERNEL_SIGNATURES[k.name as keyof typeof KERNEL_SIGNATURES];
    assert.deepEqual([...sig], k.args, `argument types of ${k.name}`);
  }
});

const version = nvccVersion();

Deno.test({
  name: "kernel fatbin: a rebuild with this nvcc gives the committed bytes" +
    (version ? "" : " (skipped: no nvcc on PATH)"),
  ignore: version === null,
  async fn() {
    const manifest = readManifest(DIR);
    const tmp = Deno.makeTempDirSync({ prefix: "ressl_kernels_build_" });
    try {
      const out = join(tmp, "k.fatbin"), json = join(tmp, "k.json");
      const run = await new Deno.Command("bash", {
        args: [join(DIR, "build.sh"), "--out", out, "--manifest", json],
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.ok(run.success, `build.sh failed:\n${new TextDecoder().decode(run.stderr)}`);
      const rebuilt = JSON.parse(Deno.readTextFileSync(json));
      assert.deepEqual(rebuilt.kernels, manifest.kernels, "kernel list of the rebuild");
      assert.deepEqual(rebuilt.sources, manifest.sources, "the rebuild hashed the same sources");
      if (version === manifest.nvcc) {
        assert.equal(
          rebuilt.fatbinSha256,
          manifest.fatbinSha256,
          "nvcc 13.0 builds are reproducible: a different fatbin means the committed one is " +
            "stale (run ffi/cuda/kernels/build.sh and commit the fatbin and manifest)",
        );
      } else {
        console.warn(`nvcc ${version} is not the manifest's ${manifest.nvcc}: bytes not compared`);
      }
    } finally {
      Deno.removeSync(tmp, { recursive: true });
    }
  },
});
