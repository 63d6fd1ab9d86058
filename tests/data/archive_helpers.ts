/**
 * Test helpers: write ustar `.tar.gz` archives and CIFAR-10 binary batches in their real layouts.
 */

/** A ustar archive of `files` (path -> bytes), gzipped. */
export async function tarGz(files: Record<string, Uint8Array>): Promise<Uint8Array> {
  const blocks: Uint8Array[] = [];
  const enc = new TextEncoder();
  const field = (h: Uint8Array, at: number, len: number, s: string) =>
    h.set(enc.encode(s).subarray(0, len), at);
  for (const [path, data] of Object.entries(files)) {
    const h = new Uint8Array(512);
    field(h, 0, 100, path);
    field(h, 100, 8, "0000644\0");
    field(h, 108, 8, "0000000\0");
    field(h, 116, 8, "0000000\0");
    field(h, 124, 12, data.length.toString(8).padStart(11, "0") + "\0");
    field(h, 136, 12, "00000000000\0");
    h[156] = 48; // '0' regular file
    field(h, 257, 8, "ustar\x0000");
    h.fill(32, 148, 156);
    const sum = h.reduce((a, b) => a + b, 0);
    field(h, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
    blocks.push(h, data, new Uint8Array((512 - (data.length % 512)) % 512));
  }
  blocks.push(new Uint8Array(1024));
  const s = new Blob(blocks as Uint8Array<ArrayBuffer>[]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(s).arrayBuffer());
}

/** A CIFAR-10 binary batch of `labels.length` records with pixels derived from `seed`. */
export function cifar10Batch(labels: number[], seed: number): Uint8Array {
  const out = new Uint8Array(labels.length * 3073);
  labels.forEach((l, k) => {
    out[k * 3073] = l;
    for (let p = 0; p < 3072; p++) out[k * 3073 + 1 + p] = (seed * 13 + k * 7 + p) & 255;
  });
  return out;
}

/** The files of `cifar-10-binary.tar.gz` (small batches of 2 images). */
export function cifar10Files(): Record<string, Uint8Array> {
  const files: Record<string, Uint8Array> = {};
  for (let b = 1; b <= 5; b++) {
    files[`cifar-10-batches-bin/data_batch_${b}.bin`] = cifar10Batch([b, b + 1], b);
  }
  files["cifar-10-batches-bin/test_batch.bin"] = cifar10Batch([0, 9, 3], 9);
  files["cifar-10-batches-bin/batches.meta.txt"] = new TextEncoder().encode(
    "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n",
  );
  return files;
}
