#!/usr/bin/python3
# Writes the golden fixtures tests/golden/*.safetensors from PyTorch (float64 maths, float32 storage).
# Run by hand after changing it: python3 tests/golden/generate.py (needs Debian's python3-torch).
"""Golden fixtures for convnet's reference kernels and whole networks, computed by PyTorch.

Run from anywhere with a python3 that has torch (Debian's python3-torch, torch 1.13; under pyenv
use /usr/bin/python3):

    python3 tests/golden/generate.py

The seeds are fixed, so a rerun rewrites the same files. Inputs and parameters are drawn in
float32, every computation runs in float64 and results are rounded to float32 for storage, so a
fixture is the exact answer up to one float32 rounding. Files are safetensors written here with
json + struct (8-byte little-endian header length, JSON header, raw little-endian data); labels are
I64, everything else F32. Metadata values are strings.

Per-layer fixtures (consumed by tests/golden_layers_test.cpp). Each holds several cases; tensors
are named CASE.NAME and metadata CASE.options holds "key=value" words (a list is "a,b"):

* conv2d.safetensors       cases basic, stride_pad, rect, dilation, groups, depthwise, nobias:
                           input, weight, bias, grad_output, output, grad_input, grad_weight,
                           grad_bias; options stride, pad, dilation, groups, bias (0/1).
* linear.safetensors       cases basic, nobias: the same tensors as conv2d; options bias.
* pool2d.safetensors       cases max_basic, max_ceil, max_pad, max_ceil_pad, avg_* likewise:
                           input, grad_output, output, grad_input; options kind (max/avg), kernel,
                           stride, pad, ceil (0/1); avg pools count padding (count_include_pad).
* lrn.safetensors          cases alexnet (size 5, alpha 1e-4, beta 0.75, k 2: PyTorch's
                           LocalResponseNorm), strong (size 3, alpha 0.5, beta 0.75, k 1), even
                           (size 4, alpha 0.3, beta 0.6, k 1.5): input, grad_output, output,
                           grad_input; options size, alpha, beta, k.
* batch_norm.safetensors   cases volume (N,C,H,W) and vector (N,C), training mode: input, weight,
                           bias, running_mean, running_var (before), output, running_mean_after,
                           running_var_after, grad_output, grad_input, grad_weight, grad_bias;
                           options eps, momentum.
* activation.safetensors   shared input and grad_output; cases relu, leaky (slope 0.1), leaky_default
                           (0.01), elu (alpha 1), elu_half (alpha 0.5), sigmoid, tanh: CASE.output,
                           CASE.grad_input; options kind and slope / alpha.
* softmax.safetensors      cases vector (N,F) and volume (N,C,H,W) over dim 1: input, grad_output,
                           output, grad_input.
* cross_entropy.safetensors  cases basic and large (logits of size ~50): logits, labels, loss
                           (mean over the batch, shape [1]), grad_logits (d loss / d logits).

Whole-network fixtures (consumed by tests/golden_nets_test.cpp), one net each, N = 2..4, built by
the C++ test from the convnet model text in metadata "model" (the nn.Module below has the same
parameter names): input, labels, logits, loss (mean softmax cross-entropy), grad.input
(d loss / d input), every parameter and batch-norm running statistic by its convnet name, every
parameter gradient as grad.NAME, and for batch norm the running statistics after the one
training-mode forward as after.NAME. Batch norm uses batch statistics in forward and backward.

* lenet5.safetensors         the zoo's LeNet-5 (src/convnet/zoo/models/lenet5.cnet), 2x1x28x28.
* resnet_small.safetensors   conv-bn-relu, a basic block (8) and a basic block (16, stride 2) with
                             a 1x1 projection shortcut, global average pool, fc 10; 4x3x16x16.
* inception_small.safetensors  one inception module (1x1 / 1x1-3x3 / 1x1-5x5 / maxpool-1x1
                             branches), global average pool, fc 5; 3x8x8x8.
* dense_small.safetensors    a dense block of 3 layers (bn-relu-conv 1x1-bn-relu-conv 3x3, growth
                             4), bn, relu, global average pool, fc 10; 2x8x8x8.

The script also prints how far the same net run in float32 by PyTorch lands from the float64
answer: a guide for the C++ tests' tolerances.
"""

