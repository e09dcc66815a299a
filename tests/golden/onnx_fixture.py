#!/usr/bin/python3
"""Writes tests/data/onnx/small.onnx and small-io.safetensors for tests/onnx_test.cpp: a small PyTorch
module exported by torch.onnx.export (Debian's python3-torch) with the operators PyTorch emits for
the classic nets (Conv with groups and asymmetric-free padding, BatchNormalization, Relu, MaxPool
with ceil_mode, AveragePool (after a Pad of zeros), a residual Add, a Concat of two branches, the Shape/Gather/Unsqueeze/
Concat/Reshape chain of x.view(x.size(0), -1), Gemm, Dropout in eval mode), and one input with
PyTorch's output, so the C++ tests compare convnet's import with PyTorch without Python.

Usage: tests/golden/onnx_fixture.py
"""
import json
import os
import struct

import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "data", "onnx")


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=2)
        self.branch_a = nn.Conv2d(8, 4, 1)
        self.branch_b = nn.Sequential(nn.Conv2d(8, 4, 3, padding=2, dilation=2), nn.LeakyReLU(0.1))
        self.avg = nn.AvgPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = torch.relu(self.bn1(self.pool(self.conv1(x))))  # batch norm after pooling: not folded
        x = torch.relu(x + self.conv2(x))
        x = torch.cat([self.branch_a(x), self.branch_b(x)], 1)
        x = self.avg(x)
        x = x.view(x.size(0), -1)
        return self.fc(self.drop(x))


def write_safetensors(path, tensors):
    header, data = {}, b""
    for name, t in tensors.items():
        raw = t.detach().contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def main():
    torch.manual_seed(0)
    model = Small().eval()
    with torch.no_grad():  # statistics that are not the identity
        model.bn1.running_mean.uniform_(-0.5, 0.5)
        model.bn1.running_var.uniform_(0.5, 2.0)
        model.bn1.weight.uniform_(0.5, 1.5)
        model.bn1.bias.uniform_(-0.5, 0.5)
    x = torch.rand(2, 3, 10, 10) * 2 - 1
    with torch.no_grad():
        y = model(x)
    os.makedirs(OUT, exist_ok=True)
    torch.onnx.export(model, x, os.path.join(OUT, "small.onnx"), input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13,
                      do_constant_folding=False)
    write_safetensors(os.path.join(OUT, "small-io.safetensors"), {"input": x, "output": y})
    print("wrote", os.path.join(OUT, "small.onnx"), "and small-io.safetensors")


if __name__ == "__main__":
    main()
