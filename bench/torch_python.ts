/**
 * The PyTorch installations the side-by-side benchmarks run as peers:
 * - `current`: the newest PyTorch the machine can install (torch 2.x with oneDNN 3.x, MKL and
 *   AVX-512 kernels), in the git-ignored venv `.cache/torch-venv` that `scripts/setup_torch.sh`
 *   creates offline when it is missing (only the benchmarks call that script, never setup/CI);
 * - `debian`: Debian's PyTorch 1.13 (`/usr/bin/python3`, oneDNN 2.6.3 like ours, AVX2 ATen
 *   kernels), the one the parity tests use.
 *
 * @module
 */

/** Python with Debian's PyTorch 1.13. */
export const DEBIAN_PYTHON = "/usr/bin/python3";

const SETUP = new URL("../scripts/setup_torch.sh", import.meta.url).pathname;

/** One PyTorch installation. */
export interface TorchPython {
  /** `current` (venv, torch 2.x) or `debian` (torch 1.13). */
  id: "current" | "debian";
  /** The python executable. */
  python: string;
  /** torch version, e.g. `2.14.1+cu130`. */
  torch: string;
  /** oneDNN version PyTorch was built with, e.g. `3.12.0`. */
  onednn: string;
}

const PROBE = `
import torch
v = "none"
for line in torch.__config__.show().splitlines():
    if "MKL-DNN" in line or "oneDNN" in line:
        v = line.split("v", 1)[-1].split()[0]
print(torch.__version__, v)
`;

/** torch and oneDNN versions of `python`, or undefined when it cannot import torch. */
export async function probeTorch(python: string): Promise<[string, string] | undefined> {
  try {
    const out = await new Deno.Command(python, {
      args: ["-c", PROBE],
      stdout: "piped",
      stderr: "null",
    }).output();
    if (!out.success) return undefined;
    const [torch, onednn] = new TextDecoder().decode(out.stdout).trim().split(/\s+/);
    return torch ? [torch, onednn ?? "none"] : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The current PyTorch (runs `scripts/setup_torch.sh`, which creates the venv when missing and
 * prints its python path last). Throws with the script's message when it cannot be set up.
 */
export async function currentTorch(): Promise<TorchPython> {
  const out = await new Deno.Command("bash", {
    args: [SETUP],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr).trim();
  if (!out.success) {
    throw new Error(
      `Cannot set up the current PyTorch with ${SETUP} (exit ${out.code}): ${stderr.slice(-600)}`,
    );
  }
  const python = new TextDecoder().decode(out.stdout).trim().split("\n").at(-1) ?? "";
  const v = await probeTorch(python);
  if (!v) throw new Error(`Cannot import torch with ${python} (set up by ${SETUP})`);
  return { id: "current", python, torch: v[0], onednn: v[1] };
}

/** Debian's PyTorch 1.13, or undefined (with the reason) when it is not installed. */
export async function debianTorch(): Promise<TorchPython | string> {
  const v = await probeTorch(DEBIAN_PYTHON);
  if (!v) return `${DEBIAN_PYTHON} cannot import torch (Debian python3-torch not installed)`;
  return { id: "debian", python: DEBIAN_PYTHON, torch: v[0], onednn: v[1] };
}
