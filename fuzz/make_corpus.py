#!/usr/bin/env python3
"""Writes the generated seed inputs of the libFuzzer targets into fuzz/corpus/<target>/.

The seeds are small valid files (and a few near-misses) of each format, in the layout each
target expects (see the header comment of fuzz/<target>_fuzzer.cpp). scripts/fuzz adds the
project's fixtures (tests/data/*.cnet, the zoo, small golden safetensors) at run time.
Run it again after changing a target's input layout; it uses only the Python standard library.
"""
import gzip
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")


def put_safetensors(target, name, data):
    """Both layouts of fuzz_common.hpp's safetensors_file: the file as is, and header NUL data."""
    put(target, name, b"\x00" + data)
    header_size = struct.unpack("<Q", data[:8])[0]
    put(target, name + "-split", b"\x01" + data[8:8 + header_size] + b"\x00" + data[8 + header_size:])


def put(target, name, data):
    os.makedirs(os.path.join(CORPUS, target), exist_ok=True)
    with open(os.path.join(CORPUS, target, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# ---- IDX: flags, uint32 LE image-file length, image file, label file ----

def idx_images(count, height, width):
    pixels = bytes((i * 37) % 256 for i in range(count * height * width))
    return struct.pack(">IIII", 0x803, count, height, width) + pixels


def idx_labels(labels):
    return struct.pack(">II", 0x801, len(labels)) + bytes(labels)


def idx_input(images, labels, flags=0):
    return bytes([flags]) + struct.pack("<I", len(images)) + images + labels


def idx_seeds():
    put("idx", "plain", idx_input(idx_images(3, 4, 4), idx_labels([0, 9, 3])))
    put("idx", "named", idx_input(idx_images(2, 2, 3), idx_labels([1, 2]), flags=1))
    put("idx", "gzip", idx_input(gz(idx_images(4, 5, 5)), gz(idx_labels([0, 1, 2, 3]))))
    put("idx", "count-mismatch", idx_input(idx_images(2, 2, 2), idx_labels([0])))
    put("idx", "label-range", idx_input(idx_images(1, 2, 2), idx_labels([200]), flags=1))


# ---- CIFAR: flags (bit 0 CIFAR-100, bit 1 class names), batch file ----

def cifar_record(label, fine=None):
    head = bytes([label]) if fine is None else bytes([label, fine])
    return head + bytes((i * 11) % 256 for i in range(3072))


def cifar_seeds():
    put("cifar", "cifar10", bytes([2]) + cifar_record(7))
    put("cifar", "cifar10-gzip", bytes([0]) + gz(cifar_record(1) + cifar_record(9)))
    put("cifar", "cifar100-gzip", bytes([1]) + gz(cifar_record(19, 99) + cifar_record(0, 5)))
    put("cifar", "truncated", bytes([0]) + cifar_record(3)[:100])


# ---- images: flags (bit 0 grey, bits 1-2 size), image file ----

def png(width, height, color_type, bit_depth, rows, extra=b"", interlace=0):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, interlace)
    raw = b"".join(b"\x00" + row for row in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def image_seeds():
    grey = [bytes((x * 40 + y * 7) % 256 for x in range(4)) for y in range(4)]
    put("image", "grey.png", bytes([1]) + png(4, 4, 0, 8, grey))
    rgb = [bytes((x * 30 + y * 50 + c * 80) % 256 for x in range(3) for c in range(3)) for y in range(2)]
    put("image", "rgb.png", bytes([2]) + png(3, 2, 2, 8, rgb))
    rgba = [bytes((x + c * 60) % 256 for x in range(2) for c in range(4)) for _ in range(2)]
    put("image", "rgba.png", bytes([4]) + png(2, 2, 6, 8, rgba))
    grey_alpha = [bytes([10, 255, 200, 0])]
    put("image", "grey-alpha.png", bytes([1]) + png(2, 1, 4, 8, grey_alpha))
    plte = struct.pack(">I", 9) + b"PLTE" + bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
    plte += struct.pack(">I", zlib.crc32(b"PLTE" + bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])))
    trns = struct.pack(">I", 1) + b"tRNS" + b"\x80" + struct.pack(">I", zlib.crc32(b"tRNS\x80"))
    put("image", "palette.png", bytes([6]) + png(3, 1, 3, 8, [bytes([0, 1, 2])], extra=plte + trns))
    put("image", "grey16.png", bytes([3]) + png(2, 2, 0, 16, [bytes([1, 0, 255, 255])] * 2))
    put("image", "grey1bit.png", bytes([1]) + png(8, 1, 0, 1, [bytes([0b10110010])]))
    put("image", "interlaced.png", bytes([0]) + png(1, 1, 2, 8, [bytes([9, 99, 199])], interlace=1))
    put("image", "grey.pgm", bytes([1]) + b"P5\n3 2\n255\n" + bytes([0, 50, 100, 150, 200, 250]))
    put("image", "rgb.ppm", bytes([0]) + b"P6\n1 2\n255\n" + bytes([1, 2, 3, 4, 5, 6]))
    bmp_pixels = bytes([0, 0, 255, 0, 255, 0, 0, 0])  # two 24-bit BGR pixels, the row padded to 8 bytes
    bmp = b"BM" + struct.pack("<IHHI", 54 + len(bmp_pixels), 0, 0, 54)
    bmp += struct.pack("<IiiHHIIiiII", 40, 2, 1, 1, 24, 0, len(bmp_pixels), 2835, 2835, 0, 0) + bmp_pixels
    put("image", "rgb.bmp", bytes([0]) + bmp)


