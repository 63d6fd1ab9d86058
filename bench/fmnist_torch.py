"""PyTorch side of `deno task bench:fmnist` (issue 7): the fashion-mnist ReSSL recipe in plain PyTorch,
the shared linear-probe / kNN evaluation, and the cheap baselines. Run with /usr/bin/python3 (PyTorch 1.13,
torchvision 0.14).

Sub-commands:
  train      pretrain (same recipe as `deno task train --preset fashion-mnist`), then evaluate
             (kNN k=200 T=0.1 + linear probe on cached features). Writes into --out:
             metrics.jsonl (same record kinds as ours), backbone.pt (student backbone state_dict),
             checkpoint.pt (per epoch, for --resume), features.safetensors, result.json.
  probe      evaluate given features (a safetensors file with train, test, train_labels, test_labels):
             weighted kNN + the linear probe. Used on OUR exported features, so the probe is the same
             code for both implementations.
  baselines  kNN on raw pixels, kNN of a randomly initialised encoder (torchvision init, eval-mode BN with
             the initial running stats 0/1), logistic regression on raw pixels (the linear-probe routine).

The recipe (RESSL_SPEC.md §4-§6, this project's fashion-mnist preset): ResNet-18 BasicBlock layout with base
width W, CIFAR stem (3x3/1, no max-pool), 1 input channel; head Linear(8W, 2048)-ReLU-Linear(2048, 128);
torchvision default inits; teacher = copy of student; queue 4096 x 128 Gaussian rows L2-normalised; each
step: EMA (m = 0.99, constant) of the parameters, teacher forward on the weak view in training-mode BN
(its own running stats), student forward/backward on the strong view, loss
H(softmax(k Q^T / 0.04), softmax(q Q^T / 0.1)), SGD (momentum 0.9, wd 5e-4, lr 0.06 * B / 256) with
linear warm-up from 0 over min(5 epochs, floor(2.5 % of all steps)) then per-iteration cosine to 0,
then enqueue k. Views with torchvision v1 transforms on float tensors in [0, 1]:
weak = RandomResizedCrop(28, (0.2, 1), (3/4, 4/3)) + flip; strong = the same + RandomApply(ColorJitter(0.4,
0.4), 0.8) + RandomApply(GaussianBlur(3, (0.1, 2)), 0.5); both then Normalize(0.2860, 0.3530).

Linear probe (identical for every row of the table, on cached features without augmentation; the paper's
100 epochs with augmentation would be too slow on 2 cores): Linear(D, 10) with weight ~ N(0, 0.01), bias 0;
SGD nesterov momentum 0.9, no weight decay, batch 256, 100 epochs, lr 0.2 * (1 + cos(pi t / T)) / 2 per
iteration; shuffling from a fixed generator (seed 0). Reports the last epoch's test top-1 (and the best).
"""
import argparse
import gzip
import json
import math
import os
import platform
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision import transforms as T

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "py"))
from ressl_torch import ProjectionNet  # noqa: E402

DATA_DIR = "/usr/share/datasets/fashion-mnist"
MEAN, STD = 0.2860, 0.3530


# ----------------------------------------------------------------------------------------------- io

