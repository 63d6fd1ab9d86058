import assert from "node:assert/strict";
import fc from "fast-check";
import { join } from "node:path";
import {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  safetensorsHeaderLengthProblem,
  type SafetensorsMap,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";

const PY = "/usr/bin/python3";
const HELPER = new URL("./safetensors_rw.py", import.meta.url).pathname;

/** Builds file bytes from a header (object, raw text or raw bytes), data bytes and an optional length override. */
function makeFile(header: unknown, data: Uint8Array, headerLen?: bigint): Uint8Array {
  const json = header instanceof Uint8Array
    ? header
    : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, headerLen ?? BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function decodeError(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeSafetensors(bytes, { source: "w.safetensors" }), (e: Error) => {
    assert.match(e.message, /^Cannot read safetensors file 'w\.safetensors': /);
    assert.match(e.message, pattern);
    return true;
  });
}

const f32 = (shape: number[], begin: number) => ({
  dtype: "F32",
  shape,
  data_offsets: [begin, begin + 4 * shape.reduce((a, b) => a * b, 1)],
});

Deno.test("safetensors: round trip of every dtype with metadata and header padding", () => {
  const tensors: SafetensorsMap = {
    "layer1.0.conv1.weight": {
      dtype: "F32",
      shape: [2, 1, 3],
      data: Float32Array.from([1, -2, 3.5, -0, 1e-30, 3e38]),
    },
    "bn1.num_batches_tracked": { dtype: "I64", shape: [], data: BigInt64Array.from([2n ** 62n]) },
    "ids": { dtype: "I32", shape: [3], data: Int32Array.from([-(2 ** 31), 0, 2 ** 31 - 1]) },
    "img": { dtype: "U8", shape: [1, 2, 2], data: Uint8Array.from([0, 7, 128, 255]) },
    "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  };
  const bytes = encodeSafetensors(tensors, { metadata: { format: "pt", step: "12" } });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  assert.equal(bytes.length, 8 + n + 24 + 8 + 12 + 4);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.metadata, { format: "pt", step: "12" });
  assert.deepEqual(Object.keys(back.tensors), Object.keys(tensors));
  for (const [k, t] of Object.entries(tensors)) {
    assert.equal(back.tensors[k].dtype, t.dtype);
    assert.deepEqual(back.tensors[k].shape, t.shape);
    assert.deepEqual(back.tensors[k].data, t.data);
  }
  assert.ok(Object.is(back.tensors["layer1.0.conv1.weight"].data[3], -0));
});

Deno.test("safetensors: round trip property over random tensor maps", () => {
  const entry = fc.oneof(
    fc.array(fc.float({ noNaN: true }), { maxLength: 12 }).map((v) => ({
      dtype: "F32" as const,
      shape: [v.length],
      data: Float32Array.from(v),
    })),
    fc.array(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), { maxLength: 12 }).map((v) => ({
      dtype: "I32" as const,
      shape: [1, v.length],
      data: Int32Array.from(v),
    })),
    fc.array(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), { maxLength: 5 }).map((v) => ({
      dtype: "I64" as const,
      shape: [v.length],
      data: BigInt64Array.from(v),
    })),
    fc.uint8Array({ maxLength: 13 }).map((v) => ({
      dtype: "U8" as const,
      shape: [v.length, 1],
      data: v,
    })),
  );
  const name = fc.stringMatching(/^[a-z][a-z0-9_.]{0,10}$/);
  fc.assert(
    fc.property(
      fc.dictionary(name, entry, { maxKeys: 6, noNullPrototype: true }),
      fc.dictionary(name, fc.string(), { maxKeys: 3, noNullPrototype: true }),
      (tensors, metadata) => {
        const back = decodeSafetensors(encodeSafetensors(tensors, { metadata }));
        assert.deepEqual(back.metadata, metadata);
        assert.deepEqual(back.tensors, tensors);
      },
    ),
  );
});

Deno.test("safetensors: writer rejects inconsistent tensors", () => {
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }),
    /Cannot write safetensors tensor 'a': shape \[2,2\] needs 4 values, data has 3/,
  );
  assert.throws(
    () => encodeSafetensors({ a: { dtype: "I32", shape: [1], data: new Float32Array(1) } }),
    /tensor 'a': dtype I32 but data is a Float32Array/,
  );
  assert.throws(
    () => encodeSafetensors({ __metadata__: { dtype: "U8", shape: [0], data: new Uint8Array() } }),
    /'__metadata__': the name is reserved/,
  );
  assert.throws(
    () =>
      encodeSafetensors({
        a: { dtype: "C64" as "F32", shape: [1], data: new Float32Array(1) },
      }),
    /unknown dtype 'C64' \(supported: F64, F32, F16, BF16, I64, I32, U8\)/,
  );
});