import json
import os
import struct

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


# ----------------------------------------------------------------------------------------------
# safetensors writer


def write_safetensors(name, tensors, metadata=None):
    header, blobs, offset = {}, [], 0
    for key, t in tensors.items():
        t = t.detach().contiguous().reshape(-1)
        if t.dtype == torch.int64:
            dtype, blob = "I64", struct.pack(f"<{t.numel()}q", *t.tolist())
        else:
            dtype, blob = "F32", struct.pack(f"<{t.numel()}f", *t.float().tolist())
        shape = list(tensors[key].shape)
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # data starts 8-byte aligned, as the safetensors library does
    path = os.path.join(HERE, name)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for blob in blobs:
            f.write(blob)
    print(f"{name:28s} {os.path.getsize(path):8d} bytes")


def rand(gen, *shape, low=-1.0, high=1.0):
    """Uniform float32 values, returned as float64 (exactly representable in float32)."""
    return (torch.rand(*shape, generator=gen) * (high - low) + low).float().double()


def options(**kw):
    words = []
    for k, v in kw.items():
        if isinstance(v, (tuple, list)):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, bool):
            v = int(v)
        words.append(f"{k}={v}")
    return " ".join(words)


def grads(output, grad_output, wrt):
    return torch.autograd.grad(output, wrt, grad_output)


# ----------------------------------------------------------------------------------------------
# Per-layer fixtures