def write_atomic(path, data):
    """Writes bytes or str to `path` through a temporary file + rename."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def write_json(path, obj):
    write_atomic(path, json.dumps(obj, indent=2) + "\n")


def torch_save_atomic(obj, path):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    torch.save(obj, tmp)
    os.replace(tmp, path)


ST_DTYPES = {"F32": torch.float32, "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8}


def read_safetensors(path):
    """Reads a safetensors file into a dict of tensors (F32/I32/I64/U8 only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in ST_DTYPES:
            raise SystemExit("Cannot read '%s': tensor '%s' has dtype %s" % (path, name, e["dtype"]))
        b, end = e["data_offsets"]
        buf = bytearray(raw[base + b:base + end])
        t = torch.frombuffer(buf, dtype=ST_DTYPES[e["dtype"]]) if end > b else torch.empty(0)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def write_safetensors(path, tensors):
    """Writes a dict of contiguous F32/I32 tensors as safetensors (atomically)."""
    names = {torch.float32: "F32", torch.int32: "I32", torch.int64: "I64", torch.uint8: "U8"}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    write_atomic(path, struct.pack("<Q", len(h)) + h + b"".join(blobs))


def read_idx(name, limit=None):
    """Fashion-MNIST images (uint8 [N, 1, 28, 28]) or labels (int64 [N]) from the Debian files."""
    path = os.path.join(DATA_DIR, name)
    if not os.path.exists(path):
        raise SystemExit("Cannot read Fashion-MNIST: '%s' is missing (Debian dataset-fashion-mnist)" % path)
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = struct.unpack(">I", raw[:4])[0]
    if magic == 2051:
        n, h, w = struct.unpack(">III", raw[4:16])
        x = torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).reshape(n, 1, h, w)
    elif magic == 2049:
        x = torch.frombuffer(bytearray(raw[8:]), dtype=torch.uint8).long()
    else:
        raise SystemExit("Cannot read '%s': bad IDX magic %d" % (path, magic))
    return x[:limit] if limit else x


def load_split(split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    return (read_idx("%s-images-idx3-ubyte.gz" % prefix, limit),
            read_idx("%s-labels-idx1-ubyte.gz" % prefix, limit))


def normalize_images(x):
    """uint8 [N, 1, 28, 28] -> the network input (ToTensor + Normalize), float32."""
    return (x.float() / 255.0 - MEAN) / STD


# ----------------------------------------------------------------------------------------------- model

def Net(width, hidden=2048, dim=128):
    """ResNet-18 (width, CIFAR stem, 1 channel, torchvision init) + projection head (py/ressl_torch.py)."""
    return ProjectionNet(width, 1, hidden, dim)


# ----------------------------------------------------------------------------------------------- data

def views():
    crop = T.RandomResizedCrop(28, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3),
                               interpolation=T.InterpolationMode.BILINEAR, antialias=True)
    norm = T.Normalize((MEAN,), (STD,))
    weak = T.Compose([crop, T.RandomHorizontalFlip(), norm])
    strong = T.Compose([
        crop, T.RandomHorizontalFlip(),
        T.RandomApply([T.ColorJitter(brightness=0.4, contrast=0.4)], p=0.8),
        T.RandomApply([T.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5),
        norm,
    ])
    return weak, strong


class TwoViews(torch.utils.data.Dataset):
    def __init__(self, images):
        self.images = images
        self.weak, self.strong = views()

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i].float() / 255.0
        return self.weak(x), self.strong(x)


# ----------------------------------------------------------------------------------------------- schedule

def warmup_steps(steps_per_epoch, total, warmup_epochs=5, fraction=0.025):
    return min(int(warmup_epochs * steps_per_epoch), int(math.floor(total * fraction + 1e-9)), total)


def lr_at(step, base, steps_per_epoch, total):
    """src/optim/schedule.ts warmupCosineLr: linear from 0 over the warm-up, then cosine to 0."""
    warm = warmup_steps(steps_per_epoch, total)
    if step < warm:
        return base * step / warm
    if step >= total:
        return 0.0
    return 0.5 * base * (1 + math.cos(math.pi * (step - warm) / (total - warm)))


# ----------------------------------------------------------------------------------------------- eval

@torch.no_grad()
def extract(backbone, images, batch=512):
    """Un-normalised pooled features of uint8 images, eval-mode BN, no augmentation."""
    backbone.eval()
    out = [backbone(normalize_images(images[i:i + batch])) for i in range(0, len(images), batch)]
    return torch.cat(out)


