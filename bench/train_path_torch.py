"""PyTorch side of `bench/train_path.ts`: PyTorch's training path for the fashion-mnist recipe, or
for the cifar10 recipe on CIFAR-10 binary files.

usage: train_path_torch.py --width W --batch-size B --limit N --warmup S0 --steps S [--threads 2]
                           [--workers 1] [--channels-last] [--cifar DIR --config JSON]

The training loop of `bench/fmnist_torch.py train` (the same recipe as `deno task train --preset
fashion-mnist`: torchvision v1 transforms of both views in a DataLoader with `--workers` worker
processes, EMA, teacher forward, student forward/backward, relation loss against a 4096 queue, SGD
with the warm-up/cosine lr, enqueue, `loss.item()` every step) on the first `--limit` Fashion-MNIST
training images, run for `--warmup` + `--steps` steps. Prints one JSON line: the seconds of each
measured step (wall time from the end of the previous step, so waiting for the loader counts),
the last loss and the versions. No checkpoints, no evaluation.

With `--cifar DIR` (a folder holding `cifar-10-batches-bin/`, or that folder) the same loop trains
on the first `--limit` records of its `data_batch_*.bin` files (uint8 [N, 3, 32, 32]) with the
configuration `--config` (JSON, `bench/train_path_inputs.ts` torchCaseConfig: width, inChannels,
size, hidden, out, queue, m, tauS, tauT, lr, momentum, weightDecay, epochs, scaleLr, mean, std) and
the views of our cifar10 preset (src/data/pipelines.ts), torchvision v1 transforms on float tensors:
weak = RandomResizedCrop(size, (0.2, 1), (3/4, 4/3), bilinear, antialias) + flip + Normalize;
strong = the same crop + flip + RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1), 0.8) +
RandomGrayscale(0.2) + RandomApply(GaussianBlur(k, (0.1, 2)), 0.5) + Normalize, k = SimCLR's rule
(3 at 32). Network: ProjectionNet(width, inChannels, hidden, out) (py/ressl_torch.py).
"""
import argparse
import json
import os
import sys
import time

import torch
import torch.nn.functional as F
from torchvision import transforms as T

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
from fmnist_torch import Net, TwoViews, load_split, lr_at  # noqa: E402
from ressl_torch import ProjectionNet  # noqa: E402
from step_torch import onednn_version  # noqa: E402

CIFAR_RECORD = 1 + 3 * 32 * 32
CONFIG_KEYS = ("width", "inChannels", "size", "hidden", "out", "queue", "m", "tauS", "tauT", "lr",
               "momentum", "weightDecay", "epochs", "scaleLr", "mean", "std")


def read_cifar10(root, limit):
    """The first `limit` training images of CIFAR-10's binary files, uint8 [N, 3, 32, 32]."""
    sub = os.path.join(root, "cifar-10-batches-bin")
    folder = sub if os.path.isdir(sub) else root
    parts, have = [], 0
    for k in range(1, 6):
        if have >= limit:
            break
        path = os.path.join(folder, "data_batch_%d.bin" % k)
        if not os.path.exists(path):
            raise SystemExit("train_path_torch: --cifar %s: '%s' is missing" % (root, path))
        with open(path, "rb") as f:
            raw = f.read()
        if len(raw) == 0 or len(raw) % CIFAR_RECORD:
            raise SystemExit("train_path_torch: --cifar %s: '%s' has %d bytes, not whole records "
                             "of %d" % (root, path, len(raw), CIFAR_RECORD))
        records = torch.frombuffer(bytearray(raw), dtype=torch.uint8).view(-1, CIFAR_RECORD)
        take = records[:limit - have, 1:].reshape(-1, 3, 32, 32)
        parts.append(take)
        have += len(take)
    return torch.cat(parts).clone()


def cifar_views(size, mean, std):
    """Weak and strong views of our cifar10 preset (see the module doc)."""
    crop = T.RandomResizedCrop(size, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                               interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    norm = T.Normalize(tuple(mean), tuple(std))
    blur = 2 * (int(0.1 * size) // 2) + 1
    weak = T.Compose([crop, T.RandomHorizontalFlip(), norm])
    strong = T.Compose([
        crop, T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        T.RandomGrayscale(p=0.2),
        T.RandomApply([T.GaussianBlur(blur, sigma=(0.1, 2.0))], p=0.5),
        norm,
    ])
    return weak, strong


class CifarTwoViews(torch.utils.data.Dataset):
    """Weak and strong views of uint8 [N, 3, H, W] images, as float tensors in [0, 1]."""

    def __init__(self, images, size, mean, std):
        self.images = images
        self.weak, self.strong = cifar_views(size, mean, std)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0
        return self.weak(x), self.strong(x)


def cifar_recipe(a):
    """(dataset, network factory, queue rows, out dim, m, tau_s, tau_t, momentum, weight decay,
    base lr, epochs) of `--cifar` / `--config`."""
    c = json.loads(a.config)
    missing = [k for k in CONFIG_KEYS if k not in c]
    if missing:
        raise SystemExit("train_path_torch: --config lacks %s" % ", ".join(missing))
    if c["width"] != a.width:
        raise SystemExit("train_path_torch: --config width %d differs from --width %d"
                         % (c["width"], a.width))
    images = read_cifar10(a.cifar, a.limit)
    data = CifarTwoViews(images, c["size"], c["mean"], c["std"])
    base_lr = c["lr"] * a.batch_size / 256 if c["scaleLr"] else c["lr"]
    return (data, lambda: ProjectionNet(c["width"], c["inChannels"], c["hidden"], c["out"]),
            c["queue"], c["out"], c["m"], c["tauS"], c["tauT"], c["momentum"], c["weightDecay"],
            base_lr, c["epochs"])


def fmnist_recipe(a):
    """The same tuple for the fashion-mnist recipe (its constants)."""
    images, _ = load_split("train", a.limit)
    return (TwoViews(images), lambda: Net(a.width), 4096, 128, 0.99, 0.1, 0.04, 0.9, 5e-4,
            0.06 * a.batch_size / 256, 200)


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
    p.add_argument("--cifar", help="CIFAR-10 binary folder (needs --config)")
    p.add_argument("--config", help="the case's configuration as JSON (with --cifar)")
    a = p.parse_args()
    if (a.cifar is None) != (a.config is None):
        raise SystemExit("train_path_torch: --cifar and --config go together")
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    (data, make_net, queue_rows, out_dim, m, tau_s, tau_t, momentum, weight_decay, base_lr,
     epochs) = cifar_recipe(a) if a.cifar else fmnist_recipe(a)
    spe = len(data) // a.batch_size
    if spe < a.warmup + a.steps:
        raise SystemExit("train_path_torch: --limit %d gives %d batches of %d, fewer than %d steps"
                         % (a.limit, spe, a.batch_size, a.warmup + a.steps))
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    student = make_net().to(memory_format=fmt)
    teacher = make_net().to(memory_format=fmt)
    teacher.load_state_dict(student.state_dict())
    for q in teacher.parameters():
        q.requires_grad = False
    queue = F.normalize(torch.randn(queue_rows, out_dim), dim=1)
    ptr = 0
    opt = torch.optim.SGD(student.parameters(), lr=0.0, momentum=momentum,
                          weight_decay=weight_decay)
    total = epochs * spe
    gen = torch.Generator().manual_seed(a.seed * 100003)
    loader = torch.utils.data.DataLoader(data, batch_size=a.batch_size, shuffle=True,
                                         drop_last=True, num_workers=a.workers, generator=gen)
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
