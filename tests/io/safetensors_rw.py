"""Minimal safetensors reader/writer using only json + struct (interop oracle for the tests).

usage: safetensors_rw.py check IN.safetensors   -> prints a JSON summary of the file
       safetensors_rw.py write OUT.safetensors  -> writes a fixed set of tensors
       safetensors_rw.py torchread IN.safetensors -> the same summary, each entry's bytes read by
           torch.frombuffer as its dtype (float16, bfloat16, float64, ...): PyTorch's reading
       safetensors_rw.py torch OUT.safetensors V1 V2 ...
           -> writes the f32 values V as F32, and as F16, BF16 and F64 converted by PyTorch
              (torch.half(), torch.bfloat16(): round to nearest even), raw bits from torch itself

F16 is read with struct's 'e' (IEEE half), F64 with 'd', BF16 as the upper half of an f32 ('H' bits
shifted by 16): exact, no torch needed for `check`.
"""
import json
import math
import struct
import sys

ITEM = {"F32": ("f", 4), "I64": ("q", 8), "I32": ("i", 4), "U8": ("B", 1),
        "F16": ("e", 2), "F64": ("d", 8), "BF16": ("H", 2)}


def bf16_value(bits):
    return struct.unpack("<f", struct.pack("<I", bits << 16))[0]


def read(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = raw[8 + n :]
    out = {}
    for name, e in header.items():
        code, size = ITEM[e["dtype"]]
        b, end = e["data_offsets"]
        count = (end - b) // size
        values = list(struct.unpack("<%d%s" % (count, code), data[b:end]))
        if e["dtype"] == "BF16":
            values = [bf16_value(v) for v in values]
        out[name] = (e["dtype"], e["shape"], values)
    return out, meta, n


def torch_read(path):
    import torch
    dtypes = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "F64": torch.float64, "I64": torch.int64, "I32": torch.int32, "U8": torch.uint8}
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = bytearray(raw[8 + n :])
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        t = torch.frombuffer(data[b:end], dtype=dtypes[e["dtype"]]) if end > b else torch.tensor([])
        t = t.reshape(e["shape"])
        if t.is_floating_point() and t.dtype != torch.float64:
            t = t.float()
        out[name] = {"dtype": e["dtype"], "shape": e["shape"], "values": t.flatten().tolist()}
    return out


def write_raw(path, tensors):
    """tensors: name -> (dtype, shape, raw little-endian bytes)."""
    header, off, blobs = {}, 0, []
    for name, (dtype, shape, blob) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
        blobs.append(blob)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_torch(path, values):
    import torch
    v = torch.tensor(values, dtype=torch.float32)
    write_raw(path, {
        "f32": ("F32", [len(values)], v.numpy().tobytes()),
        "f16": ("F16", [len(values)], v.half().view(torch.int16).numpy().tobytes()),
        "bf16": ("BF16", [len(values)], v.bfloat16().view(torch.int16).numpy().tobytes()),
        "f64": ("F64", [len(values)], torch.tensor(values, dtype=torch.float64).numpy().tobytes()),
    })


def write(path, tensors, meta):
    header = {"__metadata__": meta} if meta else {}
    blobs = []
    off = 0
    for name, (dtype, shape, values) in tensors.items():
        code, size = ITEM[dtype]
        blob = struct.pack("<%d%s" % (len(values), code), *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        off += len(blob)
        blobs.append(blob)
    h = json.dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


if __name__ == "__main__":
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == "check":
        tensors, meta, n = read(path)
        def safe(v):  # JSON has no inf/nan: name them
            return v if not isinstance(v, float) or math.isfinite(v) else repr(v)
        print(json.dumps({"header_len": n, "metadata": meta,
                          "tensors": {k: {"dtype": d, "shape": s, "values": [safe(x) for x in v]}
                                      for k, (d, s, v) in tensors.items()}}))
    elif cmd == "write":
        write(path, {
            "layer1.0.conv1.weight": ("F32", [2, 3], [0.5, -1.25, 3.0, 1e-8, -0.0, 65504.0]),
            "bn1.num_batches_tracked": ("I64", [], [9007199254740993]),
            "ids": ("I32", [4], [-2147483648, -1, 0, 2147483647]),
            "pixels": ("U8", [2, 2], [0, 1, 254, 255]),
            "empty": ("F32", [0, 3], []),
        }, {"format": "pt", "epoch": "7"})
    elif cmd == "torchread":
        print(json.dumps({"tensors": torch_read(path)}))
    elif cmd == "torch":
        write_torch(path, [float(a) for a in sys.argv[3:]])
    else:
        raise SystemExit("unknown command " + cmd)
