#!/usr/bin/env python3
"""PyTorch side of foldkit's CUDA benchmarks (see README.md).

Runs the shapes of internal/backend/bench_cuda_test.go through PyTorch and
prints one JSON object: torch.nn.functional.scaled_dot_product_attention in
float32 with an additive pair bias [1, H, L, L] (broadcast over the batch),
forward and forward+backward, with each SDPA backend that accepts the
problem (the fastest is the reference), and torch.matmul in float32, TF32
and bfloat16. Times are medians of CUDA-event timings after warm-up.

FLOP counts match the Go benchmarks: attention forward 2·B·H·L·L·(C+Cv),
backward 2.5× that; matmul 2·m·n·k.
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

REPS, WARM = 20, 3


def timeit(f):
    for _ in range(WARM):
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPS):
        s = torch.cuda.Event(enable_timing=True)
        e = torch.cuda.Event(enable_timing=True)
        s.record()
        f()
        e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e))
    times.sort()
    return times[len(times) // 2]


def sdpa_backends():
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # torch < 2.3
        return [("default", None)]
    return [("efficient", lambda: sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION)),
            ("math", lambda: sdpa_kernel(SDPBackend.MATH)),
            ("cudnn", lambda: sdpa_kernel(SDPBackend.CUDNN_ATTENTION))]


def attention(results, name, B, H, L, C, dtype=torch.float32, tag=""):
    dev = "cuda"
    g = torch.Generator(device=dev).manual_seed(1)
    # Activations [B, L, H, C] as foldkit stores them, viewed as [B, H, L, C].
    q, k, v = (torch.randn(B, L, H, C, device=dev, dtype=dtype, generator=g).transpose(1, 2) for _ in range(3))
    bias = torch.randn(1, H, L, L, device=dev, dtype=dtype, generator=g)
    do = torch.randn(B, H, L, C, device=dev, dtype=dtype, generator=g)
    scale = 1 / math.sqrt(C)
    flops = 2.0 * B * H * L * L * 2 * C
    for which, ctx in sdpa_backends():
        def fwd():
            return F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=scale)

        qg, kg, vg, bg = (t.detach().clone().requires_grad_(True) for t in (q, k, v, bias))

        def bwd():
            o = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=bg, scale=scale)
            torch.autograd.grad(o, (qg, kg, vg, bg), do)

        for phase, f in (("fwd", fwd), ("bwd", bwd)):
            key = f"attn_{name}_bias_{phase}{tag}"
            try:
                if ctx is None:
                    ms = timeit(f)
                else:
                    with ctx():
                        ms = timeit(f)
            except Exception as e:  # backend refuses the problem
                results.setdefault("refused", {})[f"{key}/{which}"] = str(e).splitlines()[0][:200]
                continue
            # bwd is timed as forward + backward (autograd needs the forward):
            # 3.5× the forward FLOPs; report the backward alone as the
            # difference from the forward time of the same backend.
            r = results.setdefault(key, {"candidates": {}})
            r["candidates"][which] = ms
            torch.cuda.empty_cache()
    for phase in ("fwd", "bwd"):
        key = f"attn_{name}_bias_{phase}{tag}"
        if key in results and results[key]["candidates"]:
            best = min(results[key]["candidates"], key=results[key]["candidates"].get)
            ms = results[key]["candidates"][best]
            if phase == "bwd":
                fk = f"attn_{name}_bias_fwd{tag}"
                fwd_ms = results[fk]["candidates"].get(best, results[fk]["ms"])
                results[key]["fwd_plus_bwd_ms"] = ms
                ms = max(ms - fwd_ms, 1e-6)
            fl = flops if phase == "fwd" else 2.5 * flops
            results[key].update({"ms": ms, "gflops": fl / ms / 1e6, "backend": best})


def matmul(results, name, m, n, k):
    a = torch.randn(m, k, device="cuda")
    b = torch.randn(k, n, device="cuda")
    flops = 2.0 * m * n * k
    for mode in ("fp32", "tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
        x, y = (a, b) if mode != "bf16" else (a.bfloat16(), b.bfloat16())
        ms = timeit(lambda: torch.matmul(x, y))
        results[f"gemm_{name}_{mode}"] = {"ms": ms, "gflops": flops / ms / 1e6}
    torch.backends.cuda.matmul.allow_tf32 = False


def main():
    if not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device"}))
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    results = {}
    attention(results, "triangle_N512", 512, 4, 512, 32)
    attention(results, "msarow_S512_N384", 512, 8, 384, 32)
    attention(results, "triangle_N512", 512, 4, 512, 32, torch.bfloat16, "_torch_bf16")
    matmul(results, "4096", 4096, 4096, 4096)
    matmul(results, "pair_proj_N512", 512 * 512, 128, 128)
    print(json.dumps({
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
