/**
 * Issue 14 cases 3 and 8: one trainer per run folder. The lock refuses a second holder (in this
 * process or another) naming the first's pid; it dies with a process killed by SIGKILL (the next
 * trainer takes the folder and reports the stale holder); release removes the lock file (and a
 * folder it created, when empty). Claiming a folder removes the temporaries a killed write left
 * of the trainer's own files, and nothing else.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { RUN_LOCK_NAME, RunFolderBusyError, RunLock } from "../../src/run/run_lock.ts";
import { claimRunFolder } from "../../src/run/run_folder.ts";

const LOCK = new URL("../../src/run/run_lock.ts", import.meta.url).href;

/** A child Deno process that takes the lock of `dir`, prints "locked", and waits. */
function holder(dir: string) {
  const code = `import { RunLock } from ${JSON.stringify(LOCK)};
const lock = await RunLock.acquire(${JSON.stringify(dir)});
console.log("locked");
await new Promise((r) => setTimeout(r, 60_000));
lock.release();`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const ready = (async () => {
    const reader = child.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    assert.match(new TextDecoder().decode(value), /locked/);
  })();
  return { child, ready };
}

Deno.test("RunLock: a second holder is refused naming the first; release frees and cleans", async () => {
  const base = await Deno.makeTempDir({ prefix: "ressl_lock_" });
  try {
    const dir = join(base, "run");
    const lock = await RunLock.acquire(dir);
    assert.ok(existsSync(dir) && existsSync(join(dir, RUN_LOCK_NAME)));
    assert.equal(lock.stale, undefined);
    const info = JSON.parse(Deno.readTextFileSync(join(dir, RUN_LOCK_NAME)));
    assert.equal(info.pid, Deno.pid);
    await assert.rejects(
      () => RunLock.acquire(dir),
      (e: Error) =>
        e instanceof RunFolderBusyError && e.holder?.pid === Deno.pid &&
        e.message.includes(
          `Cannot use run folder '${dir}': another trainer is using it (pid ${Deno.pid} on host `,
        ) &&
        /another run folder \(--out\)/.test(e.message),
    );
    lock.release();
    lock.release(); // twice is fine
    assert.ok(!existsSync(dir), "the folder the lock created is removed when left empty");

    await Deno.writeTextFile(dir, "a file");
    await assert.rejects(
      () => RunLock.acquire(dir),
      /run folder '.*run': it is a file, not a folder/,
    );
    await Deno.remove(dir);
    if (Deno.uid() !== 0) { // root writes anywhere
      await Deno.mkdir(dir, { mode: 0o500 });
      await assert.rejects(() => RunLock.acquire(dir), /Cannot lock run folder '.*run': .*denied/i);
      await Deno.remove(dir);
    }
    await Deno.mkdir(dir);
    const again = await RunLock.acquire(dir);
    await Deno.writeTextFile(join(dir, "metrics.jsonl"), "");
    again.release();
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["metrics.jsonl"]);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("RunLock: another process's lock refuses us; after its SIGKILL the lock is free and stale", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_lock_" });
  const { child, ready } = holder(dir);
  try {
    await ready;
    await assert.rejects(
      () => RunLock.acquire(dir),
      (e: Error) => e instanceof RunFolderBusyError && e.message.includes(`pid ${child.pid} on`),
    );
    child.kill("SIGKILL");
    const status = await child.status;
    assert.equal(status.signal, "SIGKILL");
    const lock = await RunLock.acquire(dir);
    assert.equal(lock.stale?.pid, child.pid, "the killed holder is reported as stale");
    lock.release();
  } finally {
    try {
      child.kill("SIGKILL");
    } catch {
      // already ended
    }
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("claimRunFolder removes the trainer's stale temporaries only, and says so", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ressl_claim_" });
  try {
    const files = {
      ".checkpoint-000000012.safetensors.398172.tmp": "torn checkpoint",
      ".metrics.jsonl.1.tmp": "torn",
      ".config.json.77.tmp": "{",
      ".curves.svg.5.tmp": "another writer's", // plot: not the trainer's
      ".checkpoint-000000012.safetensors.tmp": "not a temporary of writeFileAtomic",
      "checkpoint-000000006.safetensors": "kept",
    };
    for (const [name, text] of Object.entries(files)) {
      await Deno.writeTextFile(join(dir, name), text);
    }
    await Deno.writeTextFile(
      join(dir, RUN_LOCK_NAME),
      JSON.stringify({ pid: 4242, hostname: "h", started: "t", command: "train" }),
    );
    const claim = await claimRunFolder(dir);
    try {
      assert.deepEqual(claim.removedTemporaries, [
        ".checkpoint-000000012.safetensors.398172.tmp",
        ".config.json.77.tmp",
        ".metrics.jsonl.1.tmp",
      ]);
      assert.equal(claim.staleHolder?.pid, 4242);
      assert.match(claim.messages.join("\n"), /previous trainer \(pid 4242 on host h/);
      assert.match(
        claim.messages.join("\n"),
        /removed 3 temporary file\(s\) of an interrupted write/,
      );
      await assert.rejects(() => claimRunFolder(dir), RunFolderBusyError);
    } finally {
      claim.release();
    }
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      ".checkpoint-000000012.safetensors.tmp",
      ".curves.svg.5.tmp",
      "checkpoint-000000006.safetensors",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