@torch.no_grad()
def knn_top1(train_f, train_y, test_f, test_y, k=200, t=0.1, classes=10, chunk=256):
    """Weighted kNN (MoCo CIFAR demo / InstDisc) on L2-normalised features: top-1 in %."""
    train_f = F.normalize(train_f.float(), dim=1)
    test_f = F.normalize(test_f.float(), dim=1)
    k = min(k, len(train_f))
    correct = 0
    for s in range(0, len(test_f), chunk):
        sim = test_f[s:s + chunk] @ train_f.t()
        w, idx = sim.topk(k, dim=1)
        votes = torch.zeros(len(w), classes).scatter_add_(1, train_y[idx], (w / t).exp())
        correct += (votes.argmax(1) == test_y[s:s + chunk]).sum().item()
    return 100.0 * correct / len(test_f)


PROBE = {"epochs": 100, "batch": 256, "lr": 0.2, "momentum": 0.9, "nesterov": True,
         "weight_decay": 0.0, "init_std": 0.01, "schedule": "cosine per iteration", "seed": 0,
         "augmentation": "none (cached features)"}


def linear_probe(train_x, train_y, test_x, test_y, classes=10, epochs=None):
    """The shared linear probe (see the module doc). Returns final/best test top-1 and the curve."""
    epochs = epochs or PROBE["epochs"]
    gen = torch.Generator().manual_seed(PROBE["seed"])
    torch.manual_seed(PROBE["seed"])
    lin = nn.Linear(train_x.shape[1], classes)
    nn.init.normal_(lin.weight, 0.0, PROBE["init_std"])
    nn.init.zeros_(lin.bias)
    opt = torch.optim.SGD(lin.parameters(), lr=PROBE["lr"], momentum=PROBE["momentum"],
                          nesterov=PROBE["nesterov"], weight_decay=PROBE["weight_decay"])
    n, b = len(train_x), PROBE["batch"]
    per_epoch = (n + b - 1) // b
    total, step, curve = epochs * per_epoch, 0, []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, b):
            for g in opt.param_groups:
                g["lr"] = 0.5 * PROBE["lr"] * (1 + math.cos(math.pi * step / total))
            i = perm[s:s + b]
            loss = F.cross_entropy(lin(train_x[i]), train_y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
        with torch.no_grad():
            curve.append(100.0 * (lin(test_x).argmax(1) == test_y).float().mean().item())
    return {"top1": curve[-1], "best": max(curve), "bestEpoch": 1 + curve.index(max(curve)),
            "curve": curve, "protocol": dict(PROBE, epochs=epochs)}


def evaluate_features(train_f, train_y, test_f, test_y, probe_epochs=None):
    t0 = time.time()
    knn = knn_top1(train_f, train_y, test_f, test_y)
    probe = linear_probe(train_f.float(), train_y, test_f.float(), test_y, epochs=probe_epochs)
    return {"knnTop1": knn, "probe": probe, "evalSeconds": time.time() - t0}


# ----------------------------------------------------------------------------------------------- train

def versions():
    import torchvision
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version(), "threads": torch.get_num_threads()}


