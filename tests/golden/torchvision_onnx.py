#!/usr/bin/python3
# PyTorch -> ONNX -> convnet: exports torchvision models (random weights, batch norms given random
# running statistics so they matter) with torch.onnx.export (opset 13), runs each file with
# `convnet forward model.onnx`, and compares convnet's logits with PyTorch's (max |difference| over
# max |logit|) and the parameter counts of convnet, of the file (its float initializers and
# constants, those shared through Identity nodes counted each time, batch-norm statistics not) and
# of the PyTorch module. Development check, run by hand with Debian's python3-torch,
# python3-torchvision and python3-onnx:
#   tests/golden/torchvision_onnx.py [--convnet build/convnet] [NET ...]
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import onnx
import torch
import torchvision

NETS = {"resnet18": 224, "vgg11": 224, "densenet121": 224, "googlenet": 224, "alexnet": 224}


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        blob = t.detach().contiguous().float().reshape(-1).numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def load_output(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    entry = json.loads(data[8:8 + n])["output"]
    start, end = entry["data_offsets"]
    return torch.frombuffer(bytearray(data[8 + n + start:8 + n + end]), dtype=torch.float32).reshape(entry["shape"])


def model(name):
    torch.manual_seed(0)
    net = torchvision.models.googlenet(aux_logits=False, init_weights=True) if name == "googlenet" else \
        getattr(torchvision.models, name)()
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--convnet", default="build/convnet")
    parser.add_argument("nets", nargs="*", default=list(NETS))
    args = parser.parse_args()
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets:
            net = model(name)
            x = torch.randn(2, 3, NETS[name], NETS[name])
            onnx_path = os.path.join(tmp, name + ".onnx")
            # PRESERVE: the module is in eval mode, and its batch norms stay BatchNormalization nodes
            # (EVAL would fold each into the convolution before it, changing the parameter count).
            torch.onnx.export(net, x, onnx_path, opset_version=13, input_names=["input"], output_names=["logits"],
                              do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
            with torch.no_grad():
                expected = net(x)
            save_safetensors({"input": x}, os.path.join(tmp, "x.safetensors"))
            out = os.path.join(tmp, "y.safetensors")
            run = subprocess.run([args.convnet, "forward", onnx_path, "--images", os.path.join(tmp, "x.safetensors"),
                                  "--out", out], capture_output=True, text=True)
            if run.returncode != 0:
                print(f"{name}: convnet forward failed: {run.stderr.strip()}")
                failures += 1
                continue
            got = load_output(out)
            error = ((got - expected).abs().max() / expected.abs().max()).item()
            summary = subprocess.run([args.convnet, "summary", onnx_path, "--json"], capture_output=True, text=True)
            params = json.loads(summary.stdout)["totals"]["parameters"] if summary.returncode == 0 else None
            torch_params = sum(p.numel() for p in net.parameters())
            graph = onnx.load(onnx_path).graph
            tensors = list(graph.initializer) + [a.t for n in graph.node if n.op_type == "Constant" for a in n.attribute
                                                 if a.name == "value"]
            sizes = {t.name: int(torch.tensor(t.dims).prod()) for t in tensors if t.data_type == onnx.TensorProto.FLOAT}
            # The exporter stores equal tensors (VGG's zero biases) once, the others as Identity nodes of it.
            shared = sum(sizes.get(n.input[0], 0) for n in graph.node if n.op_type == "Identity")
            # A batch norm's running mean and variance are buffers, not parameters (in convnet too).
            statistics = {i for n in graph.node if n.op_type == "BatchNormalization" for i in n.input[3:5]}
            in_file = sum(v for k, v in sizes.items() if k not in statistics) + shared
            ok = error < 1e-4 and params == in_file == torch_params
            failures += not ok
            print(f"{name}: max relative error {error:.2e}; parameters convnet {params:,}, in the file {in_file:,}, "
                  f"PyTorch {torch_params:,}: {'ok' if ok else 'MISMATCH'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
