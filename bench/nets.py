# PyTorch definitions of the convnet zoo networks that bench/compare times (src/convnet/zoo/models/*.cnet).
# torchvision supplies resnet18, resnet50 and vgg16; lenet5 and resnet20's basic block come from the golden
# fixtures' generator (tests/golden/generate.py); resnet20's stages, ResNet-110 with stochastic depth and the
# lecture AlexNet are defined here.
# bench/compare checks every net against `convnet summary NAME --json` (total and per-layer parameter counts,
# input shape) and refuses to compare a net that differs.
import os
import sys

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "golden"))
import generate as golden  # noqa: E402  LeNet5 and BasicBlock, already checked against convnet there

# Input shape (C, H, W) each zoo file declares.
INPUT_SHAPES = {
    "lenet5": (1, 28, 28),
    "resnet20": (1, 28, 28),
    "resnet110-sd": (3, 32, 32),
    "alexnet": (3, 227, 227),
    "vgg16": (3, 224, 224),
    "resnet18": (3, 224, 224),
    "resnet50": (3, 224, 224),
}


def lenet5():
    """lenet5.cnet: tanh, average pooling, dense C3, padded 28x28 input (61,706 params); the golden fixtures'
    module (tests/golden/generate.py)."""
    return golden.LeNet5()


class ResNet20(nn.Module):
    """resnet20.cnet: 3 stages of 3 basic blocks (16-32-64; projection shortcut where the shape changes) on
    a 1x28x28 input, 10 classes (272,186 params)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        block = golden.BasicBlock  # (in channels, width, stride)
        self.layer1 = nn.Sequential(block(16, 16, 1), block(16, 16, 1), block(16, 16, 1))
        self.layer2 = nn.Sequential(block(16, 32, 2), block(32, 32, 1), block(32, 32, 1))
        self.layer3 = nn.Sequential(block(32, 64, 2), block(64, 64, 1), block(64, 64, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class DropPath(nn.Module):
    """convnet's droppath: in training each sample's input is zeroed with probability p, else scaled by
    1/(1 - p); the identity in evaluation."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        keep = (torch.rand(x.shape[0], 1, 1, 1, device=x.device) >= self.p).to(x.dtype)
        return x * keep / (1 - self.p)


class StochasticBlock(golden.BasicBlock):
    """The basic block with its residual branch ending in drop path, as resnet110-sd.cnet's block."""

    def __init__(self, cin, width, stride, p):
        super().__init__(cin, width, stride)
        self.drop = DropPath(p)

    def forward(self, x):
        out = self.drop(self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))
        return torch.relu(out + (self.downsample(x) if self.downsample is not None else x))


class ResNet110SD(nn.Module):
    """resnet110-sd.cnet: 3 stages of 18 basic blocks (16-32-64) on 3x32x32, block l of 54 dropping its
    residual branch with probability 0.5 * l / 54, 10 classes."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks, cin, l = [], 16, 0
        for width in (16, 32, 64):
            for i in range(18):
                l += 1
                blocks.append(StochasticBlock(cin, width, 2 if i == 0 and width != 16 else 1, 0.5 * l / 54))
                cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn1(self.conv1(x))))
        return self.fc(torch.flatten(x.mean((2, 3)), 1))


def alexnet():
    """alexnet.cnet: the lecture's one-tower AlexNet, 227x227 input, pool before LRN (size 5, alpha 1e-4,
    beta 0.75, k 2: the same formula as convnet's lrn), dropout 0.5 (62,378,344 params)."""
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2),
        nn.Flatten(),
        nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
        nn.Linear(4096, 1000))


def vgg16():
    """torchvision's vgg16 without its AdaptiveAvgPool2d(7x7), as vgg16.cnet (the identity at 224x224)."""
    import torchvision
    model = torchvision.models.vgg16(weights=None)
    model.avgpool = nn.Identity()
    return model


def resnet18():
    import torchvision
    return torchvision.models.resnet18(weights=None)


def resnet50():
    import torchvision
    return torchvision.models.resnet50(weights=None)


BUILDERS = {"lenet5": lenet5, "resnet20": ResNet20, "resnet110-sd": ResNet110SD, "alexnet": alexnet, "vgg16": vgg16,
            "resnet18": resnet18, "resnet50": resnet50}


def build(name):
    """A freshly initialised module for a zoo name (random weights: timing only)."""
    if name not in BUILDERS:
        raise KeyError(f"bench/nets.py has no PyTorch definition of '{name}' (known: {', '.join(BUILDERS)})")
    return BUILDERS[name]()


def describe(name):
    """Total parameter count, the sorted per-layer parameter counts and the input shape, for the check
    against convnet's summary (a layer here is a leaf module that holds parameters)."""
    model = build(name)
    per_layer = []
    for module in model.modules():
        if next(module.children(), None) is None:
            count = sum(p.numel() for p in module.parameters(recurse=False))
            if count:
                per_layer.append(count)
    return {"net": name, "parameters": sum(p.numel() for p in model.parameters()),
            "per_layer": sorted(per_layer), "input": list(INPUT_SHAPES[name])}