def cmd_train(a):
    os.makedirs(a.out, exist_ok=True)
    torch.set_num_threads(a.threads)
    result_path = os.path.join(a.out, "result.json")
    if a.reuse and os.path.exists(result_path):
        print("torch: reusing %s" % result_path)
        return
    torch.manual_seed(a.seed)
    images, _ = load_split("train", a.limit)
    n = len(images)
    spe = n // a.batch_size
    if spe == 0:
        raise SystemExit("Cannot train: %d images make no full batch of %d" % (n, a.batch_size))
    total = a.epochs * spe
    base_lr = 0.06 * a.batch_size / 256
    student = Net(a.width)
    teacher = Net(a.width)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    queue = F.normalize(torch.randn(4096, 128), dim=1)
    ptr, start_epoch, done_seconds = 0, 0, 0.0
    opt = torch.optim.SGD(student.parameters(), lr=0.0, momentum=0.9, weight_decay=5e-4)
    ckpt_path = os.path.join(a.out, "checkpoint.pt")
    metrics_path = os.path.join(a.out, "metrics.jsonl")
    if a.reuse and os.path.exists(ckpt_path):
        c = torch.load(ckpt_path)
        student.load_state_dict(c["student"])
        teacher.load_state_dict(c["teacher"])
        opt.load_state_dict(c["opt"])
        queue, ptr, start_epoch, done_seconds = c["queue"], c["ptr"], c["epoch"], c["seconds"]
        torch.set_rng_state(c["rng"])
        print("torch: resumed from %s at epoch %d" % (ckpt_path, start_epoch))
        keep = [l for l in open(metrics_path) if json.loads(l)["step"] <= start_epoch * spe] \
            if os.path.exists(metrics_path) else []
        write_atomic(metrics_path, "".join(keep))
    elif os.path.exists(metrics_path):
        os.remove(metrics_path)
    log = open(metrics_path, "a")
    data = TwoViews(images)
    print("torch: ResNet-18 width %d, %d images, batch %d, %d epochs, lr %g, %d thread(s), %d worker(s)"
          % (a.width, n, a.batch_size, a.epochs, base_lr, a.threads, a.workers), flush=True)
    m, tau_s, tau_t = 0.99, 0.1, 0.04
    epoch_losses = []
    if os.path.exists(metrics_path):
        epoch_losses = [json.loads(l)["loss"] for l in open(metrics_path) if '"kind": "epoch"' in l]
    step = start_epoch * spe
    t0 = time.time() - done_seconds
    for epoch in range(start_epoch, a.epochs):
        # The epoch's order and augmentations depend on (seed, epoch) only: a resume replays them.
        gen = torch.Generator().manual_seed(a.seed * 100003 + epoch)
        loader = torch.utils.data.DataLoader(data, batch_size=a.batch_size, shuffle=True,
                                             drop_last=True, num_workers=a.workers, generator=gen,
                                             persistent_workers=False)
        student.train()
        teacher.train()
        loss_sum, count = 0.0, 0
        for weak, strong in loader:
            lr = lr_at(step, base_lr, spe, total)
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
                g["lr"] = lr
            opt.step()
            queue[ptr:ptr + len(k)] = k
            ptr = (ptr + len(k)) % len(queue)
            step += 1
            value = loss.item()
            if not math.isfinite(value):
                raise SystemExit("torch: the loss became %r at step %d" % (value, step))
            loss_sum += value
            count += 1
            seconds = time.time() - t0
            if step % 20 == 0 or count == spe:
                ips = (step - start_epoch * spe) * a.batch_size / max(seconds - done_seconds, 1e-9)
                log.write(json.dumps({"kind": "step", "step": step, "epoch": epoch, "loss": value,
                                      "lr": lr, "imagesPerSecond": ips, "seconds": seconds}) + "\n")
                log.flush()
                print("torch: epoch %d step %d/%d loss %.4f lr %.4f %.1f images/s"
                      % (epoch + 1, step, total, value, lr, ips), flush=True)
        epoch_losses.append(loss_sum / count)
        seconds = time.time() - t0
        log.write(json.dumps({"kind": "epoch", "step": step, "epoch": epoch, "loss": loss_sum / count,
                              "seconds": seconds}) + "\n")
        log.flush()
        torch_save_atomic({"student": student.state_dict(), "teacher": teacher.state_dict(),
                           "opt": opt.state_dict(), "queue": queue, "ptr": ptr, "epoch": epoch + 1,
                           "seconds": seconds, "rng": torch.get_rng_state()}, ckpt_path)
    log.close()
    wall = time.time() - t0
    torch_save_atomic(student.backbone.state_dict(), os.path.join(a.out, "backbone.pt"))
    train_x, train_y = load_split("train", a.eval_train_limit)
    test_x, test_y = load_split("test", a.eval_test_limit)
    train_f, test_f = extract(student.backbone, train_x), extract(student.backbone, test_x)
    write_safetensors(os.path.join(a.out, "features.safetensors"),
                      {"train": train_f, "test": test_f, "train_labels": train_y.int(),
                       "test_labels": test_y.int()})
    ev = evaluate_features(train_f, train_y, test_f, test_y, a.probe_epochs)
    result = {"implementation": "pytorch", "width": a.width, "epochs": a.epochs, "seed": a.seed,
              "batchSize": a.batch_size, "images": n, "steps": total, "wallSeconds": wall,
              "imagesPerSecond": total * a.batch_size / wall, "epochLoss": epoch_losses,
              "threads": a.threads, "workers": a.workers, "versions": versions(),
              "evalImages": {"train": len(train_x), "test": len(test_x)}, **ev}
    write_json(result_path, result)
    print("torch: done in %.1f s (%.1f images/s); kNN %.2f %%, linear probe %.2f %%"
          % (wall, result["imagesPerSecond"], ev["knnTop1"], ev["probe"]["top1"]))


