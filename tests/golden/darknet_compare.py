#!/usr/bin/env python3
"""Compares convnet's Darknet import with Debian's darknet (a development reference, like PyTorch).

volumes: for each classification cfg of /usr/share/darknet/cfg, darknet's layer table (printed by
  libdarknet's parse_network_cfg) against `convnet summary CFG --json`, layer by layer through the
  '# [N]' comments `convnet import` writes.
fixtures: for tests/data/darknet/{mixed,pool}.cfg, random weights (seeded, positive variances) are
  loaded into darknet, which saves them (NAME.weights, written by darknet) and runs an input;
  NAME-io.safetensors keeps the input and darknet's output for tests/darknet_test.cpp, and convnet's
  `forward` is compared with it here.

Needs `apt-get install darknet` and a built convnet (--convnet, default build/convnet).
Usage: tests/golden/darknet_compare.py [volumes] [fixtures] [--convnet PATH]
"""
import argparse
import ctypes
import json
import os
import random
import re
import struct
import subprocess
import sys
import tempfile

LIB = "/usr/lib/darknet/libdarknet.so"
CFG_DIR = "/usr/share/darknet/cfg"
CFGS = ["alexnet", "vgg-16", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50",
        "resnext101-32x4d", "resnext152-32x4d", "densenet201", "darknet", "darknet19", "darknet53",
        "extraction", "tiny", "cifar", "strided"]
HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "data", "darknet")

# Runs in a child process: darknet prints its table on stderr while parsing.
TABLE_CHILD = """
import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
lib.parse_network_cfg.restype = ctypes.c_void_p
lib.parse_network_cfg(sys.argv[2].encode())
"""


def darknet_table(cfg):
    """{layer index: ('image', w, h, c) or ('count', n)}; a route's volume is the next layer's input."""
    run = subprocess.run([sys.executable, "-c", TABLE_CHILD, LIB, cfg], capture_output=True, text=True)
    rows = {}
    inputs = {}
    for line in run.stderr.splitlines():
        m = re.match(r"\s*(\d+)\s+(\S+)(.*)$", line)
        if not m:
            continue
        index, kind, rest = int(m.group(1)), m.group(2), m.group(3)
        if kind == "Crop":
            c = re.search(r"->\s*(\d+) x (\d+) x (\d+)", rest)
            rows[index] = ("image", int(c.group(1)), int(c.group(2)), int(c.group(3)))
            continue
        volumes = re.findall(r"(\d+) x\s*(\d+) x\s*(\d+)", rest)
        if volumes:
            inputs[index] = tuple(int(v) for v in volumes[0])
        if kind == "route":
            rows[index] = None
            continue
        if "->" in rest:
            right = rest.split("->")[1]
            v = re.search(r"(\d+) x\s*(\d+) x\s*(\d+)", right)
            rows[index] = ("image",) + tuple(int(x) for x in v.groups()) if v else ("count", int(right.split()[0]))
        elif rest.split() and rest.split()[-1].isdigit():
            rows[index] = ("count", int(rest.split()[-1]))
    for index, row in rows.items():
        if row is None and index + 1 in inputs:
            rows[index] = ("image",) + inputs[index + 1]
    return rows, run.stderr


def convnet_nodes(convnet, cfg, workdir):
    """{layer index: node name} from the '# [N]' comments of the imported model file."""
    out = os.path.join(workdir, os.path.basename(cfg))
    subprocess.run([convnet, "import", cfg, "-o", out], check=True, capture_output=True)
    nodes = {}
    for line in open(os.path.join(out, "model.cnet")):
        m = re.search(r"# \[(\d+)\] \S+(?: \(ramp[^)]*\))?(?: \((\w+)\))?", line)
        if m and not line.startswith("#"):
            words = line.split()
            nodes[int(m.group(1))] = m.group(2) if words[0] == "end" else words[0]
    return nodes


def compare_volumes(convnet):
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in CFGS:
            cfg = os.path.join(CFG_DIR, name + ".cfg")
            table, _ = darknet_table(cfg)
            summary = subprocess.run([convnet, "summary", cfg, "--json"], capture_output=True, text=True)
            if summary.returncode != 0:
                results.append((name, False, summary.stderr.strip()))
                continue
            shapes = {layer["name"]: layer["output"] for layer in json.loads(summary.stdout)["layers"]}
            nodes = convnet_nodes(convnet, cfg, workdir)
            problems = []
            for index in sorted(table):
                row = table[index]
                node = nodes.get(index, "input" if index == 0 else None)
                if node is None:  # a layer without lines (cost): its output is the layer before's
                    node = nodes.get(max(k for k in nodes if k < index))
                shape = shapes[node]
                if row[0] == "image":
                    ok = shape == [row[3], row[2], row[1]]
                else:
                    ok = eval("*".join(str(d) for d in shape)) == row[1]
                if not ok:
                    problems.append(f"layer {index}: darknet {row[1:]} convnet {node} {shape}")
            results.append((name, not problems, f"{len(table)} layers" if not problems else "; ".join(problems[:5])))
    for name, ok, detail in results:
        print(f"{'MATCH   ' if ok else 'DIFFER  '} {name:18} {detail}")
    return all(ok for _, ok, _ in results)


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, (shape, values) in tensors.items():
        data = struct.pack(f"<{len(values)}f", *values)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def read_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        out[name] = list(struct.unpack(f"<{(b - a) // 4}f", data[8 + n + a:8 + n + b]))
    return out


