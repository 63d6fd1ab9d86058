"""PyTorch side of `bench/step.ts`: the same ReSSL training step, run on command.

usage: step_torch.py CONFIG_JSON

CONFIG_JSON: {"width", "inChannels", "size", "batch", "hidden", "out", "queue", "m", "tauS", "tauT",
"lr", "momentum", "weightDecay", "threads", "seed"}. Builds torchvision's ResNet-18 (CIFAR stem: 3x3/1
conv, no max-pool, no fc) with the projection head, a teacher copy, a K x D queue, SGD (momentum,
weight decay), random weak/strong batches; prints "ready". Then for each stdin line "run N" it runs
N steps (EMA update at the start, teacher forward on the weak view without gradient, student
forward/backward on the strong view, relation loss, SGD step, enqueue) and prints one JSON line
{"times": [seconds per step], "loss": last loss}. "quit" exits. Float32, training-mode BatchNorm.
"""
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


class Backbone(ResNet):
    def __init__(self, width, in_channels):
        nn.Module.__init__(self)
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, width, 2)
        self.layer2 = self._make_layer(BasicBlock, 2 * width, 2, stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, 2, stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, 2, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Identity()


class Net(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.backbone = Backbone(c["width"], c["inChannels"])
        self.head = nn.Sequential(
            nn.Linear(8 * c["width"], c["hidden"]), nn.ReLU(), nn.Linear(c["hidden"], c["out"]))

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def main():
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    torch.manual_seed(c["seed"])
    student = Net(c)
    teacher = Net(c)
    teacher.load_state_dict(student.state_dict())
    for p in teacher.parameters():
        p.requires_grad = False
    queue = F.normalize(torch.randn(c["queue"], c["out"]), dim=1)
    ptr = 0
    opt = torch.optim.SGD(student.parameters(), lr=c["lr"], momentum=c["momentum"],
                          weight_decay=c["weightDecay"])
    shape = (c["batch"], c["inChannels"], c["size"], c["size"])
    weak, strong = torch.randn(shape), torch.randn(shape)
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
        return float(loss)

    print("ready", flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        times, loss = [], float("nan")
        for _ in range(int(cmd[1])):
            t0 = time.perf_counter()
            loss = step()
            times.append(time.perf_counter() - t0)
        print(json.dumps({"times": times, "loss": loss}), flush=True)


if __name__ == "__main__":
    main()
