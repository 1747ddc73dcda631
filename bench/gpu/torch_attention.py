#!/usr/bin/python3
"""PyTorch peers of posenc's fused ALiBi attention on the GPU machine:
scaled_dot_product_attention with a materialized [H, S, S] ALiBi + causal
bias, and FlexAttention with an ALiBi score_mod and a causal block mask
(when this torch has it). CUDA-event timing, warm-up then median; prints
one row per peer and dtype, with posenc's time from the same run when
given (--posenc-f32 / --posenc-bf16, in ms)."""

import argparse
import math
import statistics


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--s", type=int, default=4096)
    ap.add_argument("--h", type=int, default=32)
    ap.add_argument("--d", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--posenc-f32", type=float)
    ap.add_argument("--posenc-bf16", type=float)
    ap.add_argument("--decode-sk", type=int, default=32768)
    ap.add_argument("--decode-hq", type=int, default=32)
    ap.add_argument("--decode-hkv", type=int, default=8)
    ap.add_argument("--posenc-decode-f32", type=float)
    ap.add_argument("--posenc-decode-bf16", type=float)
    args = ap.parse_args()
    import torch
    if not torch.cuda.is_available():
        raise SystemExit("torch has no CUDA device")
    s, h, d = args.s, args.h, args.d
    dev = "cuda"

    def slopes(n):
        # ALiBi slopes for a power-of-two head count: 2^(-8 i / n).
        return torch.tensor([2.0 ** (-8.0 * (i + 1) / n) for i in range(n)], device=dev)

    def timed(fn):
        for _ in range(3):
            fn()
        torch.cuda.synchronize()
        ms = []
        for _ in range(args.repeat):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            ms.append(a.elapsed_time(b))
        return statistics.median(ms)

    flops = 4 * s * s * h * d / 2
    print(f"{'peer (ALiBi causal, S=%d H=%d D=%d)' % (s, h, d):44s} {'median ms':>10s} {'TFLOP/s':>16s} {'posenc x':>8s}")
    sl = slopes(h)
    pos = torch.arange(s, device=dev)
    rel = (pos[None, :] - pos[:, None]).float()
    for dtype, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        posenc_ms = getattr(args, f"posenc_{name}")
        q, k, v = (torch.rand(1, h, s, d, device=dev, dtype=dtype) * 2 - 1 for _ in range(3))

        def row(label, ms):
            x = "-" if posenc_ms is None else f"{ms / posenc_ms:8.2f}x"
            print(f"{label:44s} {ms:10.3f} {flops / ms / 1e9:16.1f} {x:>8s}")

        try:
            bias = (sl[:, None, None] * rel[None]).masked_fill(rel[None] > 0, -math.inf).to(dtype)
            row(f"torch SDPA + materialized bias {name}",
                timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=bias)))
            del bias
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"torch SDPA {name}: {type(e).__name__}: {e}")
        try:
            from torch.nn.attention.flex_attention import create_block_mask, flex_attention

            def alibi(score, b, hh, qi, kj):
                return score + sl[hh] * (kj - qi)

            mask = create_block_mask(lambda b, hh, qi, kj: qi >= kj, None, None, s, s, device=dev)
            flex = torch.compile(flex_attention)
            row(f"torch FlexAttention score_mod {name}",
                timed(lambda: flex(q, k, v, score_mod=alibi, block_mask=mask)))
        except Exception as e:  # noqa: BLE001
            print(f"torch FlexAttention {name}: not run ({type(e).__name__}: {str(e)[:120]})")
    decode(args, d, dev, timed)


def decode(args, d, dev, timed):
    """GQA decode: one query against decode_sk cached keys, SDPA with
    enable_gqa (reads K and V in place), in GB/s of K + V."""
    import torch
    sk, hq, hkv = args.decode_sk, args.decode_hq, args.decode_hkv
    print(f"{'peer (decode GQA %d/%d, Sk=%d D=%d)' % (hq, hkv, sk, d):44s} {'median ms':>10s} {'K+V GB/s':>16s} {'posenc x':>8s}")
    for dtype, name in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        posenc_ms = getattr(args, f"posenc_decode_{name}")
        q = torch.rand(1, hq, 1, d, device=dev, dtype=dtype)
        k, v = (torch.rand(1, hkv, sk, d, device=dev, dtype=dtype) for _ in range(2))
        nbytes = 2 * k.numel() * k.element_size()
        try:
            ms = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, enable_gqa=True))
            x = "-" if posenc_ms is None else f"{ms / posenc_ms:8.2f}x"
            print(f"{'torch SDPA decode enable_gqa ' + name:44s} {ms:10.3f} {nbytes / ms / 1e6:16.1f} {x:>8s}")
        except Exception as e:  # noqa: BLE001
            print(f"torch SDPA decode {name}: {type(e).__name__}: {str(e)[:120]}")


if __name__ == "__main__":
    main()
