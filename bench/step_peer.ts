/**
 * The PyTorch peer of the step benchmark: `bench/step_torch.py` as a child process that runs steps
 * on command ("run N" on stdin, one JSON line per command on stdout), so both sides stay warm and
 * alternate without sharing the cores.
 *
 * @module
 */

import { DEBIAN_PYTHON } from "./torch_python.ts";

/** A running PyTorch step process. */
export class TorchPeer {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;

  private constructor(child: Deno.ChildProcess) {
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.#lines = lines(child.stdout)[Symbol.asyncIterator]();
  }

  /**
   * Starts the peer with its JSON configuration (see `step_torch.py`; `channelsLast: true` for
   * NHWC) under `python` (default: Debian's PyTorch 1.13) and waits until it is ready.
   */
  static async start(
    config: Record<string, unknown>,
    python: string = DEBIAN_PYTHON,
  ): Promise<TorchPeer> {
    const script = new URL("./step_torch.py", import.meta.url).pathname;
    const child = new Deno.Command(python, {
      args: [script, JSON.stringify(config)],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const peer = new TorchPeer(child);
    const first = await peer.#next();
    if (first !== "ready") {
      throw new Error(`Cannot start the PyTorch peer (${python} ${script}): it said '${first}'`);
    }
    return peer;
  }

  /** Runs `n` steps; per-step wall and process-CPU seconds and the last loss. */
  async run(n: number): Promise<{ times: number[]; cpu: number[]; loss: number }> {
    await this.#writer.write(new TextEncoder().encode(`run ${n}\n`));
    return JSON.parse(await this.#next());
  }

  /** Stops the process. */
  async close(): Promise<void> {
    await this.#writer.write(new TextEncoder().encode("quit\n")).catch(() => {});
    await this.#writer.close().catch(() => {});
    await this.#child.status;
  }

  async #next(): Promise<string> {
    const r = await this.#lines.next();
    if (r.done) throw new Error("Cannot read from the PyTorch peer: it exited (see its stderr)");
    return r.value;
  }
}

async function* lines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      yield buf.slice(0, i);
      buf = buf.slice(i + 1);
    }
  }
  if (buf) yield buf;
}
