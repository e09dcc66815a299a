# The markdown report of bench/compare: the settings and notes, one table row per (row, threads) with the
# medians over rounds, and every round's raw numbers below it.
import statistics

NAMES = {"convnet": "convnet", "pytorch": "PyTorch", "onnxruntime": "onnxruntime", "convnet-bf16": "convnet bf16",
         "convnet-int8": "convnet int8"}
EXTRAS = ("convnet-bf16", "convnet-int8")  # reduced precisions: columns only when the run measured them


def median(values):
    """The median over rounds (the mean of the middle two for an even count), None for no values."""
    return statistics.median(values) if values else None


def _number(value, digits=1):
    return "—" if value is None else f"{value:,.{digits}f}"


def _triple(values, digits=0):
    return " / ".join(_number(v, digits) for v in values)


def row_cells(row, threads, results, flops_per_image, peak_gflops, extras=()):
    """One table line. results: framework -> list of {'ms', 'rss_mb'} or an error string per round; extras: the
    reduced-precision frameworks the run measured (a column of ms and two ratios each)."""
    ms, rss, gflops, share, images_per_s = {}, {}, {}, {}, {}
    flops = flops_per_image * row.images() * (3 if row.train else 1)
    for fw in ("convnet", "pytorch", "onnxruntime") + tuple(extras):
        good = [r for r in results.get(fw, []) if isinstance(r, dict)]
        ms[fw] = median([r["ms"] for r in good])
        rss[fw] = median([r["rss_mb"] for r in good])
        images_per_s[fw] = row.images() / (ms[fw] / 1e3) if ms[fw] else None
        gflops[fw] = flops / (ms[fw] / 1e3) / 1e9 if ms[fw] else None
        share[fw] = 100 * gflops[fw] / peak_gflops if gflops[fw] is not None and peak_gflops else None

    def speedup(other, fw="convnet"):
        if ms[fw] is None or ms[other] is None:
            return "—"
        return f"{ms[other] / ms[fw]:.2f}×"

    order = ("convnet", "pytorch", "onnxruntime")
    extra_cells = []
    for fw in extras:
        extra_cells += [_number(ms[fw]), speedup("convnet", fw), speedup("onnxruntime", fw)]
    return [row.title, str(threads)] + [_number(ms[fw]) for fw in order] + \
        [_number(images_per_s[fw]) for fw in order] + [speedup("pytorch"), speedup("onnxruntime")] + \
        [_triple([gflops[fw] for fw in order], 1), _triple([share[fw] for fw in order], 0),
         _triple([rss[fw] for fw in order], 0)] + extra_cells


HEADER = ["row", "T", "convnet ms", "PyTorch ms", "onnxruntime ms", "convnet img/s", "PyTorch img/s",
          "onnxruntime img/s", "convnet vs PyTorch", "convnet vs onnxruntime", "GFLOP/s cn / PT / ORT",
          "% of FMA peak cn / PT / ORT", "peak RSS MB cn / PT / ORT"]


def header(extras=()):
    """HEADER and, per reduced precision measured, its ms and its speed against convnet f32 and onnxruntime."""
    out = list(HEADER)
    for fw in extras:
        out += [f"{NAMES[fw]} ms", f"{NAMES[fw]} vs convnet f32", f"{NAMES[fw]} vs onnxruntime"]
    return out


def table(lines, extras=()):
    head = header(extras)
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out)


def raw_section(measured):
    """Every round's ms (and peak RSS) per framework, so the spread behind each median is visible."""
    out = ["### Every round (ms per batch or epoch, peak RSS MB in brackets)", ""]
    for (row, threads), results in measured:
        parts = []
        for fw, rounds in results.items():
            shown = [f"{r['ms']:,.1f} ({r['rss_mb']:,.0f})" if isinstance(r, dict) else f"FAILED: {r}"
                     for r in rounds]
            parts.append(f"{NAMES[fw]}: " + ", ".join(shown))
        out.append(f"- {row.title}, T={threads}: " + "; ".join(parts))
    return "\n".join(out)


def preamble(settings):
    s = settings
    peaks = ", ".join(f"T={t}: {p:,.1f} GFLOP/s" for t, p in s["peaks"].items())
    return "\n".join([
        f"## bench/compare run, {s['date']}",
        "",
        f"- Machine: {s['cpu']}, {s['cores']} logical cores, 1-minute load average {s['load'][0]:.1f} at the "
        f"start and {s['load'][1]:.1f} at the end (above 0 means other work shared the CPU). "
        f"Threads T: {', '.join(map(str, s['threads']))}.",
        f"- convnet {s['convnet_version']} (`{s['convnet']}`), PyTorch {s['torch']} (Debian; BLAS "
        f"{', '.join(s['blas']) or 'none loaded'}), "
        f"onnxruntime-node {s['onnxruntime']} (npm, CPU provider, ONNX opset 13 exported by PyTorch).",
        f"- {s['rounds']} interleaved rounds (each round runs every framework once per row, in a rotating "
        f"order); each measurement is a separate process timing {s['reps']} batches after {s['warmup']} "
        "warm-up batches and reporting their median; the table shows the median over rounds.",
        f"- FP32 FMA peak measured in this run (bench/fma_peak.cpp, {s['isa']}, best of the start and the end "
        f"of the run): {peaks}.",
        "- Training rows: convnet `bench --train` times forward + loss + backward (no optimiser step); PyTorch "
        "times forward + loss + backward + SGD step (momentum 0.9, weight decay 5e-4). onnxruntime: inference "
        "rows only. GFLOP/s = 2 x MACs per image (`convnet summary NET --json`) x images, x3 for training.",
        "- The epoch row is a real training epoch on Fashion-MNIST (60,000 images, batch 64, last batch "
        "partial): convnet `train` (its metrics.csv seconds: the training loop, without loading or "
        "evaluation) against the same loop in PyTorch over tensors in memory; its ms is per epoch.",
        "- convnet bf16 / int8 (when measured): `convnet bench --precision bf16|int8 --emulate` on the inference rows, "
        "bf16 activations and weights or int8 ones with f32 logits; int8's scales come from the timed batch (timing "
        "only; accuracy: docs/precision.md); bf16 also on the training-step rows (mixed precision). Their ratios are "
        "against convnet f32 and onnxruntime f32.",
        "- 'convnet vs X' = X's time / convnet's time: above 1.00× convnet is faster. Peak RSS is the whole "
        "process's maximum resident set (wait4), including the interpreter (Python, Node.js) for PyTorch and "
        "onnxruntime.",
    ])
