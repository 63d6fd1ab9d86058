#!/usr/bin/env bash
# Prepares the git-ignored folder .gpu/ that travels with the working tree to the GPU machine
# (which has no Deno and no network; docs/gpu.md has the device-tool call that uses it):
#   .gpu/deno.xz        this machine's Deno binary, xz-compressed (~30 MB; the binary is ~95 MB,
#                       over the transfer limit)
#   .gpu/node_modules/  the npm packages `deno task gpu-check` imports (its child `deno test` of the
#                       conformance suite: fast-check and its dependencies), copied from
#                       node_modules/ in Deno's layout, so the run works with --cached-only
#   .gpu/MANIFEST       what was packed, with sizes and the Deno version
# Usage: bash scripts/gpu_pack.sh        (rebuilds deno.xz only when the Deno binary is newer)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
dest=.gpu
mkdir -p "$dest"
rm -f "$dest/deno" # an unpacked binary (older gpu_run.sh) would exceed the carry limit

deno_bin="$(readlink -f "$(command -v deno)")"
if [ ! -x "$deno_bin" ]; then
  echo "gpu_pack: no deno on PATH (npm install -g deno@2.9.6)" >&2
  exit 1
fi
if [ ! -s "$dest/deno.xz" ] || [ "$deno_bin" -nt "$dest/deno.xz" ]; then
  echo "gpu_pack: compressing $deno_bin (xz -T2 -6)"
  xz -T2 -6 -c "$deno_bin" >"$dest/deno.xz.tmp"
  mv "$dest/deno.xz.tmp" "$dest/deno.xz"
fi

# The cpu backend's own kernels (build/cpu/libressl_cpu.so), carried beside .gpu (docs/gpu.md).
bash scripts/setup_cpu.sh || echo "gpu_pack: warning: no build/cpu/libressl_cpu.so (see above)" >&2

# The entry points the GPU run executes; their npm packages and the packages those depend on.
entries=(tasks/gpu_check.ts tests/backend/conformance_test.ts tests/cuda_backend/backend_test.ts)
deno install --quiet --entrypoint "${entries[@]}" >/dev/null
mapfile -t packages < <(deno run --quiet --allow-run --allow-read - "${entries[@]}" <<'EOF'
const seen = new Set<string>();
const todo: string[] = [];
let all: Record<string, { dependencies?: Record<string, string> }> = {};
for (const entry of Deno.args) {
  const out = new Deno.Command(Deno.execPath(), { args: ["info", "--json", entry] }).outputSync();
  if (!out.success) throw new Error(`deno info ${entry} failed`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  all = { ...all, ...(info.npmPackages ?? {}) };
  for (const m of info.modules ?? []) {
    if (typeof m.npmPackage === "string") todo.push(m.npmPackage);
  }
}
while (todo.length > 0) {
  const id = todo.pop()!;
  if (seen.has(id)) continue;
  seen.add(id);
  for (const dep of Object.values(all[id]?.dependencies ?? {})) todo.push(dep);
}
for (const id of [...seen].sort()) console.log(id);
EOF
)

rm -rf "$dest/node_modules"
mkdir -p "$dest/node_modules/.deno"
for id in "${packages[@]}"; do
  dir="node_modules/.deno/${id//\//+}"
  if [ ! -d "$dir" ]; then
    echo "gpu_pack: $dir is missing (run deno install)" >&2
    exit 1
  fi
  cp -a "$dir" "$dest/node_modules/.deno/"
  name="${id%@*}"
  [ -z "$name" ] && name="$id"
  top="node_modules/$name"
  # The top-level link of a package the project imports directly (deno.json "imports").
  if [ -L "$top" ]; then
    mkdir -p "$(dirname "$dest/$top")"
    cp -a "$top" "$dest/$top"
  fi
done

{
  echo "deno $(deno --version | head -n 1 | awk '{print $2}') ($(du -h "$dest/deno.xz" | cut -f1) xz)"
  echo "npm packages: ${packages[*]} ($(du -sh "$dest/node_modules" | cut -f1))"
  echo "packed $(date -u +%Y-%m-%dT%H:%M:%SZ) at $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} >"$dest/MANIFEST"
cat "$dest/MANIFEST"
echo "gpu_pack: carry .gpu and build/cpu (total $(du -sch "$dest" build/cpu 2>/dev/null | tail -n 1 | cut -f1); the limit is 64 MiB)"