def cfg_sections(cfg):
    """[(type, {key: value})] after [net], read as darknet does (whitespace dropped, '#'/';' comments)."""
    sections = []
    for line in open(cfg):
        line = "".join(line.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            sections.append((line[1:-1], {}))
        else:
            key, value = line.split("=", 1)
            sections[-1][1][key] = value
    return sections[1:]


def weight_runs(cfg, table):
    """The .weights layout, computed here independently of convnet: [(count, is_rolling_variance)]."""
    runs = []
    volume = None  # (c, h, w) entering the layer
    for index, (kind, keys) in enumerate(cfg_sections(cfg)):
        row = table.get(index)
        bn = keys.get("batch_normalize", "0") == "1"
        if kind in ("convolutional", "conv"):
            n, size, groups = int(keys["filters"]), int(keys.get("size", 1)), int(keys.get("groups", 1))
            c = table_input_depth(cfg, index)
            runs.append((n, False))
            if bn:
                runs += [(n, False), (n, False), (n, True)]
            runs.append((n * c // groups * size * size, False))
        elif kind in ("connected", "conn"):
            inputs = table_connected_inputs(cfg, index)
            outputs = int(keys["output"])
            runs += [(outputs, False), (outputs * inputs, False)]
            if bn:
                runs += [(outputs, False), (outputs, False), (outputs, True)]
        elif kind == "local":
            _, h, w, c = table[index - 1]
            _, oh, ow, n = row
            size = int(keys["size"])
            runs += [(oh * ow * n, False), (oh * ow * n * c * size * size, False)]
    return runs


def table_line(cfg, index):
    _, stderr = darknet_table(cfg)
    for line in stderr.splitlines():
        if re.match(rf"\s*{index}\s", line):
            return line
    raise SystemExit(f"no darknet table line for layer {index} of {cfg}")


def table_input_depth(cfg, index):
    return int(re.findall(r"(\d+) x\s*(\d+) x\s*(\d+)", table_line(cfg, index))[0][2])


def table_connected_inputs(cfg, index):
    return int(re.search(r"(\d+)\s+->", table_line(cfg, index)).group(1))


def make_fixture(convnet, name, outputs):
    cfg = os.path.join(FIXTURES, name + ".cfg")
    weights = os.path.join(FIXTURES, name + ".weights")
    rng = random.Random(name)
    table, _ = darknet_table(cfg)
    values = []
    for count, variance in weight_runs(cfg, table):
        values += [rng.uniform(0.5, 1.5) if variance else rng.uniform(-1, 1) for _ in range(count)]
    with tempfile.TemporaryDirectory() as workdir:
        raw = os.path.join(workdir, "random.weights")
        with open(raw, "wb") as f:
            f.write(struct.pack("<iiiq", 0, 2, 0, 0) + struct.pack(f"<{len(values)}f", *values))
        lib = ctypes.CDLL(LIB)
        lib.parse_network_cfg.restype = ctypes.c_void_p
        lib.network_predict.restype = ctypes.POINTER(ctypes.c_float)
        lib.network_predict.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float)]
        net = lib.parse_network_cfg(cfg.encode())
        lib.load_weights(ctypes.c_void_p(net), raw.encode())
        lib.save_weights(ctypes.c_void_p(net), weights.encode())  # the fixture: written by darknet
        text = open(cfg).read()
        shape = [int(re.search(k + r"=(\d+)", text).group(1)) for k in ("channels", "height", "width")]
        pixels = [rng.uniform(0, 1) for _ in range(shape[0] * shape[1] * shape[2])]
        out = lib.network_predict(ctypes.c_void_p(net), (ctypes.c_float * len(pixels))(*pixels))
        result = [out[i] for i in range(outputs)]
    write_safetensors(os.path.join(FIXTURES, name + "-io.safetensors"),
                      {"input": ([1] + shape, pixels), "output": ([1, outputs], result)})
    ok = True
    with tempfile.TemporaryDirectory() as workdir:
        images = os.path.join(workdir, "images.safetensors")
        write_safetensors(images, {"input": ([1] + shape, pixels)})
        for backend in ([], ["--reference"]):
            mine = os.path.join(workdir, "out.safetensors")
            subprocess.run([convnet, "forward", cfg, "--weights", weights, "--images", images, "--out", mine] + backend,
                           check=True)
            ours = read_safetensors(mine)["output"]
            worst = max(abs(a - b) / max(abs(b), 1e-6) for a, b in zip(ours, result))
            print(f"{name}: darknet {' '.join('%.7f' % v for v in result)}")
            print(f"{name}: convnet {' '.join('%.7f' % v for v in ours)} ({'reference' if backend else 'oneDNN'}, "
                  f"max relative error {worst:.2e})")
            ok &= worst < 1e-4
    return ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", nargs="*", default=["volumes", "fixtures"])
    parser.add_argument("--convnet", default=os.path.join(HERE, "..", "..", "build", "convnet"))
    a = parser.parse_args()
    ok = True
    if "volumes" in a.what:
        ok &= compare_volumes(a.convnet)
    if "fixtures" in a.what:
        ok &= make_fixture(a.convnet, "mixed", 5)
        ok &= make_fixture(a.convnet, "pool", 5)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
