"""PyTorch side of `deno task gpu-check`'s step benchmark: the same ReSSL training step as ours
(EMA update at the start, teacher forward on the weak view without gradient, student forward and
backward on the strong view, relation loss against a K x D queue, SGD with momentum and weight
decay, enqueue), on the GPU, float32, `torch.backends.cudnn.benchmark = True`, TF32 off unless
asked for (so both sides compute in full f32), random views made once on the device.

usage: gpu_check_torch.py CONFIG_JSON

CONFIG_JSON: {"width", "inChannels", "size", "batch", "hidden", "out", "queue", "m", "tauS",
"tauT", "lr", "momentum", "weightDecay", "seed", "warmup", "steps", "device" ("cuda" or "cpu"),
"tf32"}. Runs `warmup` steps, synchronises, then times `steps` steps with one synchronisation at
the end (as a training loop that reads the loss once per logging interval) and prints one JSON
line: {"torch", "device", "gpu", "cudnn", "tf32", "secondsPerStep", "imagesPerSecond", "loss",
"warmupSeconds"}.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """torchvision's BasicBlock: conv3x3-BN-ReLU-conv3x3-BN, + (1x1 conv-BN) shortcut, ReLU."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ProjectionNet(nn.Module):
    """ResNet-18 with the CIFAR stem (3x3 conv, no max-pool), no fc, then Linear-ReLU-Linear and
    L2 normalisation: the architecture of py/ressl_torch.py without needing torchvision."""

    def __init__(self, width, in_channels, hidden, out):
        super().__init__()
        w = width
        layers = [nn.Conv2d(in_channels, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()]
        cin = w
        for i, cout in enumerate([w, 2 * w, 4 * w, 8 * w]):
            layers += [Block(cin, cout, 1 if i == 0 else 2), Block(cout, cout, 1)]
            cin = cout
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.backbone = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(8 * w, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def main():
    c = json.loads(sys.argv[1])
    dev = torch.device(c["device"])
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = bool(c.get("tf32"))
        torch.backends.cuda.matmul.allow_tf32 = bool(c.get("tf32"))
    torch.manual_seed(c["seed"])
    net = lambda: ProjectionNet(c["width"], c["inChannels"], c["hidden"], c["out"]).to(dev)  # noqa
    student, teacher = net(), net()
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    queue = F.normalize(torch.randn(c["queue"], c["out"], device=dev), dim=1)
    opt = torch.optim.SGD(student.parameters(), lr=c["lr"], momentum=c["momentum"],
                          weight_decay=c["weightDecay"])
    shape = (c["batch"], c["inChannels"], c["size"], c["size"])
    weak, strong = torch.randn(shape, device=dev), torch.randn(shape, device=dev)
    m, ptr = c["m"], 0
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    def step():
        nonlocal queue, ptr
        with torch.no_grad():
            torch._foreach_mul_(list(teacher.parameters()), m)
            torch._foreach_add_(list(teacher.parameters()), list(student.parameters()),
                                alpha=1 - m)
            k = teacher(weak)
        q = student(strong)
        logits_q = q @ queue.t() / c["tauS"]
        logits_k = k @ queue.t() / c["tauT"]
        loss = -(F.softmax(logits_k, dim=1) * F.log_softmax(logits_q, dim=1)).sum(1).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        queue[ptr:ptr + k.shape[0]] = k
        ptr = (ptr + k.shape[0]) % queue.shape[0]
        return loss

    t0 = time.perf_counter()
    for _ in range(c["warmup"]):
        step()
    sync()
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(c["steps"]):
        loss = step()
    sync()
    seconds = (time.perf_counter() - t0) / c["steps"]
    print(json.dumps({
        "torch": torch.__version__,
        "device": str(dev),
        "gpu": torch.cuda.get_device_name(dev) if cuda else "cpu",
        "cudnn": str(torch.backends.cudnn.version()) if cuda else "none",
        "tf32": bool(c.get("tf32")),
        "secondsPerStep": seconds,
        "imagesPerSecond": c["batch"] / seconds,
        "loss": float(loss),
        "warmupSeconds": warm,
    }), flush=True)


if __name__ == "__main__":
    main()
