/**
 * End to end through the real `train` command on a small subset of the real Fashion-MNIST: an
 * uninterrupted run, a run killed with SIGKILL in the middle and resumed (same per-step losses),
 * SIGTERM (checkpoint then exit), bad flags and a corrupt checkpoint; the kNN monitor under
 * --limit with images/s of training steps only.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readMetrics } from "../../src/io/metrics.ts";
import { listCheckpoints } from "../../src/io/checkpoint.ts";

const FMNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz";
const haveData = existsSync(FMNIST);
const dnnl = ["/usr/lib/x86_64-linux-gnu/libdnnl.so.2", "/usr/lib/libdnnl.so.2"].some(existsSync);
const device = dnnl ? "cpu" : "reference";
const TRAIN = new URL("../../tasks/train.ts", import.meta.url).pathname;

/** Flags of a tiny run: 3 epochs of 6 steps of 32 images, width 4, one loss line per step. */
function flags(out: string, config: string): string[] {
  return [
    "--width",
    "4",
    "--batch-size",
    "32",
    "--limit",
    "192",
    "--epochs",
    "3",
    "--workers",
    "0",
    "--device",
    device,
    "--threads",
    "1",
    "--config",
    config,
    "--out",
    out,
    "--plain",
  ];
}

function train(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", TRAIN, ...args],
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(args: string[]) {
  const out = await train(args).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return { code: out.code, text };
}

function stepLosses(dir: string): Map<number, number> {
  const m = new Map<number, number>();
  for (const r of readMetrics(`${dir}/metrics.jsonl`)) {
    if (r.kind === "step") m.set(r.step, r.loss as number);
  }
  return m;
}

Deno.test({
  name: haveData
    ? "train: a run killed with SIGKILL and resumed reproduces the uninterrupted losses"
    : "train: kill/resume e2e (skipped: Fashion-MNIST not installed, apt-get install dataset-fashion-mnist)",
  ignore: !haveData,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_e2e_" });
    try {
      const config = `${dir}/tiny.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({ logEvery: 1, ressl: { queueSize: 256 }, head: { hidden: 64, out: 32 } }),
      );
      const full = await run(flags(`${dir}/full`, config));
      assert.equal(full.code, 0, full.text);
      const reference = stepLosses(`${dir}/full`);
      assert.equal(reference.size, 18);
      for (const l of reference.values()) assert.ok(Number.isFinite(l) && l > 0);
      assert.equal(listCheckpoints(`${dir}/full`).length, 3);

      // Start again, kill -9 once the first epoch's checkpoint exists and a few steps more ran.
      const part = `${dir}/part`;
      const child = train(flags(part, config)).spawn();
      const deadline = Date.now() + 120_000;
      for (;;) {
        await new Promise((r) => setTimeout(r, 50));
        const steps = existsSync(`${part}/metrics.jsonl`) ? stepLosses(part).size : 0;
        if (listCheckpoints(part).length >= 1 && steps >= 8) break;
        assert.ok(Date.now() < deadline, "the run to be killed made no progress");
      }
      child.kill("SIGKILL");
      const status = await child.output();
      assert.equal(status.signal, "SIGKILL");
      const killedAt = stepLosses(part).size;
      assert.ok(killedAt < 18, `the run finished (${killedAt} steps) before it could be killed`);

      const resumed = await run([...flags(part, config), "--resume"]);
      assert.equal(resumed.code, 0, resumed.text);
      assert.match(resumed.text, /resumed from .*checkpoint-\d+\.safetensors at step \d+/);
      const again = stepLosses(part);
      assert.deepEqual([...again.keys()].sort((a, b) => a - b), [...reference.keys()]);
      for (const [step, loss] of reference) {
        assert.equal(again.get(step), loss, `step ${step}: resumed ${again.get(step)} vs ${loss}`);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: haveData
    ? "train: SIGTERM writes a checkpoint at the current step; bad flags and corrupt checkpoints fail clearly"
    : "train: signal and error e2e (skipped: Fashion-MNIST not installed)",
  ignore: !haveData,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_e2e_" });
    try {
      const config = `${dir}/tiny.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({ logEvery: 1, ressl: { queueSize: 256 }, head: { hidden: 64, out: 32 } }),
      );
      const out = `${dir}/sig`;
      const child = train(flags(out, config)).spawn();
      const deadline = Date.now() + 120_000;
      while (!(existsSync(`${out}/metrics.jsonl`) && stepLosses(out).size >= 2)) {
        await new Promise((r) => setTimeout(r, 50));
        assert.ok(Date.now() < deadline, "the run made no progress");
      }
      child.kill("SIGTERM");
      const res = await child.output();
      assert.equal(res.code, 0, new TextDecoder().decode(res.stderr));
      const ckpts = listCheckpoints(out);
      assert.ok(ckpts.length >= 1, "no checkpoint after SIGTERM");
      const last = Math.max(...stepLosses(out).keys());
      assert.ok(ckpts.at(-1)!.endsWith(`checkpoint-${String(last).padStart(9, "0")}.safetensors`));

      const bad = await run(["--epochs", "zero"]);
      assert.equal(bad.code, 2);
      assert.match(bad.text, /Invalid flag --epochs/);
      const unknown = await run(["--frobnicate"]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.text, /frobnicate/);

      const corrupt = `${dir}/corrupt.safetensors`;
      const bytes = await Deno.readFile(ckpts.at(-1)!);
      await Deno.writeFile(corrupt, bytes.subarray(0, bytes.length - 100));
      const resumed = await run([...flags(`${dir}/other`, config), "--resume", corrupt]);
      assert.equal(resumed.code, 1);
      assert.match(resumed.text, /corrupt\.safetensors/);
      const fresh = await run(flags(out, config));
      assert.equal(fresh.code, 1);
      assert.match(fresh.text, /already holds checkpoints/);

      // One step per epoch, lr 0 at step 0 (warm-up), then an absurd lr: the loss turns NaN.
      const nanDir = `${dir}/nan`;
      const nanArgs = ["--limit", "32", "--epochs", "40", "--lr", "1e30"];
      const nan = await run([...flags(nanDir, config), ...nanArgs]);
      assert.equal(nan.code, 3, nan.text);
      const m = nan.text.match(
        /the loss became NaN at step (\d+); the last good checkpoint is '(.*?)'/,
      );
      assert.ok(m, nan.text);
      const kept = listCheckpoints(nanDir);
      assert.equal(kept.at(-1), m[2]);
      assert.ok(kept.every((p) => Number(p.match(/(\d+)\.safetensors$/)![1]) < Number(m[1])));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: haveData
    ? "train: --limit bounds the kNN monitor too; images/s count training steps only; header says 1 epoch"
    : "train: kNN monitor e2e (skipped: Fashion-MNIST not installed)",
  ignore: !haveData,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "ressl_e2e_" });
    try {
      const config = `${dir}/tiny.json`;
      await Deno.writeTextFile(
        config,
        JSON.stringify({ logEvery: 1, ressl: { queueSize: 256 }, head: { hidden: 64, out: 32 } }),
      );
      const out = `${dir}/knn`;
      const args = flags(out, config).map((a) => (a === "3" ? "1" : a)); // --epochs 1
      const r = await run([...args, "--knn-every", "1"]);
      assert.equal(r.code, 0, r.text);
      assert.match(r.text, /1 epoch = 6 steps \(warm-up 3\)/);
      assert.doesNotMatch(r.text, /1 epochs|N\/A/);
      assert.match(r.text, /kNN monitor every 1 epoch \(192 voting, 192 test images\)/);
      assert.match(r.text, /epoch 1: kNN top-1 \d+\.\d\d% top-5 \d+\.\d\d% \(192 test images/);
      const m = r.text.match(
        /done: 6 steps \(6 in ([\d.]+) s, of which training ([\d.]+) s at ([\d.]+) images\/s\)/,
      );
      assert.ok(m, r.text);
      const [wall, train, ips] = [Number(m[1]), Number(m[2]), Number(m[3])];
      assert.ok(train < wall, "the kNN monitor and checkpoint are not training time");
      // the seconds are printed to 0.1: images/s must be 192 images over them
      const [lo, hi] = [(6 * 32) / (train + 0.051), (6 * 32) / Math.max(train - 0.051, 1e-3)];
      assert.ok(ips >= lo * 0.999 && ips <= hi * 1.001, `${ips} not in [${lo}, ${hi}]`);
      const epoch = readMetrics(`${out}/metrics.jsonl`).find((x) => x.kind === "epoch")!;
      assert.ok(typeof epoch.knnTop1 === "number" && typeof epoch.knnSeconds === "number");
      assert.ok(existsSync(`${out}/curves.png`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
