/**
 * stagedDeviceComm over the single communicator and the reference backend: storages go through
 * the host collective and come back unchanged in value (size 1), results land in the result
 * storage, and wrong dtypes, sizes or backends are refused. (The 2-rank case runs inside the
 * MPI collectives test: `staged device allreduce/allgather`.)
 */
import assert from "node:assert/strict";
import { createReferenceBackend } from "../../src/backend/reference/backend.ts";
import { CommError, createSingleComm, stagedDeviceComm } from "../../src/dist/mod.ts";

Deno.test("stagedDeviceComm: allreduce, allgather and broadcast of storages", () => {
  const backend = createReferenceBackend();
  const dc = stagedDeviceComm(createSingleComm(), backend);
  const x = backend.alloc("f32", 4);
  backend.upload(x, new Float32Array([1, 2, 3, 4.5]));
  dc.allreduce(x, "avg");
  assert.deepEqual([...backend.download(x)], [1, 2, 3, 4.5]);
  const all = backend.alloc("f32", 4);
  backend.fill(all, -1);
  dc.allgather(x, all);
  assert.deepEqual([...backend.download(all)], [1, 2, 3, 4.5]);
  const u = backend.alloc("u8", 3);
  backend.upload(u, new Uint8Array([5, 6, 7]));
  dc.broadcast(u, 0);
  assert.deepEqual([...backend.download(u)], [5, 6, 7]);
  for (const s of [x, all, u]) backend.free(s);
  assert.equal(backend.liveAllocations(), 0);
});

Deno.test("stagedDeviceComm refuses wrong dtypes, sizes and foreign storages", () => {
  const backend = createReferenceBackend();
  const dc = stagedDeviceComm(createSingleComm(), backend);
  const u = backend.alloc("u8", 2);
  assert.throws(() => dc.allreduce(u), /cannot allreduce a u8 storage/);
  const x = backend.alloc("f32", 2);
  const wrong = backend.alloc("f32", 3);
  assert.throws(() => dc.allgather(x, wrong), /needs a f32 result of 2 elements, got 3 × f32/);
  const other = createReferenceBackend().alloc("f32", 2);
  assert.throws(
    () => dc.allreduce(other),
    (e: unknown) => e instanceof CommError && /another backend/.test(e.message),
  );
});