def cmd_probe(a):
    torch.set_num_threads(a.threads)
    t = read_safetensors(a.features)
    for key in ("train", "test", "train_labels", "test_labels"):
        if key not in t:
            raise SystemExit("Cannot probe '%s': it has no tensor '%s'" % (a.features, key))
    ev = evaluate_features(t["train"], t["train_labels"].long(), t["test"], t["test_labels"].long(),
                           a.probe_epochs)
    write_json(a.out, ev)
    print("probe: kNN %.2f %%, linear probe %.2f %% (best %.2f %%)"
          % (ev["knnTop1"], ev["probe"]["top1"], ev["probe"]["best"]))


def cmd_baselines(a):
    torch.set_num_threads(a.threads)
    train_x, train_y = load_split("train", a.eval_train_limit)
    test_x, test_y = load_split("test", a.eval_test_limit)
    t0 = time.time()
    raw_tr = normalize_images(train_x).flatten(1)
    raw_te = normalize_images(test_x).flatten(1)
    raw_knn = knn_top1(raw_tr, train_y, raw_te, test_y)
    print("baselines: raw-pixel kNN %.2f %%" % raw_knn, flush=True)
    logreg = linear_probe(raw_tr, train_y, raw_te, test_y, epochs=a.probe_epochs)
    print("baselines: logistic regression on raw pixels %.2f %%" % logreg["top1"], flush=True)
    torch.manual_seed(a.seed)
    enc = Net(a.width).backbone
    rand_knn = knn_top1(extract(enc, train_x), train_y, extract(enc, test_x), test_y)
    print("baselines: random-init encoder (torch, width %d) kNN %.2f %%" % (a.width, rand_knn))
    write_json(a.out, {"rawPixelKnnTop1": raw_knn, "logregRawPixels": logreg,
                       "randomInitTorchKnnTop1": rand_knn, "width": a.width, "seed": a.seed,
                       "evalImages": {"train": len(train_x), "test": len(test_x)},
                       "seconds": time.time() - t0, "versions": versions()})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    common.add_argument("--probe-epochs", type=int, default=PROBE["epochs"])
    common.add_argument("--eval-train-limit", type=int, default=None,
                        help="evaluate with the first N train images only (smoke runs)")
    common.add_argument("--eval-test-limit", type=int, default=None)
    t = sub.add_parser("train", parents=[common])
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--width", type=int, default=16)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=None, help="pretrain on the first N images only")
    t.add_argument("--workers", type=int, default=1, help="DataLoader workers (ours: 1 by default)")
    t.add_argument("--reuse", action="store_true",
                   help="keep a finished result.json; resume from checkpoint.pt")
    t.add_argument("--out", required=True, help="run folder")
    pr = sub.add_parser("probe", parents=[common])
    pr.add_argument("--features", required=True)
    pr.add_argument("--out", required=True, help="JSON result file")
    b = sub.add_parser("baselines", parents=[common])
    b.add_argument("--width", type=int, default=16)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", required=True, help="JSON result file")
    a = p.parse_args()
    {"train": cmd_train, "probe": cmd_probe, "baselines": cmd_baselines}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
