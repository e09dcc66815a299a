#!/usr/bin/python3
"""Compare convnet with torchvision on resnet18, resnet50, vgg16 and densenet121 (run by hand).

Each model is built by torchvision with random initialisation (fixed seed), switched to eval mode,
saved as safetensors under torchvision's state_dict names, and run by `convnet forward` on the
same random 224x224 batch. Prints the relative error max|a - b| / max|b| of the logits per model.

    /usr/bin/python3 tests/golden/compare_torchvision.py [path/to/convnet]   # default build/convnet

Needs Debian's python3-torch and python3-torchvision; never run by CI.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torchvision


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        data = t.numpy().tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_output(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    entry = header["output"]
    begin, end = entry["data_offsets"]
    return torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32).reshape(entry["shape"])


def main():
    convnet = sys.argv[1] if len(sys.argv) > 1 else "build/convnet"
    torch.manual_seed(0)
    batch = torch.randn(2, 3, 224, 224)
    with tempfile.TemporaryDirectory() as tmp:
        images = os.path.join(tmp, "images.safetensors")
        write_safetensors(images, {"input": batch})
        for name in ["resnet18", "resnet50", "vgg16", "densenet121"]:
            torch.manual_seed(1)
            model = getattr(torchvision.models, name)().eval()
            weights = os.path.join(tmp, name + ".safetensors")
            write_safetensors(weights, model.state_dict())
            with torch.no_grad():
                expected = model(batch)
            out = os.path.join(tmp, name + ".out.safetensors")
            for backend in (["--reference"], []):
                subprocess.run([convnet, "forward", name, "--weights", weights, "--images", images, "--out", out]
                               + backend, check=True)
                got = read_output(out)
                error = ((got - expected).abs().max() / expected.abs().max()).item()
                label = "reference" if backend else "oneDNN"
                print(f"{name:12s} {label:9s} logits {tuple(got.shape)}  relative error {error:.2e}"
                      f"  {'OK' if error < 1e-4 else 'TOO LARGE'}")


if __name__ == "__main__":
    main()
