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
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "io"))
from safetensors_rw import read, write  # noqa: E402

TORCH_DTYPE = {"F32": torch.float32, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}


class CifarResNet18(ResNet):
    """torchvision's ResNet with a width parameter, the CIFAR stem and no fc."""

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
