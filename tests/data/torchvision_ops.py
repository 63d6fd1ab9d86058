"""Reference outputs of torchvision's functional ops for tests/data/augment_parity_test.ts.

Usage: /usr/bin/python3 torchvision_ops.py DIR. Reads DIR/cases.json; each case names a raw u8 HWC
input file and a list of ops applied in order to the float CHW tensor (values in [0, 1]); writes the
result as little-endian float32 CHW to DIR/out_<id>.bin. "rrc" cases sample
RandomResizedCrop.get_params and write the boxes as JSON to DIR/rrc_<id>.json.
"""
import json
import sys

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode


def run_ops(img, ops):
    for op in ops:
        name, arg = op["op"], op.get("arg")
        if name == "resized_crop":
            top, left, h, w, oh, ow = arg
            img = F.resized_crop(img, top, left, h, w, [oh, ow], InterpolationMode.BILINEAR, antialias=True)
        elif name == "hflip":
            img = F.hflip(img)
        elif name == "brightness":
            img = F.adjust_brightness(img, arg)
        elif name == "contrast":
            img = F.adjust_contrast(img, arg)
        elif name == "saturation":
            img = F.adjust_saturation(img, arg)
        elif name == "hue":
            img = F.adjust_hue(img, arg)
        elif name == "grayscale":
            img = F.rgb_to_grayscale(img, num_output_channels=img.shape[0])
        elif name == "blur":
            k, sigma = arg
            img = F.gaussian_blur(img, [k, k], [sigma, sigma])
        elif name == "normalize":
            img = F.normalize(img, arg[0], arg[1])
        else:
            raise ValueError(f"unknown op {name}")
    return img


def main(d):
    with open(f"{d}/cases.json") as f:
        cases = json.load(f)
    for case in cases:
        if case["kind"] == "rrc":
            h, w, n = case["height"], case["width"], case["n"]
            torch.manual_seed(case["seed"])
            img = torch.zeros(1, h, w)
            boxes = [list(T.RandomResizedCrop.get_params(img, case["scale"], case["ratio"])) for _ in range(n)]
            with open(f"{d}/rrc_{case['id']}.json", "w") as f:
                json.dump(boxes, f)
            continue
        h, w, c = case["height"], case["width"], case["channels"]
        raw = np.fromfile(f"{d}/{case['input']}", dtype=np.uint8).reshape(h, w, c)
        img = torch.from_numpy(raw.copy()).permute(2, 0, 1).float() / 255.0
        out = run_ops(img, case["ops"]).contiguous().numpy().astype("<f4")
        out.tofile(f"{d}/out_{case['id']}.bin")


if __name__ == "__main__":
    main(sys.argv[1])