def conv2d_fixture():
    gen = torch.Generator().manual_seed(101)
    cases = {  # name: (N, C, H, W, K, kernel, stride, pad, dilation, groups, bias)
        "basic": (2, 3, 7, 6, 4, (3, 3), (1, 1), (0, 0), (1, 1), 1, True),
        "stride_pad": (2, 3, 7, 8, 4, (3, 3), (2, 2), (1, 1), (1, 1), 1, True),
        "rect": (2, 2, 6, 7, 3, (3, 2), (2, 1), (1, 0), (1, 1), 1, True),
        "dilation": (1, 2, 9, 9, 3, (3, 3), (1, 1), (2, 2), (2, 2), 1, True),
        "groups": (2, 4, 5, 5, 6, (3, 3), (1, 1), (1, 1), (1, 1), 2, True),
        "depthwise": (2, 4, 6, 6, 8, (3, 3), (2, 2), (1, 1), (1, 1), 4, True),
        "nobias": (2, 3, 5, 5, 2, (2, 2), (1, 1), (0, 0), (1, 1), 1, False),
    }
    tensors, meta = {}, {}
    for name, (n, c, h, w, k, ks, s, p, d, g, has_bias) in cases.items():
        x = rand(gen, n, c, h, w).requires_grad_()
        wt = rand(gen, k, c // g, *ks, low=-0.5, high=0.5).requires_grad_()
        b = rand(gen, k).requires_grad_() if has_bias else None
        y = F.conv2d(x, wt, b, stride=s, padding=p, dilation=d, groups=g)
        gy = rand(gen, *y.shape)
        wrt = [x, wt] + ([b] if has_bias else [])
        gs = grads(y, gy, wrt)
        tensors.update({f"{name}.input": x, f"{name}.weight": wt, f"{name}.grad_output": gy, f"{name}.output": y,
                        f"{name}.grad_input": gs[0], f"{name}.grad_weight": gs[1]})
        if has_bias:
            tensors.update({f"{name}.bias": b, f"{name}.grad_bias": gs[2]})
        meta[f"{name}.options"] = options(stride=s, pad=p, dilation=d, groups=g, bias=has_bias)
    write_safetensors("conv2d.safetensors", tensors, meta)


def linear_fixture():
    gen = torch.Generator().manual_seed(102)
    tensors, meta = {}, {}
    for name, (n, i, o, has_bias) in {"basic": (3, 7, 5, True), "nobias": (2, 4, 3, False)}.items():
        x = rand(gen, n, i).requires_grad_()
        wt = rand(gen, o, i).requires_grad_()
        b = rand(gen, o).requires_grad_() if has_bias else None
        y = F.linear(x, wt, b)
        gy = rand(gen, *y.shape)
        gs = grads(y, gy, [x, wt] + ([b] if has_bias else []))
        tensors.update({f"{name}.input": x, f"{name}.weight": wt, f"{name}.grad_output": gy, f"{name}.output": y,
                        f"{name}.grad_input": gs[0], f"{name}.grad_weight": gs[1]})
        if has_bias:
            tensors.update({f"{name}.bias": b, f"{name}.grad_bias": gs[2]})
        meta[f"{name}.options"] = options(bias=has_bias)
    write_safetensors("linear.safetensors", tensors, meta)


def pool2d_fixture():
    gen = torch.Generator().manual_seed(103)
    shapes = {  # name: (N, C, H, W, kernel, stride, pad, ceil)
        "basic": (2, 2, 6, 6, (2, 2), (2, 2), (0, 0), False),
        "ceil": (1, 2, 8, 7, (3, 3), (2, 2), (0, 0), True),
        "pad": (2, 2, 7, 7, (3, 3), (2, 2), (1, 1), False),
        "ceil_pad": (1, 3, 8, 8, (3, 3), (2, 2), (1, 1), True),
        "rect": (1, 2, 7, 9, (3, 2), (1, 2), (1, 0), True),
    }
    tensors, meta = {}, {}
    for kind in ("max", "avg"):
        for shape_name, (n, c, h, w, k, s, p, ceil) in shapes.items():
            name = f"{kind}_{shape_name}"
            x = rand(gen, n, c, h, w, low=-2, high=2).requires_grad_()
            if kind == "max":
                y = F.max_pool2d(x, k, s, p, ceil_mode=ceil)
            else:
                y = F.avg_pool2d(x, k, s, p, ceil_mode=ceil, count_include_pad=True)
            gy = rand(gen, *y.shape)
            (gx,) = grads(y, gy, [x])
            tensors.update({f"{name}.input": x, f"{name}.grad_output": gy, f"{name}.output": y, f"{name}.grad_input": gx})
            meta[f"{name}.options"] = options(kind=kind, kernel=k, stride=s, pad=p, ceil=ceil)
    write_safetensors("pool2d.safetensors", tensors, meta)


def lrn_fixture():
    gen = torch.Generator().manual_seed(104)
    cases = {  # name: (N, C, H, W, size, alpha, beta, k, input range)
        "alexnet": (2, 7, 3, 3, 5, 1e-4, 0.75, 2.0, 20.0),
        "strong": (2, 6, 2, 3, 3, 0.5, 0.75, 1.0, 2.0),
        "even": (1, 6, 3, 2, 4, 0.3, 0.6, 1.5, 2.0),
    }
    tensors, meta = {}, {}
    for name, (n, c, h, w, size, alpha, beta, k, r) in cases.items():
        x = rand(gen, n, c, h, w, low=-r, high=r).requires_grad_()
        y = F.local_response_norm(x, size, alpha, beta, k)
        gy = rand(gen, *y.shape)
        (gx,) = grads(y, gy, [x])
        tensors.update({f"{name}.input": x, f"{name}.grad_output": gy, f"{name}.output": y, f"{name}.grad_input": gx})
        meta[f"{name}.options"] = options(size=size, alpha=alpha, beta=beta, k=k)
    write_safetensors("lrn.safetensors", tensors, meta)


def batch_norm_fixture():
    gen = torch.Generator().manual_seed(105)
    tensors, meta = {}, {}
    for name, shape in {"volume": (3, 4, 3, 2), "vector": (5, 3)}.items():
        c = shape[1]
        x = rand(gen, *shape, low=-2, high=3).requires_grad_()
        gamma = rand(gen, c, low=0.5, high=1.5).requires_grad_()
        beta = rand(gen, c, low=-0.5, high=0.5).requires_grad_()
        running_mean, running_var = rand(gen, c), rand(gen, c, low=0.5, high=1.5)
        tensors.update({f"{name}.running_mean": running_mean.clone(), f"{name}.running_var": running_var.clone()})
        y = F.batch_norm(x, running_mean, running_var, gamma, beta, training=True, momentum=0.1, eps=1e-5)
        gy = rand(gen, *y.shape)
        gs = grads(y, gy, [x, gamma, beta])
        tensors.update({f"{name}.input": x, f"{name}.weight": gamma, f"{name}.bias": beta, f"{name}.output": y,
                        f"{name}.running_mean_after": running_mean, f"{name}.running_var_after": running_var,
                        f"{name}.grad_output": gy, f"{name}.grad_input": gs[0], f"{name}.grad_weight": gs[1],
                        f"{name}.grad_bias": gs[2]})
        meta[f"{name}.options"] = options(eps=1e-5, momentum=0.1)
    write_safetensors("batch_norm.safetensors", tensors, meta)


def activation_fixture():
    gen = torch.Generator().manual_seed(106)
    x = rand(gen, 2, 3, 4, 4, low=-3, high=3).requires_grad_()
    gy = rand(gen, 2, 3, 4, 4)
    cases = {
        "relu": (F.relu, options(kind="relu")),
        "leaky": (lambda t: F.leaky_relu(t, 0.1), options(kind="leaky", slope=0.1)),
        "leaky_default": (lambda t: F.leaky_relu(t, 0.01), options(kind="leaky", slope=0.01)),
        "elu": (lambda t: F.elu(t, 1.0), options(kind="elu", alpha=1.0)),
        "elu_half": (lambda t: F.elu(t, 0.5), options(kind="elu", alpha=0.5)),
        "sigmoid": (torch.sigmoid, options(kind="sigmoid")),
        "tanh": (torch.tanh, options(kind="tanh")),
    }
    tensors, meta = {"input": x, "grad_output": gy}, {}
    for name, (fn, opts) in cases.items():
        y = fn(x)
        (gx,) = grads(y, gy, [x])
        tensors.update({f"{name}.output": y, f"{name}.grad_input": gx})
        meta[f"{name}.options"] = opts
    write_safetensors("activation.safetensors", tensors, meta)


def softmax_fixture():
    gen = torch.Generator().manual_seed(107)
    tensors = {}
    for name, shape in {"vector": (3, 5), "volume": (2, 4, 2, 3)}.items():
        x = rand(gen, *shape, low=-4, high=4).requires_grad_()
        y = F.softmax(x, dim=1)
        gy = rand(gen, *shape)
        (gx,) = grads(y, gy, [x])
        tensors.update({f"{name}.input": x, f"{name}.grad_output": gy, f"{name}.output": y, f"{name}.grad_input": gx})
    write_safetensors("softmax.safetensors", tensors)


def cross_entropy_fixture():
    gen = torch.Generator().manual_seed(108)
    tensors = {}
    for name, (n, f, r) in {"basic": (4, 6, 3.0), "large": (3, 5, 50.0)}.items():
        logits = rand(gen, n, f, low=-r, high=r).requires_grad_()
        labels = torch.randint(0, f, (n,), generator=gen)
        loss = F.cross_entropy(logits, labels)
        (gl,) = torch.autograd.grad(loss, [logits])
        tensors.update({f"{name}.logits": logits, f"{name}.labels": labels, f"{name}.loss": loss.reshape(1),
                        f"{name}.grad_logits": gl})
    write_safetensors("cross_entropy.safetensors", tensors)


# ----------------------------------------------------------------------------------------------
# Whole networks: nn.Modules whose attribute names are the convnet names of the model text.


class LeNet5(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 6, 5, padding=2)
        self.c3 = nn.Conv2d(6, 16, 5)
        self.c5 = nn.Conv2d(16, 120, 5)
        self.f6 = nn.Linear(120, 84)
        self.output = nn.Linear(84, 10)

    def forward(self, x):
        x = F.avg_pool2d(torch.tanh(self.c1(x)), 2)
        x = F.avg_pool2d(torch.tanh(self.c3(x)), 2)
        x = torch.tanh(self.c5(x)).flatten(1)
        return self.output(torch.tanh(self.f6(x)))


RESNET_SMALL = """\
# A small ResNet: a basic block with an identity shortcut and one with a projection (stride 2).
network resnet_small
input 3x16x16

block basic(width, stride=1)
  residual
    conv1 conv $width 3x3 stride $stride pad 1 bias false round floor
    bn1   batchnorm
          relu
    conv2 conv $width 3x3 pad 1 bias false
    bn2   batchnorm
  downsample shortcut
    conv $width 1x1 stride $stride bias false round floor
    batchnorm
  end
  relu
end

conv1   conv 8 3x3 pad 1 bias false      # 16x16x8
bn1     batchnorm
relu    relu
layer1  basic(8)                         # 16x16x8, identity shortcut
layer2  basic(16, stride=2)              # 8x8x16, projection shortcut
avgpool globalavgpool
fc      fc 10
"""


class BasicBlock(nn.Module):
    def __init__(self, cin, width, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = None
        if stride != 1 or cin != width:
            self.downsample = nn.Sequential(nn.Conv2d(cin, width, 1, stride, bias=False), nn.BatchNorm2d(width))

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNetSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.layer1 = BasicBlock(8, 8, 1)
        self.layer2 = BasicBlock(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer2(self.layer1(F.relu(self.bn1(self.conv1(x)))))
        return self.fc(x.mean(dim=(2, 3)))


INCEPTION_SMALL = """\
# One GoogLeNet inception module (1x1, 1x1-3x3, 1x1-5x5 and maxpool-1x1 branches) and a classifier.
network inception_small
input 8x8x8

block inception(c1, r3, c3, r5, c5, pp)
  concat
    branch1 sequential
      conv $c1 1x1
      relu
    end
    branch2 sequential
      conv $r3 1x1
      relu
      conv $c3 3x3 pad 1
      relu
    end
    branch3 sequential
      conv $r5 1x1
      relu
      conv $c5 5x5 pad 2
      relu
    end
    branch4 sequential
      maxpool 3x3 stride 1 pad 1
      conv $pp 1x1
      relu
    end
  end
end

inception inception(4, 4, 6, 2, 3, 3)   # 8x8x16
avgpool   globalavgpool
fc        fc 5
"""


class Inception(nn.Module):
    def __init__(self, cin, c1, r3, c3, r5, c5, pp):
        super().__init__()
        self.branch1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.branch2 = nn.Sequential(nn.Conv2d(cin, r3, 1), nn.ReLU(), nn.Conv2d(r3, c3, 3, padding=1), nn.ReLU())
        self.branch3 = nn.Sequential(nn.Conv2d(cin, r5, 1), nn.ReLU(), nn.Conv2d(r5, c5, 5, padding=2), nn.ReLU())
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, pp, 1), nn.ReLU())

    def forward(self, x):
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.inception = Inception(8, 4, 4, 6, 2, 3, 3)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(self.inception(x).mean(dim=(2, 3)))


DENSE_SMALL = """\
# A DenseNet-BC dense block of 3 layers (growth 4, bottleneck 4 x 4) and torchvision's head.
network dense_small
input 8x8x8

block dense_layer(growth, bn_size=4)
  dense
    norm1 batchnorm
    relu1 relu
    conv1 conv $(bn_size*growth) 1x1 bias false
    norm2 batchnorm
    relu2 relu
    conv2 conv $growth 3x3 pad 1 bias false
  end
end

denseblock dense_layer(4) x3 as denselayer1   # 8x8x20
norm5      batchnorm
relu       relu
avgpool    globalavgpool
classifier fc 10
"""


class DenseLayer(nn.Module):
    def __init__(self, cin, growth, bn_size=4):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, bn_size * growth, 1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth)
        self.conv2 = nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False)

    def forward(self, x):
        y = self.conv1(F.relu(self.norm1(x)))
        return torch.cat([x, self.conv2(F.relu(self.norm2(y)))], 1)


