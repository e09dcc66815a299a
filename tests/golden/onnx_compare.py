#!/usr/bin/python3
"""convnet -> ONNX -> onnxruntime: exports zoo networks with `convnet export` (He-initialised weights,
seed 0), runs `convnet forward` on the network (the same weights) and onnxruntime-node (bench/node_modules, installed by bench/compare_setup.py
or `npm install --ignore-scripts` in bench/) on the same random batch, and prints the largest
relative error of the outputs (|a - b| / max|b|); Debian's python3-onnx checker checks every file.

Needs python3-onnx, python3-numpy, node and a built convnet (--convnet, default build/convnet).
Usage: tests/golden/onnx_compare.py [NET ...] [--convnet PATH] [--batch N]
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
# Each net with an input small enough for a quiet machine (None: the zoo's own).
NETS = {"lenet5": None, "alexnet": "3x67x67", "alexnet-2gpu": "3x67x67", "vgg11": "3x32x32",
        "resnet18": "3x64x64", "googlenet": "3x64x64", "densenet121": "3x64x64",
        os.path.join(HERE, "..", "data", "onnx", "mix.cnet"): None,  # every exported kind, the windows' corners
        os.path.join(HERE, "..", "data", "onnx", "extras.cnet"): None}  # maxout, padchannels, a chained add
TARGET = 1e-4


def write_safetensors(path, name, array):
    header = json.dumps({name: {"dtype": "F32", "shape": list(array.shape),
                                "data_offsets": [0, array.size * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header + array.astype("<f4").tobytes())


def read_safetensors(path, name):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    entry = json.loads(data[8:8 + length])[name]
    begin, end = entry["data_offsets"]
    return np.frombuffer(data[8 + length + begin:8 + length + end], dtype="<f4").reshape(entry["shape"])


def compare(net, shape, convnet, batch, folder):
    model = os.path.join(folder, os.path.basename(net) + ".onnx")
    export = [convnet, "export", net, "-o", model] + (["--input", shape] if shape else [])
    subprocess.run(export, check=True, capture_output=True)
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in onnx.load(model).graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(7).uniform(-1, 1, size=[batch] + dims).astype(np.float32)
    images, out, x_raw, y_raw = (os.path.join(folder, net + s) for s in
                                 ("-x.safetensors", "-y.safetensors", "-x.f32", "-ort.f32"))
    images, out, x_raw, y_raw = (os.path.join(folder, os.path.basename(p)) for p in (images, out, x_raw, y_raw))
    write_safetensors(images, "input", x)
    # The network itself, He-initialised from the same seed (0) as the export's weights.
    subprocess.run([convnet, "forward", net, "--images", images, "--out", out], check=True, capture_output=True)
    ours = read_safetensors(out, "output")
    x.tofile(x_raw)
    subprocess.run(["node", os.path.join(HERE, "onnx_ort_run.js"), model, x_raw, ",".join(map(str, x.shape)), y_raw],
                   check=True, capture_output=True)
    theirs = np.fromfile(y_raw, dtype="<f4").reshape(ours.shape)
    return float(np.max(np.abs(ours.astype(np.float64) - theirs)) / np.max(np.abs(theirs)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("nets", nargs="*", default=list(NETS))
    parser.add_argument("--convnet", default=os.path.join(HERE, "..", "..", "build", "convnet"))
    parser.add_argument("--batch", type=int, default=2)
    args = parser.parse_args()
    worst = 0.0
    with tempfile.TemporaryDirectory() as folder:
        for net in args.nets:
            try:
                error = compare(net, NETS.get(net), args.convnet, args.batch, folder)
            except subprocess.CalledProcessError as e:
                print(f"{net}: FAILED: {' '.join(e.cmd[:3])}: {e.stderr.decode().strip()}")
                worst = float("inf")
                continue
            worst = max(worst, error)
            print(f"{os.path.basename(net):14} input {NETS.get(net) or 'zoo'}: checker ok, max relative error {error:.2e}"
                  f"{'' if error < TARGET else '  ABOVE ' + str(TARGET)}")
    sys.exit(0 if worst < TARGET else 1)


if __name__ == "__main__":
    main()
