/**
 * The metrics log: appended line by line; a torn last line (a kill during a write) is dropped and
 * reported, any other damaged line is refused naming the file and the line (or set aside
 * verbatim, when asked); truncation to a step is an atomic rewrite that also drops a torn line
 * and terminates the last line.
 */
import assert from "node:assert/strict";
import { MetricsLog, readMetrics, readMetricsFile, truncateMetrics } from "../../src/io/metrics.ts";

async function withLog(fn: (path: string, dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/metrics.jsonl`;
    const log = MetricsLog.open(path);
    for (let s = 1; s <= 5; s++) log.write({ kind: "step", step: s, epoch: 0, loss: 1 / s });
    log.write({ kind: "epoch", step: 5, epoch: 0, loss: 0.5 });
    log.close();
    await fn(path, dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("MetricsLog appends JSON lines, readMetrics drops a torn last line, truncate drops later steps", async () => {
  await withLog(async (path, dir) => {
    await Deno.writeTextFile(path, '{"kind":"step","st', { append: true });
    const file = readMetricsFile(path);
    assert.equal(file.records.length, 6);
    assert.deepEqual(file.torn, { line: 7, text: '{"kind":"step","st' });
    assert.equal(readMetrics(path)[2].loss, 1 / 3);
    const r = await truncateMetrics(path, 3);
    assert.deepEqual({ kept: r.kept, dropped: r.dropped, line: r.torn?.line }, {
      kept: 3,
      dropped: 3,
      line: 7,
    });
    assert.deepEqual(readMetrics(path).map((x) => x.step), [1, 2, 3]);
    assert.ok((await Deno.readTextFile(path)).endsWith("}\n"), "the torn line is gone");
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["metrics.jsonl"]);
  });
});

Deno.test("readMetrics refuses a damaged line before the last, naming the file and the line", async () => {
  await withLog(async (path) => {
    const lines = (await Deno.readTextFile(path)).split("\n");
    lines[2] = '{"kind":"step","step":3,"lo'; // damaged in the middle, not a crash's torn tail
    await Deno.writeTextFile(path, lines.join("\n"));
    const before = await Deno.readTextFile(path);
    assert.throws(
      () => readMetrics(path),
      (e: Error) =>
        e instanceof SyntaxError && e.message.includes(path) &&
        /line 3 is not JSON .*fix or delete that line/.test(e.message),
    );
    await assert.rejects(() => truncateMetrics(path, 2), /line 3 is not JSON/);
    assert.equal(await Deno.readTextFile(path), before, "a refused truncation changes nothing");
    // Set aside instead: the line goes, verbatim, to the side file before the log is rewritten.
    const aside = `${path}.damaged`;
    await Deno.writeTextFile(aside, "earlier"); // appended to, unterminated or not
    const r = await truncateMetrics(path, 4, { setAsideDamaged: aside });
    assert.deepEqual(r.setAside.map((d) => d.line), [3]);
    assert.deepEqual(readMetrics(path).map((x) => x.step), [1, 2, 4]);
    assert.deepEqual((await Deno.readTextFile(aside)).split("\n"), [
      "earlier",
      JSON.stringify({ line: 3, problem: "is not JSON", text: '{"kind":"step","step":3,"lo' }),
      "",
    ]);
    // JSON that is not a record is refused as well (a step is needed to truncate by it).
    await Deno.writeTextFile(path, '{"kind":"step","step":1}\n[1,2]\n{"kind":"step","step":2}\n');
    assert.throws(() => readMetrics(path), /line 2 is not a JSON object/);
    await Deno.writeTextFile(path, '{"kind":"step","step":"2"}\n{"kind":"step","step":3}\n');
    assert.throws(() => readMetrics(path), /line 1 has 'step' "2", expected an integer >= 0/);
  });
});

Deno.test("truncateMetrics terminates a last line cut before its newline, so appends stay lines", async () => {
  await withLog(async (path) => {
    const text = await Deno.readTextFile(path);
    await Deno.writeTextFile(path, text.slice(0, -1)); // the record is whole, its newline is not
    const file = readMetricsFile(path);
    assert.equal(file.records.length, 6);
    assert.equal(file.unterminated, true);
    assert.equal(file.torn, undefined);
    await truncateMetrics(path, 10);
    const log = MetricsLog.open(path);
    log.write({ kind: "step", step: 6, epoch: 1, loss: 0.1 });
    log.close();
    assert.deepEqual(readMetrics(path).map((r) => r.step), [1, 2, 3, 4, 5, 5, 6]);
  });
});

Deno.test("truncateMetrics leaves a missing log missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    assert.deepEqual(await truncateMetrics(`${dir}/metrics.jsonl`, 3), {
      kept: 0,
      dropped: 0,
      setAside: [],
    });
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
