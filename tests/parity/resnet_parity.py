"""PyTorch side of the ResNet parity test.

usage: resnet_parity.py MODEL.safetensors INPUTS.safetensors OUT.safetensors WIDTH

Builds torchvision's ResNet(BasicBlock, [2, 2, 2, 2]) with the CIFAR stem (3x3/1 conv, no max-pool),
stage widths w, 2w, 4w, 8w and no fc; loads MODEL (written by our TypeScript exporter) with
strict=True; runs it in float64, training mode, on INPUTS' `x`; backpropagates
loss = sum(features * r); writes the features, every parameter gradient ("grad.<name>") and the
updated BN buffers ("buffer.<name>") to OUT. Files are read/written with json + struct only.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from safetensors_rw import read, write  # noqa: E402
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "py"))
from ressl_torch import CifarResNet18  # noqa: E402

TORCH_DTYPE = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


def to_tensors(path):
    tensors, _, _ = read(path)
    return {k: torch.tensor(v, dtype=TORCH_DTYPE[d]).reshape(s) for k, (d, s, v) in tensors.items()}


def main():
    model_path, inputs_path, out_path, width = sys.argv[1:5]
    state = to_tensors(model_path)
    inputs = to_tensors(inputs_path)
    x = inputs["x"].double()
    r = inputs["r"].double()
    model = CifarResNet18(int(width), x.shape[1]).double()
    model.load_state_dict(state, strict=True)
    model.train()
    features = model(x)
    (features * r).sum().backward()
    out = {"features": features.detach()}
    for name, p in model.named_parameters():
        out["grad." + name] = p.grad
    for name, b in model.named_buffers():
        if not name.endswith("num_batches_tracked"):
            out["buffer." + name] = b
        elif int(b) != 1:
            raise SystemExit("%s is %d after one training step" % (name, int(b)))
    write(out_path, {k: ("F32", list(v.shape), v.float().flatten().tolist()) for k, v in out.items()}, {})


if __name__ == "__main__":
    main()
