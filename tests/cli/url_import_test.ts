/**
 * The URL-import example (examples/url_import.ts) against the repository served on 127.0.0.1 by
 * a tiny file server: with `.ts` sent as `application/typescript` the example imports mod.ts by
 * URL (no clone, no config file) and trains a few steps; with `.ts` sent as
 * `text/vnd.trolltech.linguist` (what `python3 -m http.server` sends on Debian, from
 * /etc/mime.types) Deno parses mod.ts as JavaScript and stops at a SyntaxError, which is why the
 * example's note asks a server to send `.ts` as TypeScript.
 */
import assert from "node:assert/strict";
import { extname, join } from "node:path";

const ROOT = new URL("../../", import.meta.url).pathname;
const EXAMPLE = join(ROOT, "examples/url_import.ts");

const TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".js": "application/javascript",
  ".json": "application/json",
};

/** Serves the repository read-only; `.ts` files with `tsType`. */
function serve(tsType: string): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.includes("..")) return new Response("bad path", { status: 400 });
    try {
      const body = await Deno.readFile(join(ROOT, path));
      const ext = extname(path);
      const type = ext === ".ts" ? tsType : TYPES[ext] ?? "application/octet-stream";
      return new Response(body, { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
}

async function runExample(server: Deno.HttpServer<Deno.NetAddr>) {
  const { port } = server.addr;
  const cwd = await Deno.makeTempDir({ prefix: "ressl_url_" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      // No config file: what a user without a checkout gets.
      args: [
        "run",
        "--no-config",
        `--allow-import=127.0.0.1:${port}`,
        EXAMPLE,
        `http://127.0.0.1:${port}`,
        "2",
      ],
      cwd,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const d = new TextDecoder();
    return { code: out.code, text: d.decode(out.stdout) + d.decode(out.stderr) };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

Deno.test("examples/url_import.ts imports mod.ts by URL and trains 2 steps", async () => {
  const server = serve("application/typescript");
  try {
    const r = await runExample(server);
    assert.equal(r.code, 0, r.text);
    const losses = [...r.text.matchAll(/step (\d+): loss (\d+\.\d+)/g)];
    assert.deepEqual(losses.map((m) => Number(m[1])), [1, 2], r.text);
    for (const m of losses) assert.ok(Number(m[2]) > 0 && Number.isFinite(Number(m[2])));
  } finally {
    await server.shutdown();
  }
});

Deno.test("a server sending .ts as Qt Linguist (python3 -m http.server on Debian) breaks the import", async () => {
  const server = serve("text/vnd.trolltech.linguist");
  try {
    const r = await runExample(server);
    assert.notEqual(r.code, 0, r.text);
    assert.match(r.text, /SyntaxError/);
    assert.match(r.text, /127\.0\.0\.1:\d+\/mod\.ts/);
    assert.doesNotMatch(r.text, /step 1: loss/);
  } finally {
    await server.shutdown();
  }
});
