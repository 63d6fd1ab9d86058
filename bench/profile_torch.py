"""PyTorch side of `bench/profile.ts`: the step of `bench/step_torch.py` with per-primitive logs.

usage: profile_torch.py CONFIG_JSON WARMUP STEPS

Runs WARMUP steps, prints "@@begin", runs STEPS steps, prints "@@end" and then "@@result" with the
step times and torch.profiler's per-operator self CPU time of the measured steps (aten ops:
convolutions, batch norm, optimiser, ...). Run it with ONEDNN_VERBOSE=1 to get oneDNN's
per-primitive lines (implementation and ms) between the markers.
"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from step_torch import build_step, onednn_version  # noqa: E402


def main():
    c = json.loads(sys.argv[1])
    warmup, steps = int(sys.argv[2]), int(sys.argv[3])
    step = build_step(c)
    for _ in range(warmup):
        step()
    ops = {}
    times = []
    use_profiler = os.environ.get("ONEDNN_VERBOSE", "0") in ("", "0")
    print("@@begin", flush=True)
    if use_profiler:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                t0 = time.perf_counter()
                step()
                times.append(time.perf_counter() - t0)
        for e in prof.key_averages():
            ops[e.key] = {"calls": e.count, "selfMs": e.self_cpu_time_total / 1000.0}
    else:
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
    sys.stdout.flush()
    print("@@end", flush=True)
    print("@@result " + json.dumps({"times": times, "ops": ops, "torch": torch.__version__,
                                    "onednn": onednn_version(),
                                    "channelsLast": bool(c.get("channelsLast"))}), flush=True)


if __name__ == "__main__":
    main()
