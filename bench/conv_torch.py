"""PyTorch side of `bench/conv_micro.ts`: convolution timings on given shapes.

usage: conv_torch.py REPS THREADS mb ic ih iw oc kh sh ph [...]   (CONV_CPU_TIME=1: process CPU time)

For each shape, layout (NCHW, channels_last) and direction (forward; backward data and backward
weights through aten::convolution_backward, as autograd calls them) runs 2 warm-up calls and REPS
timed calls; prints one JSON line per (shape, layout, direction): {"shape", "layout", "dir", "ms":
median, "min": fastest}. Float32, no bias, as the ResNet's convolutions.
"""
import json
import os
import sys
import time

import torch


def timed(fn, reps, clock):
    for _ in range(2):
        fn()
    t = []
    for _ in range(reps):
        t0 = clock()
        fn()
        t.append((clock() - t0) * 1000)
    t.sort()
    return t[len(t) // 2], t[0]


def main():
    reps, threads = int(sys.argv[1]), int(sys.argv[2])
    clock = time.process_time if os.environ.get("CONV_CPU_TIME") == "1" else time.perf_counter
    torch.set_num_threads(threads)
    a = list(map(int, sys.argv[3:]))
    for i in range(0, len(a), 8):
        mb, ic, ih, iw, oc, kh, sh, ph = a[i:i + 8]
        oh, ow = (ih + 2 * ph - kh) // sh + 1, (iw + 2 * ph - kh) // sh + 1
        shape = "mb%d %dx%dx%d -> %dx%dx%d k%d s%d" % (mb, ic, ih, iw, oc, oh, ow, kh, sh)
        for layout, fmt in (("NCHW", torch.contiguous_format), ("channels_last", torch.channels_last)):
            x = torch.randn(mb, ic, ih, iw).contiguous(memory_format=fmt)
            w = torch.randn(oc, ic, kh, kh).contiguous(memory_format=fmt)
            dy = torch.randn(mb, oc, oh, ow).contiguous(memory_format=fmt)
            conv = torch.ops.aten.convolution_backward

            def fwd():
                torch.nn.functional.conv2d(x, w, None, sh, ph)

            def bwd(mask):
                return lambda: conv(dy, x, w, None, [sh, sh], [ph, ph], [1, 1], False, [0, 0], 1,
                                    mask)

            with torch.no_grad():
                for d, fn in (("fwd", fwd), ("bwd-data", bwd([True, False, False])),
                              ("bwd-weights", bwd([False, True, False]))):
                    med, best = timed(fn, reps, clock)
                    print(json.dumps({"shape": shape, "layout": layout, "dir": d, "ms": med,
                                      "min": best}), flush=True)


if __name__ == "__main__":
    main()
