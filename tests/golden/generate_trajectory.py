#!/usr/bin/python3
"""LeNet-5 training trajectory fixture: 10 SGD steps on one fixed batch, computed by PyTorch.

Run by hand with Debian's python3-torch (under pyenv use /usr/bin/python3):

    /usr/bin/python3 tests/golden/generate_trajectory.py

Writes tests/golden/lenet5_trajectory.safetensors holding a batch of 8 1x28x28 images with labels
and the loss before each of 10 steps of SGD (lr 0.01, momentum 0.9, weight decay 5e-4: the notes'
recipe), computed in float64. To keep the fixture small the initial parameters are not stored:
both sides compute them from the formula in initial_value() (element i of a tensor with fan-in n:
sin(1.7 i + 0.3 t) / sqrt(n), t the tensor's index in state_dict order).
tests/trajectory_test.cpp runs the same steps with convnet's optimiser and compares the losses.
"""
import os

import torch

from generate import LeNet5, write_safetensors

HERE = os.path.dirname(os.path.abspath(__file__))


def initial_value(index, fan_in, tensor_index):
    return torch.sin(1.7 * index.double() + 0.3 * tensor_index) / fan_in ** 0.5


def main():
    torch.manual_seed(301)
    model = LeNet5().double()
    with torch.no_grad():
        for t, (name, p) in enumerate(model.state_dict().items()):
            fan_in = p.numel() // p.shape[0] if p.dim() > 1 else model.state_dict()[name[:-4] + "weight"][0].numel()
            values = initial_value(torch.arange(p.numel()), fan_in, t).float().double()  # float32-exact
            p.copy_(values.reshape(p.shape))
    images = (torch.rand(8, 1, 28, 28, dtype=torch.float64) * 2 - 1).float().double()
    labels = torch.randint(0, 10, (8,))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    losses = []
    for _ in range(10):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(images), labels)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    tensors = {"input": images.float()}
    tensors["labels"] = labels
    tensors["losses"] = torch.tensor(losses, dtype=torch.float32)
    write_safetensors("lenet5_trajectory.safetensors", tensors,
                      {"optimizer": "sgd lr=0.01 momentum=0.9 weight_decay=5e-4", "steps": 10})
    print("losses:", " ".join(f"{x:.6f}" for x in losses))


if __name__ == "__main__":
    main()
