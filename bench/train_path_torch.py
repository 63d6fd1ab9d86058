"""PyTorch side of `bench/train_path.ts`: PyTorch's training path for the fashion-mnist recipe.

usage: train_path_torch.py --width W --batch-size B --limit N --warmup S0 --steps S [--threads 2]
                           [--workers 1] [--channels-last]

The training loop of `bench/fmnist_torch.py train` (the same recipe as `deno task train --preset
fashion-mnist`: torchvision v1 transforms of both views in a DataLoader with `--workers` worker
processes, EMA, teacher forward, student forward/backward, relation loss against a 4096 queue, SGD
with the warm-up/cosine lr, enqueue, `loss.item()` every step) on the first `--limit` Fashion-MNIST
training images, run for `--warmup` + `--steps` steps. Prints one JSON line: the seconds of each
measured step (wall time from the end of the previous step, so waiting for the loader counts),
the last loss and the versions. No checkpoints, no evaluation.
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fmnist_torch import Net, TwoViews, load_split, lr_at  # noqa: E402
from step_torch import onednn_version  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--width", type=int, required=True)
    p.add_argument("--batch-size", type=int, required=True)
    p.add_argument("--limit", type=int, required=True)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    images, _ = load_split("train", a.limit)
    spe = len(images) // a.batch_size
    if spe < a.warmup + a.steps:
        raise SystemExit("train_path_torch: --limit %d gives %d batches of %d, fewer than %d steps"
                         % (a.limit, spe, a.batch_size, a.warmup + a.steps))
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    student = Net(a.width).to(memory_format=fmt)
    teacher = Net(a.width).to(memory_format=fmt)
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    queue = F.normalize(torch.randn(4096, 128), dim=1)
    ptr = 0
    opt = torch.optim.SGD(student.parameters(), lr=0.0, momentum=0.9, weight_decay=5e-4)
    base_lr = 0.06 * a.batch_size / 256
    total = 200 * spe
    gen = torch.Generator().manual_seed(a.seed * 100003)
    loader = torch.utils.data.DataLoader(TwoViews(images), batch_size=a.batch_size, shuffle=True,
                                         drop_last=True, num_workers=a.workers, generator=gen)
    m, tau_s, tau_t = 0.99, 0.1, 0.04
    times, value, step = [], float("nan"), 0
    t_prev = time.perf_counter()
    for weak, strong in loader:
        weak = weak.contiguous(memory_format=fmt)
        strong = strong.contiguous(memory_format=fmt)
        with torch.no_grad():
            for ps, pt in zip(student.parameters(), teacher.parameters()):
                pt.mul_(m).add_(ps.detach(), alpha=1 - m)
            k = teacher(weak)
        q = student(strong)
        loss = -torch.sum(F.softmax(k @ queue.t() / tau_t, dim=1)
                          * F.log_softmax(q @ queue.t() / tau_s, dim=1), dim=1).mean()
        opt.zero_grad()
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = lr_at(step, base_lr, spe, total)
        opt.step()
        queue[ptr:ptr + len(k)] = k
        ptr = (ptr + len(k)) % len(queue)
        value = loss.item()
        step += 1
        now = time.perf_counter()
        if step > a.warmup:
            times.append(now - t_prev)
        t_prev = now
        if step >= a.warmup + a.steps:
            break
    print(json.dumps({"times": times, "loss": value, "torch": torch.__version__,
                      "onednn": onednn_version(), "threads": torch.get_num_threads(),
                      "channelsLast": a.channels_last, "workers": a.workers}), flush=True)


if __name__ == "__main__":
    main()
