#!/usr/bin/env python3
"""Pairs foldkit's Go CUDA benchmarks with torch_bench.py's results.

Usage: compare.py torch.json go_bench.txt
Prints JSON: for every benchmark name both ran, foldkit's and PyTorch's
ms/op and GFLOP/s and ratio = foldkit ms / PyTorch ms (above 1: foldkit is
slower). foldkit names with "_bias_mask" (key mask as well) are paired with
PyTorch's "_bias" run (PyTorch gets the bias alone) and say so.
"""
import json
import re
import sys

LINE = re.compile(r"^Benchmark\S*?/(\S+?)(?:-\d+)?\s+\d+\s+(.*)$")


def parse_go(path):
    out = {}
    for line in open(path):
        m = LINE.match(line.strip())
        if not m:
            continue
        name, rest = m.groups()
        vals = dict((unit, float(v)) for v, unit in re.findall(r"([\d.e+-]+) (\S+)", rest))
        out[name] = {"ms": vals.get("ms/op", vals.get("ns/op", 0) / 1e6), "gflops": vals.get("GFLOP/s")}
    return out


def main():
    torch = json.load(open(sys.argv[1]))
    go = parse_go(sys.argv[2])
    rows = {}
    for name, g in sorted(go.items()):
        tname = name.replace("_bias_mask_", "_bias_")
        t = torch.get("results", {}).get(tname)
        row = {"foldkit_ms": g["ms"], "foldkit_gflops": g["gflops"]}
        if t and "ms" in t:
            row.update({"torch_ms": t["ms"], "torch_gflops": t["gflops"], "torch_backend": t.get("backend"),
                        "ratio": g["ms"] / t["ms"]})
            if tname != name:
                row["note"] = "foldkit also applies the key mask; PyTorch gets the bias alone"
        rows[name] = row
    print(json.dumps({"device": torch.get("device"), "torch": torch.get("torch"), "benchmarks": rows}, indent=1))


if __name__ == "__main__":
    main()
