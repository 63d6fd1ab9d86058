"""PyTorch reference for tests/optim: reads cases as JSON on stdin, prints the parameters after each
step as JSON. SGD is torch.optim.SGD itself (param groups give the weight-decay exclusion); LARS is
solo-learn's LARS.step (Lightning Bolts) restated with torch ops on the same inputs."""
import json
import sys

import torch


def lars_step(params, lr, momentum, weight_decay, nesterov, eta, eps, clip, adapt, decay, state):
    with torch.no_grad():
        for name, p in params.items():
            d_p = p.grad
            wd = weight_decay if decay[name] else 0.0
            p_norm = torch.norm(p.data)
            g_norm = torch.norm(p.grad.data)
            if adapt[name] and p_norm != 0 and g_norm != 0:
                lars_lr = p_norm / (g_norm + p_norm * wd + eps)
                lars_lr *= eta
                if clip:
                    lars_lr = min(lars_lr / lr, 1)
                d_p = d_p.add(p, alpha=wd)
                d_p *= lars_lr
            if momentum != 0:
                if name not in state:
                    buf = state[name] = torch.clone(d_p).detach()
                else:
                    buf = state[name]
                    buf.mul_(momentum).add_(d_p)
                d_p = d_p.add(buf, alpha=momentum) if nesterov else buf
            p.add_(d_p, alpha=-lr)


def run(case):
    params = {
        n: torch.tensor(v["data"], dtype=torch.float32).reshape(v["shape"]).requires_grad_()
        for n, v in case["params"].items()
    }
    o = case["opts"]
    decay = {n: n not in o["noDecay"] for n in params}
    adapt = {n: n not in o.get("noAdapt", []) for n in params}
    if case["kind"] == "sgd":
        groups = [
            {"params": [p for n, p in params.items() if decay[n]]},
            {"params": [p for n, p in params.items() if not decay[n]], "weight_decay": 0.0},
        ]
        opt = torch.optim.SGD(
            [g for g in groups if g["params"]],
            lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"],
            nesterov=o["nesterov"],
        )
    state = {}
    out = []
    for step_grads in case["grads"]:
        for n, p in params.items():
            p.grad = torch.tensor(step_grads[n], dtype=torch.float32).reshape(p.shape)
        if case["kind"] == "sgd":
            opt.step()
        else:
            lars_step(params, o["lr"], o["momentum"], o["weightDecay"], o["nesterov"], o["eta"],
                      o["eps"], o["clipLr"], adapt, decay, state)
        out.append({n: p.detach().reshape(-1).tolist() for n, p in params.items()})
    return out


cases = json.load(sys.stdin)
json.dump([run(c) for c in cases], sys.stdout)