Deno.test("safetensors: reader errors name the file and the problem", () => {
  const d8 = new Uint8Array(8);
  decodeError(
    new Uint8Array(5),
    /: it is not a safetensors file \(the file has only 5 bytes; one starts with an 8-byte header length\)$/,
  );
  // A length that a header could have: a file cut short, or not a safetensors file at all.
  decodeError(
    makeFile({}, new Uint8Array(), 9999n),
    /: it is truncated or not a safetensors file \(its first 8 bytes give a header length of 9999, but the file has 10 bytes\)$/,
  );
  // Garbage: a web page saved under the file's name, 16 bytes of noise.
  decodeError(
    new TextEncoder().encode("<html>404</html>"),
    /: it is not a safetensors file \(its first 8 bytes give a header length of 3473469848023230524, but the file has 16 bytes\)$/,
  );
  decodeError(
    Uint8Array.from({ length: 16 }, (_, k) => (k * 97 + 13) & 255),
    /: it is not a safetensors file \(its first 8 bytes give a header length of 12993996055297093133, but the file has 16 bytes\)$/,
  );
  decodeError(makeFile("{not json", new Uint8Array()), /header is not valid UTF-8 JSON/);
  decodeError(makeFile(new Uint8Array([0x22, 0xff, 0x22]), d8), /not valid UTF-8 JSON/);
  decodeError(makeFile("[1, 2]", new Uint8Array()), /header is not a JSON object/);
  decodeError(
    makeFile({ a: { dtype: "F8_E4M3", shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2)),
    /tensor 'a' has unknown dtype "F8_E4M3" \(supported: F64, F32, F16, BF16, I64, I32, U8\)/,
  );
  decodeError(
    makeFile({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, new Uint8Array(4)),
    /tensor 'a' has invalid shape \[-1\]/,
  );
  decodeError(
    makeFile({ a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, new Uint8Array(4)),
    /tensor 'a' has invalid data_offsets \[4,0\]/,
  );
  decodeError(
    makeFile({ a: { dtype: "F32", shape: [1], data_offsets: [0] } }, new Uint8Array(4)),
    /tensor 'a' has invalid data_offsets \[0\]/,
  );
  decodeError(makeFile({ a: 3 }, new Uint8Array()), /tensor 'a' is not an object/);
  decodeError(
    makeFile({ a: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, d8),
    /tensor 'a' has data_offsets \[0, 8\] \(8 bytes\) but F32 \[3\] needs 12 bytes/,
  );
  decodeError(
    makeFile({ a: f32([2], 0), b: f32([2], 4) }, new Uint8Array(12)),
    /tensor 'b' \(bytes 4..12\) overlaps tensor 'a' \(bytes 0..8\)/,
  );
  decodeError(
    makeFile({ a: f32([1], 0), b: f32([1], 8) }, new Uint8Array(12)),
    /tensor 'b' starts at byte 8, leaving a gap after byte 4/,
  );
  decodeError(
    makeFile({ a: f32([1], 0), b: f32([4], 4) }, new Uint8Array(12)),
    /tensor 'b' ends at data byte 20 but the file holds only 12 data bytes \(truncated\?\)/,
  );
  decodeError(makeFile({ a: f32([1], 0) }, d8), /4 unexpected bytes after the last tensor/);
  decodeError(
    makeFile({ __metadata__: { epoch: 3 } }, new Uint8Array()),
    /__metadata__ 'epoch' is not a string/,
  );
  decodeError(makeFile({ __metadata__: [] }, new Uint8Array()), /__metadata__ is not an object/);
  // Duplicate keys: JSON.parse would keep the last one silently.
  const a = JSON.stringify(f32([1], 0));
  decodeError(
    makeFile(`{"a":${a},"a":${JSON.stringify(f32([1], 4))}}`, d8),
    /duplicate key 'a' in the header \(tensor names must be unique\)/,
  );
  decodeError(
    makeFile(
      `{"a":{"dtype":"F32","dtype":"I32","shape":[1],"data_offsets":[0,4]}}`,
      d8.subarray(4),
    ),
    /duplicate key 'dtype' in tensor 'a'/,
  );
  decodeError(
    makeFile(`{"__metadata__":{"epoch":"1","e\\u0070och":"2"},"a":${a}}`, d8.subarray(4)),
    /duplicate key 'epoch' in __metadata__/,
  );
  // A well-formed file built by hand decodes (the cases above differ from it in one point each).
  const ok = decodeSafetensors(makeFile({ b: f32([1], 4), a: f32([1], 0) }, d8));
  assert.deepEqual(Object.keys(ok.tensors), ["b", "a"]);
});

Deno.test("safetensors: a header length says truncated only when a header could have it", () => {
  const limit = 100_000_000;
  // Within the limit but beyond the end: cut short, or not one.
  assert.match(
    safetensorsHeaderLengthProblem(1000, BigInt(limit), "checkpoint")!,
    /^it is truncated or not a safetensors checkpoint \(its first 8 bytes give a header length of 100000000, but the file has 1000 bytes\)$/,
  );
  // Above the limit: no safetensors file has it, even a file large enough to hold it.
  assert.equal(
    safetensorsHeaderLengthProblem(limit + 100, BigInt(limit + 1)),
    "it is not a safetensors file (its first 8 bytes give a header length of 100000001, " +
      "above the 100000000-byte limit)",
  );
  assert.equal(safetensorsHeaderLengthProblem(16, 8n), undefined);
  assert.equal(safetensorsHeaderLengthProblem(limit + 8, BigInt(limit)), undefined);
  assert.match(safetensorsHeaderLengthProblem(16, 9n)!, /truncated or not/);
  assert.match(safetensorsHeaderLengthProblem(7, undefined)!, /has only 7 bytes/);
});

Deno.test("safetensors: readSafetensors names a missing file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      () => readSafetensors(join(dir, "nope.safetensors")),
      /Cannot read safetensors file '.*nope\.safetensors': /,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic write: replaces the file, leaves no temp file, cleans up on failure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "w.safetensors");
    await writeFileAtomic(path, "old");
    await writeSafetensors(path, { x: { dtype: "U8", shape: [1], data: Uint8Array.of(5) } });
    assert.deepEqual((await readSafetensors(path)).tensors.x.data, Uint8Array.of(5));
    const names = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(names, ["w.safetensors"]);
    // Renaming a file over a non-empty directory fails: the temp file must not survive.
    const blocked = join(dir, "blocked");
    await Deno.mkdir(join(blocked, "inner"), { recursive: true });
    await assert.rejects(() => writeFileAtomic(blocked, "x"), /Cannot write file '.*blocked': /);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "blocked",
      "w.safetensors",
    ]);
    await assert.rejects(() => writeFileAtomic(join(dir, "no", "such", "f"), "x"), /Cannot write/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function python(...args: string[]): Promise<string> {
  const out = await new Deno.Command(PY, { args: [HELPER, ...args] }).output();
  const err = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, `python failed: ${err}`);
  return new TextDecoder().decode(out.stdout);
}

const havePython = (() => {
  try {
    return Deno.statSync(PY).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: havePython
    ? "safetensors: a file we write is read by a json+struct Python reader"
    : "safetensors: Python interop (skipped: /usr/bin/python3 not found)",
  ignore: !havePython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "ours.safetensors");
      await writeSafetensors(path, {
        w: { dtype: "F32", shape: [2, 2], data: Float32Array.from([0.25, -1.5, 1e-7, 3]) },
        n: { dtype: "I64", shape: [], data: BigInt64Array.of(123456789012n) },
        i: { dtype: "I32", shape: [2], data: Int32Array.of(-7, 9) },
        u: { dtype: "U8", shape: [3], data: Uint8Array.of(1, 2, 255) },
      }, { metadata: { format: "pt" } });
      const got = JSON.parse(await python("check", path));
      assert.equal(got.header_len % 8, 0);
      assert.deepEqual(got.metadata, { format: "pt" });
      assert.deepEqual(got.tensors.w, {
        dtype: "F32",
        shape: [2, 2],
        values: [...Float32Array.from([0.25, -1.5, 1e-7, 3])],
      });
      assert.deepEqual(got.tensors.n, { dtype: "I64", shape: [], values: [123456789012] });
      assert.deepEqual(got.tensors.i, { dtype: "I32", shape: [2], values: [-7, 9] });
      assert.deepEqual(got.tensors.u, { dtype: "U8", shape: [3], values: [1, 2, 255] });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: havePython
    ? "safetensors: a file written by a json+struct Python writer is read by us"
    : "safetensors: Python interop (skipped: /usr/bin/python3 not found)",
  ignore: !havePython,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      const path = join(dir, "py.safetensors");
      await python("write", path);
      const f = await readSafetensors(path);
      assert.deepEqual(f.metadata, { format: "pt", epoch: "7" });
      assert.deepEqual(f.tensors["layer1.0.conv1.weight"], {
        dtype: "F32",
        shape: [2, 3],
        data: Float32Array.from([0.5, -1.25, 3.0, 1e-8, -0.0, 65504.0]),
      });
      assert.deepEqual(f.tensors["bn1.num_batches_tracked"], {
        dtype: "I64",
        shape: [],
        data: BigInt64Array.of(9007199254740993n),
      });
      assert.deepEqual(f.tensors.ids.data, Int32Array.of(-(2 ** 31), -1, 0, 2 ** 31 - 1));
      assert.deepEqual(f.tensors.pixels, {
        dtype: "U8",
        shape: [2, 2],
        data: Uint8Array.of(0, 1, 254, 255),
      });
      assert.deepEqual(f.tensors.empty.shape, [0, 3]);
      assert.equal(f.tensors.empty.data.length, 0);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
