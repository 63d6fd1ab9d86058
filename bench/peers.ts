/**
 * The PyTorch peers of the step and training-path benchmarks: `t2` (the newest PyTorch the machine
 * installs, eager NCHW), `t2cl` (the same in channels_last) and `t113` (Debian's PyTorch 1.13, NCHW).
 * Issue 15 compares against the faster of `t2` and `t2cl` ("the peer") and keeps `t113` as a
 * second column.
 *
 * @module
 */

import { currentTorch, debianTorch, type TorchPython } from "./torch_python.ts";

/** One PyTorch peer. */
export interface PeerSpec {
  /** `t2`, `t2cl` or `t113`. */
  id: PeerId;
  /** Column label, e.g. `torch 2.14.1 NCHW`. */
  label: string;
  /** The python executable. */
  python: string;
  /** torch version. */
  torch: string;
  /** oneDNN version torch bundles. */
  onednn: string;
  /** Networks and inputs in channels_last (NHWC). */
  channelsLast: boolean;
  /** true for the newest PyTorch (`t2`, `t2cl`), false for Debian's 1.13. */
  current: boolean;
}

/** Peer ids. */
export type PeerId = "t2" | "t2cl" | "t113";

/** Every peer id, in column order. */
export const PEER_IDS: readonly PeerId[] = ["t2", "t2cl", "t113"];

function spec(id: PeerId, t: TorchPython): PeerSpec {
  const version = t.torch.split("+")[0];
  const channelsLast = id === "t2cl";
  return {
    id,
    label: `torch ${version} ${channelsLast ? "channels_last" : "NCHW"}`,
    python: t.python,
    torch: t.torch,
    onednn: t.onednn,
    channelsLast,
    current: id !== "t113",
  };
}

/**
 * The peers named by `--peers` (default: all three; `none`: no peer). A PyTorch that cannot be set up is left out
 * with a note saying why (the benchmark still runs the others); an unknown id throws.
 */
export async function resolvePeers(
  list: string | undefined,
): Promise<{ peers: PeerSpec[]; notes: string[] }> {
  const ids = list === "none"
    ? []
    : list
    ? list.split(",").map((s) => s.trim()).filter((s) => s)
    : [...PEER_IDS];
  for (const id of ids) {
    if (!PEER_IDS.includes(id as PeerId)) {
      throw new RangeError(
        `Cannot run the benchmark: --peers ${list} names '${id}', known peers are ${
          PEER_IDS.join(", ")
        }`,
      );
    }
  }
  const notes: string[] = [];
  const peers: PeerSpec[] = [];
  let current: TorchPython | undefined;
  if (ids.includes("t2") || ids.includes("t2cl")) {
    try {
      current = await currentTorch();
    } catch (e) {
      notes.push(`no current PyTorch peer: ${(e as Error).message}`);
    }
  }
  let debian: TorchPython | undefined;
  if (ids.includes("t113")) {
    const d = await debianTorch();
    if (typeof d === "string") notes.push(`no PyTorch 1.13 peer: ${d}`);
    else debian = d;
  }
  for (const id of PEER_IDS) {
    if (!ids.includes(id)) continue;
    const t = id === "t113" ? debian : current;
    if (t) peers.push(spec(id, t));
  }
  for (const p of peers) notes.push(`peer ${p.id}: ${p.label} (oneDNN ${p.onednn}, ${p.python})`);
  return { peers, notes };
}
