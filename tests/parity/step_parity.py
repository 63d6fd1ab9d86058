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

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from safetensors_rw import read, write  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "py"))
from ressl_torch import ProjectionNet  # noqa: E402


def Net(c):
    return ProjectionNet(c["width"], c["inChannels"], c["hidden"], c["dim"], c["bnSplits"])


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
