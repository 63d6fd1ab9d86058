/** Pieces of at most 2^31-1 elements, and polling that gives up at its deadline. */
import assert from "node:assert/strict";
import { chunkRanges } from "../../src/dist/mod.ts";
import { pollUntil } from "../../src/dist/poll.ts";

Deno.test("chunkRanges splits into pieces of at most maxCount, in order, covering all", () => {
  assert.deepEqual(chunkRanges(0, 5), []);
  assert.deepEqual(chunkRanges(5, 5), [[0, 5]]);
  assert.deepEqual(chunkRanges(11, 5), [[0, 5], [5, 5], [10, 1]]);
  assert.deepEqual(chunkRanges(10_000_000, 3_000_000).map(([, n]) => n), [
    3_000_000,
    3_000_000,
    3_000_000,
    1_000_000,
  ]);
  const big = chunkRanges(2 ** 32 + 3, 2 ** 31 - 1);
  assert.deepEqual(big, [[0, 2 ** 31 - 1], [2 ** 31 - 1, 2 ** 31 - 1], [2 ** 32 - 2, 5]]);
  assert.throws(() => chunkRanges(3, 0), /pieces of 0 elements/);
});

Deno.test("pollUntil returns true once the poll succeeds", () => {
  let n = 0;
  assert.equal(pollUntil(() => ++n === 50, { timeoutMs: 5000, spinMs: 1, sleepMs: 0.05 }), true);
  assert.equal(n, 50);
});

Deno.test("pollUntil gives up after its timeout, sleeping between polls once the spin is over", () => {
  let polls = 0;
  const t = performance.now();
  const ok = pollUntil(() => (polls++, false), { timeoutMs: 100, spinMs: 0, sleepMs: 1 });
  const ms = performance.now() - t;
  assert.equal(ok, false);
  assert.ok(ms >= 100, `returned after ${ms} ms`);
  // Spinning the whole 100 ms would poll about a million times; sleeping 1 ms allows about 100.
  assert.ok(polls < 1000, `${polls} polls`);
});

Deno.test("pollUntil propagates the poll's error", () => {
  assert.throws(
    () =>
      pollUntil(() => {
        throw new Error("MPI_Test failed");
      }, { timeoutMs: 10, spinMs: 1, sleepMs: 1 }),
    /MPI_Test failed/,
  );
});
