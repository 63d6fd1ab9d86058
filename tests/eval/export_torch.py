"""Loads a backbone written by `deno task export` into torchvision's ResNet class with
load_state_dict(strict=True) and compares its eval-mode features (and head outputs) with the
values our implementation computed.

usage: export_torch.py EXPORT.safetensors INPUT.npy FEATURES.npy [HEAD.npy]
prints a JSON summary; exits 1 when a value differs by more than 1e-4.

The model is built exactly as docs/export.md tells a PyTorch user to: torchvision.models.resnetNN()
for width 64, with conv1 / maxpool / fc replaced for the stem and the head; other widths rebuild the
stages with torchvision's own ResNet._make_layer. Reads safetensors with json + numpy only (the
`safetensors` package is not installed here; its load_file gives the same tensors).
"""
import json
import struct
import sys

import numpy as np
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck

DTYPES = {"F32": np.float32, "I64": np.int64, "I32": np.int32, "U8": np.uint8}


def load_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    sd = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        arr = np.frombuffer(data[b:end], dtype=DTYPES[e["dtype"]]).reshape(e["shape"])
        sd[name] = torch.from_numpy(arr.copy())
    return sd, meta


def build(arch, head):
    depth, width, in_ch = arch["depth"], arch["width"], arch["inChannels"]
    model = getattr(torchvision.models, "resnet%d" % depth)()
    if width != 64:
        block = Bottleneck if depth == 50 else BasicBlock
        layers = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3]}[depth]
        model.inplanes = width
        model.bn1 = nn.BatchNorm2d(width)
        model.layer1 = model._make_layer(block, width, layers[0])
        model.layer2 = model._make_layer(block, 2 * width, layers[1], stride=2)
        model.layer3 = model._make_layer(block, 4 * width, layers[2], stride=2)
        model.layer4 = model._make_layer(block, 8 * width, layers[3], stride=2)
    if arch["stem"] == "cifar":
        model.conv1 = nn.Conv2d(in_ch, width, 3, 1, 1, bias=False)
    elif in_ch != 3 or width != 64:
        model.conv1 = nn.Conv2d(in_ch, width, 7, 2, 3, bias=False)
    if not arch["maxPool"]:
        model.maxpool = nn.Identity()
    if head:
        model.fc = nn.Sequential(
            nn.Linear(arch["featureDim"], head["hidden"]), nn.ReLU(), nn.Linear(head["hidden"], head["out"])
        )
    else:
        model.fc = nn.Identity()
    return model


def main():
    export, inp, feats = sys.argv[1:4]
    head_path = sys.argv[4] if len(sys.argv) > 4 else None
    sd, meta = load_safetensors(export)
    arch = json.loads(meta["ressl.architecture"])
    head = json.loads(meta["ressl.head"]) if "ressl.head" in meta else None
    model = build(arch, head)
    model.load_state_dict(sd, strict=True)
    model.eval()
    x = torch.from_numpy(np.load(inp))
    expected = np.load(feats)
    with torch.no_grad():
        fc = model.fc
        model.fc = nn.Identity()
        got = model(x).numpy()
        model.fc = fc
        head_out = model(x).numpy() if head else None
    diff = float(np.abs(got - expected).max())
    out = {
        "torchvision": arch["torchvision"],
        "keys": len(sd),
        "featureShape": list(got.shape),
        "maxDiff": diff,
        "featureScale": float(np.abs(expected).max()),
        "numBatchesTracked": sorted({int(v) for k, v in sd.items() if k.endswith("num_batches_tracked")}),
    }
    ok = diff <= 1e-4
    if head:
        expected_head = np.load(head_path)
        out["headMaxDiff"] = float(np.abs(head_out - expected_head).max())
        out["headShape"] = list(head_out.shape)
        ok = ok and out["headMaxDiff"] <= 1e-4
    print(json.dumps(out))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
