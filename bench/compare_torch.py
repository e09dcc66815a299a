# PyTorch side of bench/compare: one measurement per process, printed as one JSON line on stdout.
#   describe NET                 parameter counts and input shape (for the check against convnet)
#   export NET PATH              ONNX file (opset 13, dynamic batch) of the same module, eval mode
#   step NET --batch B [--train] median ms of an inference batch or a training step (forward + loss +
#                                backward + SGD step) after warm-up
#   epoch DATA_DIR               one LeNet-5 epoch on Fashion-MNIST (IDX .gz), batch 64, SGD: seconds
#   versions                     torch's version and the BLAS library it loaded
# The driver sets OMP_NUM_THREADS=T and OPENBLAS_NUM_THREADS=1 and passes --threads T.
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import nets  # noqa: E402


def sgd(model):
    """The optimiser of a convnet training run: SGD, momentum 0.9, weight decay 5e-4."""
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)


def time_step(args):
    model = nets.build(args.net)
    c, h, w = nets.INPUT_SHAPES[args.net]
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(args.batch, c, h, w, generator=generator)
    if args.train:
        model.train()
        optimizer = sgd(model)
        classes = model(x[:1]).shape[1]
        labels = torch.randint(0, classes, (args.batch,), generator=generator)

        def step():
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), labels).backward()
            optimizer.step()
    else:
        model.eval()

        def step():
            with torch.inference_mode():
                model(x)
    for _ in range(args.warmup):
        step()
    seconds = []
    for _ in range(args.reps):
        start = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - start)
    seconds.sort()  # the upper median, as `convnet bench` and compare_ort.js take it
    return {"ms": seconds[len(seconds) // 2] * 1e3, "min_ms": seconds[0] * 1e3, "reps": args.reps}


def read_idx(path):
    """An IDX file (gzip), as convnet reads it: big-endian header, uint8 data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def time_epoch(args):
    """convnet's `train lenet5 --batch 64` epoch: per-channel normalisation, a shuffled pass over the 60,000
    training images (the last batch partial), SGD; the seconds of the training loop only, as convnet's
    metrics.csv. The test set is then evaluated, as convnet does, so both processes hold the same data."""
    def load(prefix):
        images = read_idx(os.path.join(args.data, f"{prefix}-images-idx3-ubyte.gz")).astype(np.float32)
        images /= 255  # in place throughout: one float copy of each set, as convnet holds
        labels = read_idx(os.path.join(args.data, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64)
        return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)

    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    mean, std = train_x.mean(), train_x.std()
    for images in (train_x, test_x):
        images.sub_(mean).div_(std)
    torch.manual_seed(0)
    model = nets.build("lenet5")
    model.train()
    optimizer = sgd(model)
    start = time.perf_counter()
    order = torch.randperm(train_x.shape[0])
    for first in range(0, train_x.shape[0], 64):
        batch = order[first:first + 64]
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(train_x[batch]), train_y[batch])
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    model.eval()
    with torch.inference_mode():
        correct = sum(int((model(test_x[i:i + 256]).argmax(1) == test_y[i:i + 256]).sum())
                      for i in range(0, test_x.shape[0], 256))
    return {"ms": seconds * 1e3, "images": int(train_x.shape[0]), "test_top1": correct / test_x.shape[0]}


def export(args):
    model = nets.build(args.net).eval()
    c, h, w = nets.INPUT_SHAPES[args.net]
    os.makedirs(os.path.dirname(os.path.abspath(args.path)), exist_ok=True)
    partial = args.path + ".partial"
    torch.onnx.export(model, torch.randn(1, c, h, w), partial, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    os.replace(partial, args.path)
    return {"path": args.path}


def versions():
    """torch's version and the BLAS library this process loaded (Debian's torch calls the system
    libblas.so.3: reference BLAS unless an optimised one such as OpenBLAS provides it)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    with open("/proc/self/maps") as f:
        libraries = {line.split()[-1] for line in f if "blas" in line.split("/")[-1].lower()}
    return {"blas": sorted(os.path.realpath(p) for p in libraries)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["describe", "export", "step", "epoch", "versions"])
    parser.add_argument("target", nargs="?", help="a net name (describe, export, step) or the data folder (epoch)")
    parser.add_argument("path", nargs="?", help="export: the ONNX file to write")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    args.net = args.data = args.target
    if args.command == "versions":
        result = versions()
    elif args.command == "describe":
        result = nets.describe(args.net)
    elif args.command == "export":
        result = export(args)
    elif args.command == "step":
        result = time_step(args)
    else:
        result = time_epoch(args)
    result["torch"] = torch.__version__
    print(json.dumps(result))


if __name__ == "__main__":
    main()
