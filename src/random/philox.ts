/**
 * Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A {@link RngKey} is an immutable 64-bit key. Every random value is a pure function of a key and a
 * counter, so the numbers drawn for sample `i` of epoch `e` are `foldIn(foldIn(key, e), i)` whatever
 * the batch size, worker count or resume point. No generator state is ever shared.
 *
 * @module
 */

/** An immutable Philox key: two unsigned 32-bit words. */
export interface RngKey {
  /** First key word (unsigned 32-bit). */
  readonly k0: number;
  /** Second key word (unsigned 32-bit). */
  readonly k1: number;
}

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two unsigned 32-bit integers. */
function mulHi(a: number, b: number): number {
  const aLo = a & 0xffff, aHi = a >>> 16, bLo = b & 0xffff, bHi = b >>> 16;
  const loLo = aLo * bLo, loHi = aLo * bHi, hiLo = aHi * bLo, hiHi = aHi * bHi;
  const cross = (loLo >>> 16) + (loHi & 0xffff) + (hiLo & 0xffff);
  return (hiHi + (loHi >>> 16) + (hiLo >>> 16) + (cross >>> 16)) >>> 0;
}

/**
 * Philox4x32-10 block function: four 32-bit outputs for a key and a 128-bit counter.
 * Writes into `out` (length >= 4) to avoid allocation in hot loops.
 */
export function philox4x32(
  key: RngKey,
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  out: Uint32Array,
): Uint32Array {
  let k0 = key.k0 >>> 0, k1 = key.k1 >>> 0;
  let x0 = c0 >>> 0, x1 = c1 >>> 0, x2 = c2 >>> 0, x3 = c3 >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulHi(M0, x0), lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulHi(M1, x2), lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ k0) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ k1) >>> 0;
    x3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
  return out;
}

/** Makes the root key of a run from an integer seed (any safe integer, negative allowed). */
export function rngKey(seed: number): RngKey {
  if (!Number.isSafeInteger(seed)) {
    throw new RangeError(`Cannot make a random key: seed must be a safe integer, got ${seed}`);
  }
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  const out = philox4x32({ k0: lo, k1: hi }, 0x5eed, 0, 0, 0x6b6579, new Uint32Array(4));
  return { k0: out[0], k1: out[1] };
}

/**
 * Derives an independent key from `key` and a list of non-negative integers (epoch, sample index,
 * stream name hash, ...). `foldIn(k, a, b)` equals `foldIn(foldIn(k, a), b)`.
 */
export function foldIn(key: RngKey, ...data: number[]): RngKey {
  const out = new Uint32Array(4);
  let k = key;
  for (const d of data) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new RangeError(
        `Cannot fold data into a random key: expected a safe integer >= 0, got ${d}`,
      );
    }
    philox4x32(k, d >>> 0, Math.floor(d / 0x100000000) >>> 0, 0xf01d, 1, out);
    k = { k0: out[0], k1: out[1] };
  }
  return k;
}

/** Hash of a short name into a non-negative integer, for `foldIn(key, nameId("init"))`. */
export function nameId(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h >>> 0;
}

const TWO_POW_M32 = 1 / 0x100000000;
const TWO_POW_M53 = 1 / 2 ** 53;

/**
 * A sequential reader over the counter stream of one key. The values it yields are a pure function of
 * the key and how many were read before, so two readers over the same key agree.
 */
export class RandomStream {
  /** The key whose counter stream this reads. */
  readonly key: RngKey;
  #counter = 0;
  #buf = new Uint32Array(4);
  #pos = 4;

  /** A reader at the start of `key`'s stream. */
  constructor(key: RngKey) {
    this.key = key;
  }

  /** Next unsigned 32-bit integer. */
  nextU32(): number {
    if (this.#pos === 4) {
      philox4x32(this.key, this.#counter, Math.floor(this.#counter / 0x100000000), 0, 0, this.#buf);
      this.#counter++;
      this.#pos = 0;
    }
    return this.#buf[this.#pos++];
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5, lo = this.nextU32() >>> 6;
    return (hi * 67108864 + lo) * TWO_POW_M53;
  }

  /** Uniform double in [lo, hi). */
  uniformRange(lo: number, hi: number): number {
    return lo + (hi - lo) * this.uniform();
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000 && Number.isInteger(n))) {
      throw new RangeError(`Cannot draw an integer below ${n}: n must be an integer in [1, 2^32]`);
    }
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const u = this.nextU32();
      if (u < limit) return u % n;
    }
  }

  /** Standard normal (Box-Muller, one value per call; the second is discarded for simplicity). */
  normal(): number {
    const u1 = (this.nextU32() + 0.5) * TWO_POW_M32;
    const u2 = this.nextU32() * TWO_POW_M32;
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** Bernoulli draw with probability `p` of true. */
  bernoulli(p: number): boolean {
    return this.uniform() < p;
  }
}

/** Fills a new Float32Array with `n` uniform values in [lo, hi) drawn from `key`. */
export function uniformArray(key: RngKey, n: number, lo = 0, hi = 1): Float32Array {
  const s = new RandomStream(key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = s.uniformRange(lo, hi);
  return out;
}

/** Fills a new Float32Array with `n` normal values of mean `mean` and standard deviation `std`. */
export function normalArray(key: RngKey, n: number, mean = 0, std = 1): Float32Array {
  const s = new RandomStream(key);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = mean + std * s.normal();
  return out;
}

/** A permutation of 0..n-1 (Fisher-Yates) drawn from `key`. */
export function permutation(key: RngKey, n: number): Int32Array {
  const s = new RandomStream(key);
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = s.int(i + 1);
    const t = p[i];
    p[i] = p[j];
    p[j] = t;
  }
  return p;
}
