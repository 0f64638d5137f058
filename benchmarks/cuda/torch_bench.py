#!/usr/bin/env python3
"""PyTorch side of foldkit's CUDA benchmarks (see README.md).

Runs the shapes of backend/bench_cuda_test.go through PyTorch and
prints one JSON object: torch.nn.functional.scaled_dot_product_attention in
float32 with an additive pair bias [1, H, L, L] (broadcast over the batch),
forward and forward+backward, with each SDPA backend that accepts the
problem (the fastest is the reference), and torch.matmul in float32, TF32
and bfloat16. Times are medians of CUDA-event timings after warm-up.

FLOP counts match the Go benchmarks: attention forward 2·B·H·L·L·(C+Cv),
backward 2.5× that; matmul 2·m·n·k.

It also times whole modules written the way OpenFold writes them (layer
norms, linear projections, SDPA with the pair bias and the mask bias added
into one attention mask, sigmoid gates; the triangle multiplication as a
batched matmul over channels), forward only in float32 at AF2's widths, under
the names module_<foldkit module>_n<N>[_s<S>] that `foldkit bench -backend
cuda` results are paired with (compare.py).
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

REPS, WARM = 20, 3


DEV = "cuda"  # "cpu" with --cpu: the module timings on the CPU cores


def timeit(f):
    if DEV == "cpu":
        import time
        for _ in range(1):
            f()
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            f()
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        return times[len(times) // 2]
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


def module_tri_att(results, n, ending=False, cz=128, h=4, c=32):
    """Triangle attention (Algorithms 13/14), OpenFold's formulation."""
    dev, L = DEV, torch.nn.Linear
    ln = torch.nn.LayerNorm(cz).to(dev)
    lq, lk, lv = (L(cz, h * c, bias=False).to(dev) for _ in range(3))
    lg, lo, lb = L(cz, h * c).to(dev), L(h * c, cz).to(dev), L(cz, h, bias=False).to(dev)
    z = torch.randn(n, n, cz, device=dev)
    mask = torch.ones(n, n, device=dev)

    @torch.no_grad()
    def f():
        zz = z.transpose(0, 1) if ending else z
        mm = mask.transpose(0, 1) if ending else mask
        x = ln(zz)
        bias = lb(x).permute(2, 0, 1).unsqueeze(0)                  # [1, H, N, N]
        mbias = (1e9 * (mm - 1))[:, None, None, :]                   # [N, 1, 1, N]
        q, k, v = (l(x).view(n, n, h, c).transpose(1, 2) for l in (lq, lk, lv))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias + mbias, scale=1 / math.sqrt(c))
        o = o.transpose(1, 2).reshape(n, n, h * c) * torch.sigmoid(lg(x))
        out = lo(o)
        return out.transpose(0, 1) if ending else out

    name = "tri_att_ending" if ending else "tri_att_starting"
    results[f"module_{name}_n{n}"] = {"ms": timeit(f)}
    if DEV == "cuda":
        torch.cuda.empty_cache()


def module_tri_mul(results, n, incoming=False, cz=128, ch=128):
    """Triangle multiplicative update (Algorithms 11/12), OpenFold's formulation."""
    dev, L = DEV, torch.nn.Linear
    ln_in, ln_c = torch.nn.LayerNorm(cz).to(dev), torch.nn.LayerNorm(ch).to(dev)
    lap, lag, lbp, lbg = (L(cz, ch).to(dev) for _ in range(4))
    lgate, lout = L(cz, cz).to(dev), L(ch, cz).to(dev)
    z = torch.randn(n, n, cz, device=dev)
    mask = torch.ones(n, n, 1, device=dev)

    @torch.no_grad()
    def f():
        x = ln_in(z)
        a = mask * torch.sigmoid(lag(x)) * lap(x)
        b = mask * torch.sigmoid(lbg(x)) * lbp(x)
        a, b = a.permute(2, 0, 1), b.permute(2, 0, 1)                # [C, N, N]
        u = torch.matmul(b.transpose(1, 2), a) if incoming else torch.matmul(a, b.transpose(1, 2))
        u = u.permute(1, 2, 0)
        return torch.sigmoid(lgate(x)) * lout(ln_c(u))

    name = "tri_mul_incoming" if incoming else "tri_mul_outgoing"
    results[f"module_{name}_n{n}"] = {"ms": timeit(f)}
    if DEV == "cuda":
        torch.cuda.empty_cache()


def module_msa_row(results, s, n, cm=256, cz=128, h=8, c=32):
    """MSA row attention with pair bias (Algorithm 7), OpenFold's formulation."""
    dev, L = DEV, torch.nn.Linear
    ln_m, ln_z = torch.nn.LayerNorm(cm).to(dev), torch.nn.LayerNorm(cz).to(dev)
    lq, lk, lv = (L(cm, h * c, bias=False).to(dev) for _ in range(3))
    lg, lo, lb = L(cm, h * c).to(dev), L(h * c, cm).to(dev), L(cz, h, bias=False).to(dev)
    m = torch.randn(s, n, cm, device=dev)
    z = torch.randn(n, n, cz, device=dev)
    mask = torch.ones(s, n, device=dev)

    @torch.no_grad()
    def f():
        x = ln_m(m)
        bias = lb(ln_z(z)).permute(2, 0, 1).unsqueeze(0)            # [1, H, N, N]
        mbias = (1e9 * (mask - 1))[:, None, None, :]                 # [S, 1, 1, N]
        q, k, v = (l(x).view(s, n, h, c).transpose(1, 2) for l in (lq, lk, lv))
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=bias + mbias, scale=1 / math.sqrt(c))
        return lo(o.transpose(1, 2).reshape(s, n, h * c) * torch.sigmoid(lg(x)))

    results[f"module_msa_row_attention_n{n}_s{s}"] = {"ms": timeit(f)}
    if DEV == "cuda":
        torch.cuda.empty_cache()


def main():
    global DEV
    if "--cpu" in sys.argv[1:]:
        # The module timings only, on the CPU cores, to set beside
        # `foldkit bench -module NAME -n N` on the same machine.
        DEV = "cpu"
        results = {}
        with torch.no_grad():
            for n in (128, 256):
                module_tri_att(results, n)
                module_tri_mul(results, n)
            module_msa_row(results, 128, 256)
        print(json.dumps({"device": "cpu", "threads": torch.get_num_threads(), "torch": torch.__version__,
                          "results": results}, indent=1))
        return 0
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
    for n in (256, 512):
        for flag in (False, True):
            module_tri_att(results, n, flag)
            module_tri_mul(results, n, flag)
    module_msa_row(results, 128, 256)
    module_msa_row(results, 512, 384)
    print(json.dumps({
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "results": results,
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
