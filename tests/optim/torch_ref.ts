/**
 * Runs a PyTorch reference script (`/usr/bin/python3`) with JSON on stdin and JSON on stdout, and
 * tells whether PyTorch is importable here (tests register with `ignore` when it is not).
 *
 * @module
 */

const PYTHON = "/usr/bin/python3";

/** Whether `/usr/bin/python3` can import torch. */
export function torchAvailable(): boolean {
  try {
    const r = new Deno.Command(PYTHON, { args: ["-c", "import torch"], stderr: "null" })
      .outputSync();
    return r.success;
  } catch {
    return false;
  }
}

/** Runs `script` with `input` as JSON on stdin and returns its stdout parsed as JSON. */
export async function runTorchScript<T>(script: URL, input: unknown): Promise<T> {
  const child = new Deno.Command(PYTHON, {
    args: [script.pathname],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(input)));
  await writer.close();
  const out = await child.output();
  if (!out.success) {
    throw new Error(
      `PyTorch reference ${script.pathname} failed:\n${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}