# ---- safetensors and checkpoints ----

def safetensors(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, values)."""
    header, data = {}, b""
    for name, dtype, shape, values in tensors:
        fmt = {"F32": "<%df", "F64": "<%dd", "I64": "<%dq"}[dtype] % len(values)
        body = struct.pack(fmt, *values)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(body)]}
        data += body
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(len(text) + 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def values(n, scale=0.1):
    return [((i * 7) % 11 - 5) * scale for i in range(n)]


# The network of safetensors_fuzzer.cpp.
SMALL_NET = "network fuzz_small\ninput 1x6x6\nconv1 conv 2 3x3 pad 1\nbn1 batchnorm\nrelu\nfc fc 3\n"
SMALL_PARAMS = [("conv1.weight", [2, 1, 3, 3]), ("conv1.bias", [2]), ("bn1.weight", [2]), ("bn1.bias", [2]),
                ("bn1.running_mean", [2]), ("bn1.running_var", [2]), ("bn1.num_batches_tracked", []),
                ("fc.weight", [3, 72]), ("fc.bias", [3])]

# A second checkpoint network: a residual block with a projection, pooling and dropout.
RESIDUAL_NET = """network fuzz_residual
input 3x7x7
block basic(width, stride=1)
  residual
    conv1 conv $width 3x3 stride $stride pad 1 bias false
    bn1 batchnorm
    relu
  shortcut
    conv $width 1x1 stride $stride bias false
  end
  relu
end
stem conv 4 3x3 pad 1
layer1 basic(6, stride=2)
pool maxpool 2x2
drop dropout p 0.2
fc fc 2
"""
RESIDUAL_PARAMS = [("stem.weight", [4, 3, 3, 3]), ("stem.bias", [4]), ("layer1.conv1.weight", [6, 4, 3, 3]),
                   ("layer1.bn1.weight", [6]), ("layer1.bn1.bias", [6]), ("layer1.bn1.running_mean", [6]),
                   ("layer1.bn1.running_var", [6]), ("layer1.bn1.num_batches_tracked", []),
                   ("layer1.3.weight", [6, 4, 1, 1]), ("fc.weight", [2, 24]), ("fc.bias", [2])]


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def weight_tensors(params, dtype="F32"):
    return [(name, dtype, shape, values(numel(shape))) for name, shape in params]


def checkpoint(model, network, params, classes, input_shape, momentum=True):
    meta = {"model": model, "network": network, "epoch": 1, "step": 4,
            "normalization": {"mode": "per_channel", "mean": [0.5] * input_shape[0], "std": [0.25] * input_shape[0]},
            "class_names": classes, "input_shape": input_shape}
    tensors = weight_tensors(params)
    if momentum:
        tensors += [("optimizer.momentum." + name, "F32", shape, values(numel(shape), 0.01)) for name, shape in params
                    if not name.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    return safetensors(tensors, {"format": "pt", "convnet": json.dumps(meta)})


def safetensors_seeds():
    put_safetensors("safetensors", "checkpoint",
                    checkpoint(SMALL_NET, "fuzz_small", SMALL_PARAMS, ["a", "b", "c"], [1, 6, 6]))
    put_safetensors("safetensors", "weights", safetensors(weight_tensors(SMALL_PARAMS), {"format": "pt"}))
    mixed = weight_tensors(SMALL_PARAMS)
    mixed[6] = ("bn1.num_batches_tracked", "I64", [], [12])
    mixed[0] = ("conv1.weight", "F64", [2, 1, 3, 3], values(18))
    put_safetensors("safetensors", "mixed-dtypes", safetensors(mixed))
    wrong = weight_tensors(SMALL_PARAMS)
    wrong[7] = ("fc.weight", "F32", [72, 3], values(216))
    put_safetensors("safetensors", "wrong-shape", safetensors(wrong + [("extra", "F32", [1], [1.0])]))
    # One value for a 2^32-element shape: the offsets disagree with the shape; a step from overflow.
    put_safetensors("safetensors", "large-dims", safetensors([("big", "F32", [65536, 65536], [0.0])]))


def checkpoint_seeds():
    put_safetensors("checkpoint", "small",
                    checkpoint(SMALL_NET, "fuzz_small", SMALL_PARAMS, ["a", "b", "c"], [1, 6, 6], momentum=False))
    put_safetensors("checkpoint", "residual", checkpoint(RESIDUAL_NET, "fuzz_residual", RESIDUAL_PARAMS, ["no", "yes"],
                                                         [3, 7, 7], momentum=False))


def main():
    idx_seeds()
    cifar_seeds()
    image_seeds()
    safetensors_seeds()
    checkpoint_seeds()


if __name__ == "__main__":
    main()
