"""PyTorch side of the train-step parity test (the official ReSSL small-dataset step).

usage: step_parity.py IN.safetensors OUT.safetensors CONFIG_JSON

IN holds the student ("student.backbone.*", "student.head.*", buffers "student.buffers.*"), the
teacher (same names under "teacher."), the queue [K, D], the batches ("weak.<i>", "strong.<i>") and,
per step s, the batch index "batch.<s>", the teacher shuffle "perm.<s>" and the lr "lr.<s>".
Runs the steps in float64 as the official code: q = normalize(head_q(net_q(strong))); under
no_grad, momentum update of the key encoder's parameters, shuffled teacher forward on the weak view
(SplitBatchNorm), unshuffle; loss = -(softmax(k Q^T / tau_t) * log_softmax(q Q^T / tau_s)).sum(1)
.mean(); torch.optim.SGD step; enqueue k. Writes the losses, both networks and the queue to OUT.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from safetensors_rw import read, write  # noqa: E402


class SplitBatchNorm(nn.BatchNorm2d):
    """The official code's SplitBatchNorm (from the MoCo CIFAR demo)."""

    def __init__(self, num_features, num_splits, **kw):
        super().__init__(num_features, **kw)
        self.num_splits = num_splits

    def forward(self, input):
        N, C, H, W = input.shape
        if self.training or not self.track_running_stats:
            running_mean_split = self.running_mean.repeat(self.num_splits)
            running_var_split = self.running_var.repeat(self.num_splits)
            outcome = F.batch_norm(
                input.view(-1, C * self.num_splits, H, W), running_mean_split, running_var_split,
                self.weight.repeat(self.num_splits), self.bias.repeat(self.num_splits),
                True, self.momentum, self.eps).view(N, C, H, W)
            self.running_mean.data.copy_(running_mean_split.view(self.num_splits, C).mean(dim=0))
            self.running_var.data.copy_(running_var_split.view(self.num_splits, C).mean(dim=0))
            return outcome
        return F.batch_norm(input, self.running_mean, self.running_var, self.weight, self.bias,
                            False, self.momentum, self.eps)


class Backbone(ResNet):
    """torchvision's ResNet-18 with a width, the CIFAR stem, no max-pool and no fc."""

    def __init__(self, width, in_channels, splits):
        nn.Module.__init__(self)
        norm = (lambda c: SplitBatchNorm(c, splits)) if splits > 1 else nn.BatchNorm2d
        self._norm_layer = norm
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = norm(width)
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
        self.backbone = Backbone(c["width"], c["inChannels"], c["bnSplits"])
        f = 8 * c["width"]
        self.head = nn.Sequential(nn.Linear(f, c["hidden"]), nn.ReLU(), nn.Linear(c["hidden"], c["dim"]))

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def load(net, t, prefix):
    state = {}
    for name in net.state_dict():
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(0)
        elif name.startswith("backbone.") and ("running_" in name):
            state[name] = t[prefix + "buffers." + name[len("backbone."):]]
        else:
            state[name] = t[prefix + name]
    net.load_state_dict(state, strict=True)


def dump(net, prefix, out):
    for name, p in net.named_parameters():
        out[prefix + name] = p.detach()
    for name, b in net.backbone.named_buffers():
        if "running_" in name:
            out[prefix + "buffers." + name] = b


def main():
    in_path, out_path, config = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    raw, _, _ = read(in_path)
    t = {k: torch.tensor(v, dtype=torch.float64 if d == "F32" else torch.int64).reshape(s)
         for k, (d, s, v) in raw.items()}
    student, teacher = Net(config).double(), Net(config).double()
    load(student, t, "student.")
    load(teacher, t, "teacher.")
    student.train()
    teacher.train()
    for p in teacher.parameters():
        p.requires_grad = False
    queue = t["queue"].clone()
    ptr = 0
    opt = torch.optim.SGD(student.parameters(), lr=0.0, momentum=config["momentum"],
                          weight_decay=config["weightDecay"])
    m, tau_s, tau_t = config["ema"], config["tauS"], config["tauT"]
    losses = []
    for s in range(config["steps"]):
        b = int(t["batch.%d" % s])
        weak, strong = t["weak.%d" % b], t["strong.%d" % b]
        q = student(strong)
        with torch.no_grad():
            for pq, pk in zip(student.parameters(), teacher.parameters()):
                pk.data = pk.data * m + pq.data * (1.0 - m)
            perm = t["perm.%d" % s]
            k = teacher(weak[perm])
            k = k[torch.argsort(perm)]
        logits_q = q @ queue.t()
        logits_k = k @ queue.t()
        loss = -torch.sum(F.softmax(logits_k.detach() / tau_t, dim=1)
                          * F.log_softmax(logits_q / tau_s, dim=1), dim=1).mean()
        opt.zero_grad()
        loss.backward()
        for g in opt.param_groups:
            g["lr"] = float(t["lr.%d" % s])
        opt.step()
        n = k.shape[0]
        queue[ptr:ptr + n] = k
        ptr = (ptr + n) % queue.shape[0]
        losses.append(loss.item())
    out = {"loss": torch.tensor(losses), "queue": queue}
    dump(student, "student.", out)
    dump(teacher, "teacher.", out)
    write(out_path, {k: ("F32", list(v.shape), v.float().flatten().tolist()) for k, v in out.items()},
          {})


if __name__ == "__main__":
    main()
