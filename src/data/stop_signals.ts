/**
 * Ctrl-C for long data operations (downloads, extraction): the first SIGINT or SIGTERM aborts an
 * `AbortSignal` so the operation can stop cleanly (keep what can be resumed, remove what it had
 * half made) and say so; a second one quits at once with status 130, as a shell does.
 *
 * @module
 */

const SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * Runs `work` with a signal that the process's first SIGINT/SIGTERM aborts (its reason: the
 * signal's name); a second signal exits the process with status 130. The listeners are removed
 * when `work` settles. Where the platform has no such signals (Windows: SIGTERM), `work` runs with
 * the signals it has.
 */
export async function stopOnSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const control = new AbortController();
  const installed: [Deno.Signal, () => void][] = [];
  for (const name of SIGNALS) {
    const onSignal = () => {
      if (control.signal.aborted) Deno.exit(130);
      console.error(`\n${name}: stopping (again to quit at once)`);
      control.abort(name);
    };
    try {
      Deno.addSignalListener(name, onSignal);
      installed.push([name, onSignal]);
    } catch {
      // not a signal of this platform
    }
  }
  try {
    return await work(control.signal);
  } finally {
    for (const [name, f] of installed) Deno.removeSignalListener(name, f);
  }
}
