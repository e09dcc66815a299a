# Preparation for bench/compare: dev-only packages (Debian python3-torch and python3-torchvision, npm
# onnxruntime-node into bench/node_modules), the FMA peak program, the check that each PyTorch net is the
# convnet zoo net (parameter counts and input shape), and the ONNX files (cached in bench/.cache/onnx).
import glob
import hashlib
import json
import os
import shutil
import subprocess

from compare_run import BENCH, TORCH_PYTHON, MeasureError, checked, json_line, progress, run_process

# libopenblas0-pthread: Debian's torch calls the system libblas.so.3, which is the reference BLAS without it.
APT_PACKAGES = ["python3-torch", "python3-torchvision", "libopenblas0-pthread", "dataset-fashion-mnist"]
ORT_PACKAGE = os.path.join(BENCH, "node_modules", "onnxruntime-node", "package.json")


class SetupError(Exception):
    """Something the comparison needs is missing or wrong; the message says what and how to fix it."""


def _installed(package):
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and "install ok installed" in result.stdout


def install(allowed):
    """Installs the missing apt packages and onnxruntime-node (never anything else on the machine)."""
    missing = [p for p in APT_PACKAGES if not _installed(p)]
    if shutil.which("npm") is None:
        missing += ["nodejs", "npm"]
    if missing:
        if not allowed:
            raise SetupError(f"missing Debian packages {' '.join(missing)} (run without --no-install, or "
                             f"apt-get install {' '.join(missing)})")
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        progress(f"installing Debian packages: {' '.join(missing)}")
        subprocess.run(sudo + ["apt-get", "update", "-qq"], check=True)
        subprocess.run(sudo + ["apt-get", "install", "-y", "-qq"] + missing, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if not os.path.exists(ORT_PACKAGE):
        if not allowed:
            raise SetupError("onnxruntime-node is not in bench/node_modules (run without --no-install)")
        progress("installing onnxruntime-node into bench/node_modules (npm, --ignore-scripts)")
        subprocess.run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=BENCH, check=True)
    with open(ORT_PACKAGE) as f:
        return json.load(f)["version"]


def fma_peak_binary(cache_dir):
    """Compiles bench/fma_peak.cpp for this CPU (g++ -O3 -march=native) unless the cached binary is newer."""
    source = os.path.join(BENCH, "fma_peak.cpp")
    binary = os.path.join(cache_dir, "fma_peak")
    if not os.path.exists(binary) or os.path.getmtime(binary) < os.path.getmtime(source):
        os.makedirs(cache_dir, exist_ok=True)
        cmd = ["g++", "-O3", "-march=native", "-pthread", source, "-o", binary]
        checked(cmd, run_process(cmd))
    return binary


def fma_peak(binary, threads):
    """This CPU's FP32 FMA peak in GFLOP/s with `threads` threads, measured now."""
    cmd = [binary, str(threads)]
    return json_line(cmd, run_process(cmd))


def convnet_summary(convnet, net):
    cmd = [convnet, "summary", net, "--json"]
    process = checked(cmd, run_process(cmd))
    try:
        return json.loads(process.stdout)
    except json.JSONDecodeError as e:
        raise MeasureError(f"`{' '.join(cmd)}` printed invalid JSON: {e}") from None


def check_net(convnet, net):
    """The convnet summary of net, after checking that bench/nets.py builds the same network: same total
    parameters, same per-layer parameter counts, same input shape. Raises SetupError otherwise."""
    summary = convnet_summary(convnet, net)
    layers = summary["layers"]
    ours = {"parameters": summary["totals"]["parameters"],
            "per_layer": sorted(layer["parameters"] for layer in layers if layer["parameters"] > 0),
            "input": layers[0]["output"]}
    cmd = [TORCH_PYTHON, os.path.join(BENCH, "compare_torch.py"), "describe", net]
    theirs = json_line(cmd, run_process(cmd, {"OMP_NUM_THREADS": "1"}))
    for key in ours:
        if ours[key] != theirs[key]:
            shown = (lambda v: v if key != "per_layer" else f"{len(v)} layers, {v[:6]}...")
            raise SetupError(f"{net}: bench/nets.py does not build the convnet zoo network ({key}: convnet "
                             f"{shown(ours[key])}, PyTorch {shown(theirs[key])}); refusing to compare")
    return summary


def onnx_file(net, cache_dir):
    """bench/.cache/onnx/NET-<hash of nets.py>.onnx, exported from the PyTorch module when missing."""
    with open(os.path.join(BENCH, "nets.py"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:10]
    path = os.path.join(cache_dir, "onnx", f"{net}-{digest}.onnx")
    if not os.path.exists(path):
        progress(f"exporting {net} to ONNX (opset 13) -> {os.path.relpath(path)}")
        cmd = [TORCH_PYTHON, os.path.join(BENCH, "compare_torch.py"), "export", net, path]
        json_line(cmd, run_process(cmd, {"OMP_NUM_THREADS": "2"}))
        for stale in glob.glob(os.path.join(cache_dir, "onnx", f"{net}-*.onnx")):
            if stale != path:
                os.remove(stale)  # exported from an earlier nets.py
    return path


def torch_versions():
    """{'torch': version, 'blas': [libraries]}; warns when PyTorch would run on the reference BLAS, which
    makes its convolutions that fall back to im2col + GEMM (batch 1, 1x1 and 3x3 filters) many times slower."""
    cmd = [TORCH_PYTHON, os.path.join(BENCH, "compare_torch.py"), "versions"]
    result = json_line(cmd, run_process(cmd, {"OMP_NUM_THREADS": "1"}))
    if not any("openblas" in path for path in result["blas"]):
        progress(f"warning: PyTorch loads {', '.join(result['blas']) or 'no BLAS'}, not OpenBLAS "
                 "(apt-get install libopenblas0-pthread, or select it with update-alternatives)")
    return result
