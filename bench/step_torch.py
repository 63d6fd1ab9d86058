"""PyTorch side of `bench/step.ts`: the same ReSSL training step, run on command.

usage: step_torch.py CONFIG_JSON

CONFIG_JSON: {"width", "inChannels", "size", "batch", "hidden", "out", "queue", "m", "tauS", "tauT",
"lr", "momentum", "weightDecay", "threads", "seed", "channelsLast"?}. Builds torchvision's ResNet-18
(CIFAR stem: 3x3/1 conv, no max-pool, no fc) with the projection head, a teacher copy, a K x D
queue, SGD (momentum, weight decay), random weak/strong batches; prints "ready". Then for each stdin line "run N" it runs
N steps (EMA update at the start, teacher forward on the weak view without gradient, student
forward/backward on the strong view, relation loss, SGD step, enqueue) and prints one JSON line
{"times": [seconds per step], "cpu": [process CPU seconds per step, all threads], "loss": last
loss}. "quit" exits. Float32, training-mode BatchNorm.
With "channelsLast": true both networks and both views are in torch.channels_last (NHWC) memory
format, the layout with which PyTorch 2.x runs oneDNN convolutions without per-layer reorders.
The first line on stderr names the versions (torch, oneDNN, threads).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
from ressl_torch import ProjectionNet  # noqa: E402


def onednn_version():
    """The oneDNN version PyTorch was built with (from torch.__config__.show())."""
    for line in torch.__config__.show().splitlines():
        if "MKL-DNN" in line or "oneDNN" in line:
            return line.split("v", 1)[-1].split()[0]
    return "none"


def Net(c):
    return ProjectionNet(c["width"], c["inChannels"], c["hidden"], c["out"])


def build_step(c):
    """The step function of configuration `c` (networks, queue, optimiser and batches inside)."""
    torch.set_num_threads(c["threads"])
    torch.manual_seed(c["seed"])
    fmt = torch.channels_last if c.get("channelsLast") else torch.contiguous_format
    student = Net(c).to(memory_format=fmt)
    teacher = Net(c).to(memory_format=fmt)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    queue = F.normalize(torch.randn(c["queue"], c["out"]), dim=1)
    ptr = 0
    opt = torch.optim.SGD(student.parameters(), lr=c["lr"], momentum=c["momentum"],
                          weight_decay=c["weightDecay"])
    shape = (c["batch"], c["inChannels"], c["size"], c["size"])
    weak = torch.randn(shape).contiguous(memory_format=fmt)
    strong = torch.randn(shape).contiguous(memory_format=fmt)
    m = c["m"]

    def step():
        nonlocal queue, ptr
        with torch.no_grad():
            for pt, ps in zip(teacher.parameters(), student.parameters()):
                pt.mul_(m).add_(ps.detach(), alpha=1 - m)
            k = teacher(weak)
        q = student(strong)
        logits_q = q @ queue.t() / c["tauS"]
        logits_k = k @ queue.t() / c["tauT"]
        loss = -(F.softmax(logits_k, dim=1) * F.log_softmax(logits_q, dim=1)).sum(1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        queue[ptr:ptr + k.shape[0]] = k
        ptr = (ptr + k.shape[0]) % queue.shape[0]
        return float(loss.detach())

    return step


def main():
    c = json.loads(sys.argv[1])
    step = build_step(c)
    print("torch %s (oneDNN %s), %d threads, channels_last %s" % (
        torch.__version__, onednn_version(), torch.get_num_threads(), bool(c.get("channelsLast"))),
        file=sys.stderr, flush=True)
    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        times, cpu, loss = [], [], float("nan")
        for _ in range(int(cmd[1])):
            t0, c0 = time.perf_counter(), time.process_time()
            loss = step()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(json.dumps({"times": times, "cpu": cpu, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