class DenseSmall(nn.Module):
    def __init__(self):
        super().__init__()
        self.denseblock = nn.Sequential()
        for i in range(3):
            self.denseblock.add_module(f"denselayer{i + 1}", DenseLayer(8 + 4 * i, 4))
        self.norm5 = nn.BatchNorm2d(20)
        self.classifier = nn.Linear(20, 10)

    def forward(self, x):
        return self.classifier(F.relu(self.norm5(self.denseblock(x))).mean(dim=(2, 3)))


def run_net(model, x, labels):
    """Training-mode forward, mean cross-entropy and backward; returns (logits, loss, d loss / d x)."""
    model.train()
    model.zero_grad()
    x = x.clone().requires_grad_()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    return logits.detach(), loss.detach(), x.grad.detach()


def net_fixture(name, model_class, model_text, input_shape, classes, seed):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the modules' default initialisation
    model = model_class().double()
    with torch.no_grad():
        for p in model.parameters():  # round the default initialisation to float32
            p.copy_(p.float().double())
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(rand(gen, c, low=0.5, high=1.5))
                m.bias.copy_(rand(gen, c, low=-0.3, high=0.3))
                m.running_mean.copy_(rand(gen, c, low=-0.5, high=0.5))
                m.running_var.copy_(rand(gen, c, low=0.5, high=1.5))
    x = torch.randn(*input_shape, generator=gen).float().double()
    labels = torch.randint(0, classes, (input_shape[0],), generator=gen)

    tensors = {"input": x, "labels": labels}
    buffers = {k: v.clone() for k, v in model.state_dict().items() if "running_" in k}
    tensors.update({k: v.detach().clone() for k, v in model.named_parameters()})
    tensors.update(buffers)

    model32 = model_class().float()  # the same net in float32, for the tolerance guide
    model32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    logits, loss, grad_x = run_net(model, x, labels)
    tensors.update({"logits": logits, "loss": loss.reshape(1), "grad.input": grad_x})
    tensors.update({f"grad.{k}": p.grad.detach().clone() for k, p in model.named_parameters()})
    tensors.update({f"after.{k}": v.clone() for k, v in model.state_dict().items() if "running_" in k})

    logits32, _, grad_x32 = run_net(model32, x.float(), labels)
    worst = [(logits32.double() - logits).abs().max().item(), (grad_x32.double() - grad_x).abs().max().item()]
    for k, p in model32.named_parameters():
        ref = tensors[f"grad.{k}"]
        worst.append(((p.grad.double() - ref).abs() / (ref.abs() + 1e-3)).max().item())
    write_safetensors(f"{name}.safetensors", tensors, {"model": model_text, "file": f"{name}.cnet"})
    print(f"    torch float32 vs float64: logits {worst[0]:.2e}, grad.input {worst[1]:.2e}, "
          f"param grads max |d| / (|g| + 1e-3) {max(worst[2:]):.2e}")


def main():
    torch.set_default_dtype(torch.float64)
    conv2d_fixture()
    linear_fixture()
    pool2d_fixture()
    lrn_fixture()
    batch_norm_fixture()
    activation_fixture()
    softmax_fixture()
    cross_entropy_fixture()
    with open(os.path.join(ROOT, "src", "convnet", "zoo", "models", "lenet5.cnet")) as f:
        lenet_text = f.read()
    net_fixture("lenet5", LeNet5, lenet_text, (2, 1, 28, 28), 10, 201)
    net_fixture("resnet_small", ResNetSmall, RESNET_SMALL, (4, 3, 16, 16), 10, 202)
    net_fixture("inception_small", InceptionSmall, INCEPTION_SMALL, (3, 8, 8, 8), 5, 203)
    net_fixture("dense_small", DenseSmall, DENSE_SMALL, (2, 8, 8, 8), 10, 204)


if __name__ == "__main__":
    main()
