#!/usr/bin/env python3
"""Pairs foldkit's Go CUDA benchmarks with torch_bench.py's results.

Usage: compare.py torch.json go_bench.txt|- [modules.jsonl]
modules.jsonl holds `foldkit bench -backend cuda` lines (one JSON object
each), paired with torch_bench.py's module_<module>_n<N>[_s<S>] timings.
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
    go = parse_go(sys.argv[2]) if sys.argv[2] != "-" else {}
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
    if len(sys.argv) > 3:
        for line in open(sys.argv[3]):
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            name = f"module_{r['module']}_n{r['n']}" + (f"_s{r['s']}" if r.get("s") else "")
            row = {"foldkit_ms": r["median_ms"], "foldkit_gflops": r["gflops"]}
            t = torch.get("results", {}).get(name)
            if t and "ms" in t:
                row.update({"torch_ms": t["ms"], "ratio": r["median_ms"] / t["ms"]})
            rows[name] = row
    print(json.dumps({"device": torch.get("device"), "torch": torch.get("torch"), "benchmarks": rows}, indent=1))


if __name__ == "__main__":
    main()
