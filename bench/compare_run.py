# Rows of bench/compare and how one measurement of one framework runs: each in its own process, whose peak
# RSS comes from wait4's rusage, with the thread settings of that framework.
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

BENCH = os.path.dirname(os.path.abspath(__file__))
TORCH_PYTHON = "/usr/bin/python3"  # Debian's python3-torch is installed for the system interpreter
FRAMEWORKS = ("convnet", "pytorch", "onnxruntime")
PRECISIONS = ("convnet-bf16", "convnet-int8")  # convnet's reduced-precision inference (--precision)
EPOCH_IMAGES = 60000


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    net: str
    batch: int
    train: bool = False
    epoch: bool = False  # a whole LeNet-5 epoch on Fashion-MNIST instead of a timed step

    def frameworks(self):
        if not self.train:
            return FRAMEWORKS + PRECISIONS
        return FRAMEWORKS[:2] + (() if self.epoch else PRECISIONS[:1])  # bf16 training: timed steps only

    def images(self):
        return EPOCH_IMAGES if self.epoch else self.batch


ROWS = [
    Row("lenet5-train-b64", "LeNet-5 training step b64", "lenet5", 64, train=True),
    Row("lenet5-epoch", "LeNet-5 Fashion-MNIST epoch b64", "lenet5", 64, train=True, epoch=True),
    Row("resnet20-train-b128", "ResNet-20 training step b128", "resnet20", 128, train=True),
    Row("resnet110sd-train-b128", "ResNet-110 stochastic depth training step b128", "resnet110-sd", 128, train=True),
    Row("alexnet-infer-b1", "AlexNet (lecture) inference b1", "alexnet", 1),
    Row("alexnet-infer-b32", "AlexNet (lecture) inference b32", "alexnet", 32),
    Row("alexnet-train-b32", "AlexNet (lecture) training step b32", "alexnet", 32, train=True),
    Row("vgg16-infer-b1", "VGG16 inference b1", "vgg16", 1),
    Row("vgg16-infer-b8", "VGG16 inference b8", "vgg16", 8),
    Row("resnet18-infer-b1", "ResNet-18 inference b1", "resnet18", 1),
    Row("resnet50-infer-b1", "ResNet-50 inference b1", "resnet50", 1),
    Row("resnet50-infer-b16", "ResNet-50 inference b16", "resnet50", 16),
    Row("resnet50-train-b16", "ResNet-50 training step b16", "resnet50", 16, train=True),
]
QUICK_ROWS = ["lenet5-train-b64", "resnet20-train-b128", "alexnet-infer-b1", "resnet18-infer-b1"]


class MeasureError(Exception):
    """A measurement process failed; the message names the command and carries its last output."""


@dataclass
class Process:
    returncode: int
    stdout: str
    stderr: str
    peak_rss_mb: float  # decimal MB, from ru_maxrss (KiB on Linux)


def run_process(cmd, env_extra=None, cwd=None):
    """Runs cmd to completion in its own process and returns its output and peak RSS."""
    env = dict(os.environ, **(env_extra or {}))
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Process(child.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace"),
                       usage.ru_maxrss * 1024 / 1e6)


def checked(cmd, process):
    if process.returncode != 0:
        tail = "\n".join((process.stderr or process.stdout).strip().splitlines()[-6:])
        raise MeasureError(f"`{' '.join(cmd)}` exited with {process.returncode}:\n{tail}")
    return process


def json_line(cmd, process):
    """The last line of a worker's stdout, which is its JSON result."""
    checked(cmd, process)
    try:
        return json.loads(process.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise MeasureError(f"`{' '.join(cmd)}` printed no JSON result:\n{process.stdout[-500:]}") from None


def torch_env(threads):
    return {"OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": str(threads)}


class Runner:
    """Knows the binaries and settings of one comparison run and measures (row, framework, threads)."""

    def __init__(self, convnet, reps, warmup, data_dir, onnx_files, input_shapes, cache_dir):
        self.convnet = convnet
        self.input_shapes = input_shapes  # net -> [C, H, W], checked equal in convnet and nets.py
        self.reps = reps
        self.warmup = warmup
        self.data_dir = data_dir
        self.onnx_files = onnx_files  # net -> path
        self.cache_dir = cache_dir

    def measure(self, row, framework, threads):
        """{'ms': milliseconds per batch (per epoch for an epoch row), 'rss_mb': peak RSS of the process}."""
        method = {"convnet": self._convnet, "pytorch": self._pytorch, "onnxruntime": self._onnxruntime,
                  "convnet-bf16": lambda r, t: self._convnet(r, t, "bf16"),
                  "convnet-int8": lambda r, t: self._convnet(r, t, "int8")}[framework]
        ms, process = method(row, threads)
        return {"ms": ms, "rss_mb": process.peak_rss_mb}

    def _convnet(self, row, threads, precision="f32"):
        env = {"OMP_NUM_THREADS": str(threads)}
        if row.epoch:
            return self._convnet_epoch(row, threads, env)
        # --emulate: measure a precision even where this CPU has no fast instructions for it.
        cmd = [self.convnet, "bench", row.net, "--batch", str(row.batch), "--threads", str(threads),
               "--reps", str(self.reps), "--warmup", str(self.warmup), "--precision", precision, "--emulate"] + \
            (["--train"] if row.train else [])
        process = checked(cmd, run_process(cmd, env))
        match = re.search(r"([0-9.]+) ms per batch \(median", process.stdout)
        if not match:
            raise MeasureError(f"`{' '.join(cmd)}` printed no 'ms per batch (median' line:\n{process.stdout[-500:]}")
        return float(match.group(1)), process

    def _convnet_epoch(self, row, threads, env):
        os.makedirs(self.cache_dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix="epoch-", dir=self.cache_dir)
        try:
            out = os.path.join(workdir, "run")
            cmd = [self.convnet, "train", row.net, "--data", self.data_dir, "--epochs", "1", "--batch",
                   str(row.batch), "--lr", "0.01", "--momentum", "0.9", "--weight-decay", "5e-4", "--schedule",
                   "constant", "--validation", "0", "--threads", str(threads), "--out", out]
            process = checked(cmd, run_process(cmd, env))
            with open(os.path.join(out, "metrics.csv"), newline="") as f:
                rows = list(csv.DictReader(f))
            if not rows:
                raise MeasureError(f"`{' '.join(cmd)}` wrote an empty metrics.csv")
            return float(rows[-1]["seconds"]) * 1e3, process
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _pytorch(self, row, threads):
        script = os.path.join(BENCH, "compare_torch.py")
        if row.epoch:
            cmd = [TORCH_PYTHON, script, "epoch", self.data_dir, "--threads", str(threads)]
        else:
            cmd = [TORCH_PYTHON, script, "step", row.net, "--batch", str(row.batch), "--threads", str(threads),
                   "--reps", str(self.reps), "--warmup", str(self.warmup)] + (["--train"] if row.train else [])
        process = run_process(cmd, torch_env(threads))
        return json_line(cmd, process)["ms"], process

    def _onnxruntime(self, row, threads):
        cmd = ["node", os.path.join(BENCH, "compare_ort.js"), self.onnx_files[row.net], "--batch", str(row.batch),
               "--input", ",".join(map(str, self.input_shapes[row.net])), "--threads", str(threads),
               "--reps", str(self.reps), "--warmup", str(self.warmup)]
        process = run_process(cmd, {"OMP_NUM_THREADS": str(threads)})
        return json_line(cmd, process)["ms"], process


def progress(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
