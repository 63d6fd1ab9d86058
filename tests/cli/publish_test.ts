/**
 * `deno publish --dry-run` (JSR itself is unreachable here): the package must be publishable (a
 * license, no slow types in the public API) and hold the library only: mod.ts, src/, ffi/,
 * configs/ and the command-line tasks, never tests (also the sibling `*_test.ts`), benchmarks, docs
 * or examples.
 */
import assert from "node:assert/strict";

const ROOT = new URL("../../", import.meta.url).pathname;

Deno.test({
  name: "deno publish --dry-run succeeds and leaves out tests, bench, docs and examples",
  // Type-checks the whole public API: slow on 2 shared cores.
  sanitizeResources: false,
  fn: async () => {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["publish", "--dry-run", "--allow-dirty"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const d = new TextDecoder();
    const text = d.decode(out.stdout) + d.decode(out.stderr);
    assert.equal(out.code, 0, text.split("\n").filter((l) => !/^\s+file:/.test(l)).join("\n"));
    const files = [...text.matchAll(/file:\/\/\/\S+/g)].map((m) => m[0].slice(ROOT.length + 7));
    assert.ok(files.includes("mod.ts") && files.includes("LICENSE"), files.join(" "));
    assert.ok(files.some((f) => f.startsWith("src/")) && files.some((f) => f.startsWith("tasks/")));
    const leaked = files.filter((f) =>
      /^(tests|bench|docs|examples|py|scripts|emulator)\//.test(f)
    );
    assert.deepEqual(leaked, [], "left out of the package");
  },
});
