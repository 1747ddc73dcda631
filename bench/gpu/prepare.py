#!/usr/bin/python3
"""Builds, on a machine without a GPU, everything bench/gpu/device_check.sh
runs on one: an AOT executable per case (scripts/posenc_aot.py), fresh
random inputs and float64 references (python/posenc/reference.py) as .npy,
and manifest.tsv. Correctness cases are small (the directory stays a few
MB); the timing cases generate their inputs on the device (--random).

Usage: bench/gpu/prepare.py [OUT_DIR] [--chip sm_90] [--seed N]
           [--check-on-cpu]
--check-on-cpu also runs every correctness case through posenc-run on
this machine against its reference (checks the cases themselves)."""

import argparse
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
from posenc import from_bf16, to_bf16  # noqa: E402
from posenc import reference as ref  # noqa: E402

BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
NP_ELEM = {np.dtype(np.float32): "f32", np.dtype(np.int32): "i32", np.dtype(np.uint16): "bf16"}
F32_TOL, BF16_TOL = 1e-5, 1e-2

# Timing shapes of the issue: rope on [8, 4096, 32, 128]; ALiBi causal
# prefill S = 4096, H = 32, D = 128.
ROPE_BENCH = (8, 4096, 32, 128)
ATTN_BENCH = dict(s=4096, h=32, d=128)
# Decode: GQA 32/8, D = 128, one query against 32K cached keys.
DECODE_BENCH = dict(sk=32768, hq=32, hkv=8, d=128)


def ttype(shape, elem):
    return "tensor<" + "x".join([str(d) for d in shape] + [elem]) + ">"


def tof(a):
    return ttype(a.shape, NP_ELEM[a.dtype])


def func(args, body, result_type):
    sig = ", ".join(f"%{n}: {t}" for n, t in args)
    lines = "\n".join("  " + b for b in body)
    return f"func.func @main({sig}) -> {result_type} {{\n{lines}\n  return %o : {result_type}\n}}\n"


class Cases:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.cases = []  # (name, ir, inputs, reference, tolerance)

    def uniform(self, *shape, bf16=False):
        x = self.rng.uniform(-1, 1, size=shape).astype(np.float32)
        return (to_bf16(x), from_bf16(to_bf16(x)).astype(np.float64)) if bf16 else (x, x.astype(np.float64))

    def add(self, name, ir, inputs, expected, tol):
        self.cases.append((name, ir, inputs, expected, tol))

    def rope(self, name, shape, layout, bf16=False, attrs="", **ref_kw):
        x, x64 = self.uniform(*shape, bf16=bf16)
        # M-RoPE: one position per axis of mrope_section.
        axes = len(ref_kw.get("mrope_section") or [])
        p = self.rng.integers(0, 8192, size=(axes, shape[1]) if axes else shape[1]) \
            .astype(np.int32)
        attr_text = f" {{{attrs}}}" if attrs else ""
        ir = func([("x", tof(x)), ("p", tof(p))],
                  [f"%o = posenc.rope %x, %p layout {layout}{attr_text} : {tof(x)}, {tof(p)}"], tof(x))
        self.add(name, ir, [x, p], ref.rope(x64, p, layout=layout, **ref_kw),
                 BF16_TOL if bf16 else F32_TOL)

    def attention(self, name, b, sq, sk, hq, hkv, d, causal=True, bias=None, bf16=False, dv=None,
                  tol=None):
        dv = dv or d
        (q, q64), (k, k64), (v, v64) = (self.uniform(b, sq, hq, d, bf16=bf16),
                                        self.uniform(b, sk, hkv, d, bf16=bf16),
                                        self.uniform(b, sk, hkv, dv, bf16=bf16))
        args = [("q", tof(q)), ("k", tof(k)), ("v", tof(v))]
        inputs, body, bias64 = [q, k, v], [], None
        kp = np.arange(sk, dtype=np.int32)
        qp = kp[sk - sq:].copy()
        bt = ttype((hq, sq, sk), "f32")
        if bias == "alibi":
            args += [("qp", tof(qp)), ("kp", tof(kp))]
            inputs += [qp, kp]
            body.append(f"%b = posenc.alibi_bias %qp, %kp mode causal {{num_heads = {hq} : i64}} : "
                        f"{tof(qp)}, {tof(kp)} -> {bt}")
            bias64 = ref.alibi_bias(qp, kp, hq)
        elif bias == "t5":
            table = self.rng.standard_normal((32, hq)).astype(np.float32)
            args += [("qp", tof(qp)), ("kp", tof(kp)), ("t", tof(table))]
            inputs += [qp, kp, table]
            body.append(f"%b = posenc.rel_bias %t, %qp, %kp kind t5 {{num_buckets = 32 : i64, "
                        f"max_distance = 128 : i64, bidirectional = false}} : "
                        f"{tof(table)}, {tof(qp)}, {tof(kp)} -> {bt}")
            bias64 = ref.rel_bias(table, qp, kp, "t5", 32, 128, False)
        rt = ttype((b, sq, hq, dv), "bf16" if bf16 else "f32")
        bias_text = f" bias(%b : {bt})" if bias else ""
        body.append(f"%init = tensor.empty() : {rt}")
        body.append(f"%o = posenc.attention %q, %k, %v{bias_text}{' causal' if causal else ''} "
                    f"outs(%init) : {tof(q)}, {tof(k)}, {tof(v)}, {rt}")
        self.add(name, func(args, body, rt), inputs,
                 ref.attention(q64, k64, v64, bias=bias64, causal=causal),
                 tol or (BF16_TOL if bf16 else F32_TOL))


# posenc-lower-to-nvvm options of correctness cases that need them: the
# tensor-core attention (Q·Kᵀ and P·V on mma.sync; f32 operands as tf32,
# whose 10-bit mantissas give errors near 2^-11).
CASE_OPTIONS = {
    "attention_tc_gqa_tails_f32": "attention-precision=tf32",
    "attention_tc_bf16_d128": "attention-precision=tf32",
    "attention_tc_alibi_fused_f32": "attention-precision=tf32",
    "attention_tc_decode_f32": "attention-precision=tf32",
}
TF32_TOL = 3e-3


def correctness_cases(seed):
    c = Cases(seed)
    c.rope("rope_half_f32", (2, 64, 4, 64), "half")
    c.rope("rope_mrope_f32", (2, 40, 2, 128), "half", base=1000000.0,
           attrs="base = 1000000.0 : f64, mrope_section = array<i64: 16, 24, 24>",
           mrope_section=[16, 24, 24])
    c.rope("rope_interleaved_bf16_partial", (1, 48, 3, 64), "interleaved", bf16=True,
           attrs="rotary_dim = 32 : i64", rotary_dim=32)
    p = c.rng.integers(0, 1 << 16, size=(96,)).astype(np.int32)
    rt = ttype((96, 64), "f32")
    c.add("sinusoidal", func([("p", tof(p))],
                             [f"%o = posenc.sinusoidal %p layout half {{dim = 64 : i64}} : {tof(p)} -> {rt}"],
                             rt), [p], ref.sinusoidal(p, 64, layout="half"), F32_TOL)
    qp = np.arange(40, 100, dtype=np.int32)
    kp = np.arange(0, 100, dtype=np.int32)
    bt = ttype((8, 60, 100), "f32")
    c.add("alibi_bias", func([("qp", tof(qp)), ("kp", tof(kp))],
                             [f"%o = posenc.alibi_bias %qp, %kp mode causal {{num_heads = 8 : i64}} : "
                              f"{tof(qp)}, {tof(kp)} -> {bt}"], bt),
          [qp, kp], ref.alibi_bias(qp, kp, 8), F32_TOL)
    table = c.rng.standard_normal((32, 8)).astype(np.float32)
    c.add("rel_bias_t5", func([("t", tof(table)), ("qp", tof(qp)), ("kp", tof(kp))],
                              [f"%o = posenc.rel_bias %t, %qp, %kp kind t5 {{num_buckets = 32 : i64, "
                               f"max_distance = 128 : i64, bidirectional = true}} : "
                               f"{tof(table)}, {tof(qp)}, {tof(kp)} -> {bt}"], bt),
          [table, qp, kp], ref.rel_bias(table, qp, kp, "t5", 32, 128, True), F32_TOL)
    q, q64 = c.uniform(2, 60, 4, 32)
    emb, emb64 = c.uniform(13, 32)
    kt = ttype((2, 4, 60, 100), "f32")
    c.add("rel_key_bias_shaw", func([("q", tof(q)), ("e", tof(emb)), ("qp", tof(qp)), ("kp", tof(kp))],
                                    [f"%o = posenc.rel_key_bias %q, %e, %qp, %kp {{max_distance = 6 : i64}} : "
                                     f"{tof(q)}, {tof(emb)}, {tof(qp)}, {tof(kp)} -> {kt}"], kt),
          [q, emb, qp, kp], ref.rel_key_bias(q64, emb64, qp, kp, 6), F32_TOL)
    c.attention("attention_gqa_tails_f32", 2, 100, 130, 8, 2, 64)
    c.attention("attention_decode_mqa_f32", 1, 1, 300, 8, 1, 128)
    c.attention("attention_bf16_d128", 1, 77, 77, 4, 4, 128, bf16=True)
    c.attention("attention_alibi_fused_f32", 1, 128, 160, 8, 8, 64, bias="alibi")
    c.attention("attention_t5_fused_f32", 1, 96, 96, 4, 4, 64, bias="t5")
    c.attention("attention_tc_gqa_tails_f32", 2, 100, 130, 8, 2, 64, tol=TF32_TOL)
    c.attention("attention_tc_bf16_d128", 1, 77, 77, 4, 4, 128, bf16=True)
    c.attention("attention_tc_alibi_fused_f32", 1, 128, 160, 8, 8, 64, bias="alibi", tol=TF32_TOL)
    c.attention("attention_tc_decode_f32", 1, 1, 300, 8, 2, 128, tol=TF32_TOL)
    # MLA decode through its decomposition.
    b, sq, sk, h, dn, dr, cl = 1, 1, 64, 4, 32, 16, 64
    (qn, qn64), (qr, qr64), (ckv, ckv64), (kr, kr64) = (c.uniform(b, sq, h, dn), c.uniform(b, sq, h, dr),
                                                        c.uniform(b, sk, cl), c.uniform(b, sk, dr))
    (wk, wk64), (wv, wv64) = c.uniform(h, dn, cl), c.uniform(h, dn, cl)
    names = ["qn", "qr", "c", "kr", "wk", "wv"]
    arrays = [qn, qr, ckv, kr, wk, wv]
    rt = ttype((b, sq, h, dn), "f32")
    c.add("mla_absorb_decode", func(list(zip(names, map(tof, arrays))),
                                    ["%o = posenc.mla_absorb " + ", ".join("%" + n for n in names)
                                     + " causal : " + ", ".join(map(tof, arrays)) + f" -> {rt}"], rt),
          arrays, ref.mla_absorb(qn64, qr64, ckv64, kr64, wk64, wv64, causal=True), F32_TOL)
    return c.cases


def bench_sources():
    b, s, h, d = ROPE_BENCH
    xt, pt = ttype(ROPE_BENCH, "f32"), ttype((s,), "i32")
    rope = func([("x", xt), ("p", pt)], [f"%o = posenc.rope %x, %p layout half : {xt}, {pt}"], xt)
    s, h, d = ATTN_BENCH["s"], ATTN_BENCH["h"], ATTN_BENCH["d"]
    out = {"bench_rope_f32": rope}
    for elem in ("f32", "bf16"):
        qt = ttype((1, s, h, d), elem)
        pt = ttype((s,), "i32")
        bt = ttype((h, s, s), "f32")
        out[f"bench_alibi_attention_{elem}"] = func(
            [("q", qt), ("k", qt), ("v", qt), ("p", pt)],
            [f"%b = posenc.alibi_bias %p, %p mode causal {{num_heads = {h} : i64}} : {pt}, {pt} -> {bt}",
             f"%init = tensor.empty() : {qt}",
             f"%o = posenc.attention %q, %k, %v bias(%b : {bt}) causal outs(%init) : "
             f"{qt}, {qt}, {qt}, {qt}"], qt)
        sk, hq, hkv, d = (DECODE_BENCH[k] for k in ("sk", "hq", "hkv", "d"))
        qt, kt = ttype((1, 1, hq, d), elem), ttype((1, sk, hkv, d), elem)
        out[f"bench_decode_gqa_{elem}"] = func(
            [("q", qt), ("k", kt), ("v", kt)],
            [f"%init = tensor.empty() : {qt}",
             f"%o = posenc.attention %q, %k, %v causal outs(%init) : {qt}, {kt}, {kt}, {qt}"], qt)
    return out


# Tile-shape variants of the timing cases, timed side by side on the device
# (posenc-lower-to-nvvm options): name -> (timing source, options).
VARIANTS = {
    "decode_f32_k64": ("bench_decode_gqa_f32", "attention-tile-k=64"),
    "decode_f32_k64_t256": ("bench_decode_gqa_f32", "attention-tile-k=64 attention-threads=256"),
    "decode_f32_k128": ("bench_decode_gqa_f32", "attention-tile-k=128"),
    "decode_f32_split16": ("bench_decode_gqa_f32", "attention-split-k=16"),
    "decode_f32_split256": ("bench_decode_gqa_f32", "attention-split-k=256"),
    "decode_bf16_k64_t256": ("bench_decode_gqa_bf16", "attention-tile-k=64 attention-threads=256"),
    "decode_bf16_k128": ("bench_decode_gqa_bf16", "attention-tile-k=128"),
    "alibi_f32_q64_k64_t256": ("bench_alibi_attention_f32",
                               "attention-tile-q=64 attention-tile-k=64 attention-threads=256"),
    "alibi_f32_q64_k32_t256": ("bench_alibi_attention_f32",
                               "attention-tile-q=64 attention-tile-k=32 attention-threads=256"),
    "alibi_f32_q32_k32_t256": ("bench_alibi_attention_f32",
                               "attention-tile-q=32 attention-tile-k=32 attention-threads=256"),
    "alibi_f32_q16_k32_t128": ("bench_alibi_attention_f32",
                               "attention-tile-q=16 attention-tile-k=32"),
    # Tensor cores (mma.sync): bf16 and f32 operands as tf32.
    "alibi_f32_tf32": ("bench_alibi_attention_f32", "attention-precision=tf32"),
    "alibi_bf16_tf32": ("bench_alibi_attention_bf16", "attention-precision=tf32"),
    "alibi_bf16_tf32_k16": ("bench_alibi_attention_bf16", "attention-precision=tf32 attention-tile-k=16"),
    "alibi_bf16_tf32_q64_t256": ("bench_alibi_attention_bf16",
                                 "attention-precision=tf32 attention-tile-q=64 attention-threads=256"),
    "decode_bf16_tf32": ("bench_decode_gqa_bf16", "attention-precision=tf32"),
}


def save(path, array):
    np.save(path, array)


def rel_err(a, e):
    a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
    if not np.array_equal(np.isnan(a), np.isnan(e)):
        return np.inf
    m = ~np.isnan(e)
    den = np.max(np.abs(e[m])) if m.any() else 0.0
    num = np.max(np.abs(a[m] - e[m])) if m.any() else 0.0
    return num / den if den > 0 else num


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out", nargs="?", default=os.path.join(BUILD, "gpu-check"))
    ap.add_argument("--chip", default="sm_90")
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    ap.add_argument("--check-on-cpu", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    aot = os.path.join(ROOT, "scripts", "posenc_aot.py")
    manifest = []
    failures = 0

    def compile_case(name, ir, options=""):
        src = os.path.join(args.out, f"{name}.mlir")
        with open(src, "w") as f:
            f.write(ir)
        subprocess.run([sys.executable, aot, src, "-o", os.path.join(args.out, f"{name}.gpu"),
                        "--chip", args.chip] + (["--options", options] if options else []),
                       check=True, stdout=subprocess.DEVNULL)
        return src

    for name, ir, inputs, expected, tol in correctness_cases(args.seed):
        src = compile_case(name, ir, CASE_OPTIONS.get(name, ""))
        ins = []
        for i, x in enumerate(inputs):
            ins.append(f"{name}.in{i}.npy")
            save(os.path.join(args.out, ins[-1]), x)
        save(os.path.join(args.out, f"{name}.ref.npy"), np.asarray(expected, np.float64))
        manifest.append("\t".join([name, f"{name}.gpu", ",".join(ins), f"{name}.ref.npy", repr(tol)]))
        if args.check_on_cpu:
            out = os.path.join(args.out, f"{name}.cpu.npy")
            cmd = [os.path.join(BUILD, "bin", "posenc-run"), src]
            cmd += [f"--input=@{os.path.join(args.out, p)}" for p in ins] + [f"--output=@{out}"]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            got = np.load(out)
            got = from_bf16(got) if got.dtype == np.uint16 else got
            err = rel_err(got, expected)
            ok = err <= tol
            failures += not ok
            print(f"cpu check {name:34s} max_rel_err={err:.3e} tolerance={tol:.0e} {'ok' if ok else 'FAIL'}")
            os.remove(out)
    sources = bench_sources()
    for name, ir in sources.items():
        compile_case(name, ir)
    with open(os.path.join(args.out, "variants.tsv"), "w") as f:
        for name, (base, options) in VARIANTS.items():
            compile_case(name, sources[base], options)
            f.write(f"{name}\t{base}\t{options}\n")
    with open(os.path.join(args.out, "manifest.tsv"), "w") as f:
        f.write("\n".join(manifest) + "\n")
    with open(os.path.join(args.out, "bench.env"), "w") as f:
        f.write(f"ROPE_SHAPE={'x'.join(map(str, ROPE_BENCH))}\n")
        f.write(f"ATTN_S={ATTN_BENCH['s']}\nATTN_H={ATTN_BENCH['h']}\nATTN_D={ATTN_BENCH['d']}\n")
        f.write("".join(f"DECODE_{k.upper()}={v}\n" for k, v in DECODE_BENCH.items()))
        f.write(f"CHIP={args.chip}\nSEED={args.seed}\n")
    total = sum(os.path.getsize(os.path.join(args.out, p)) for p in os.listdir(args.out))
    print(f"{args.out}: {len(manifest)} correctness cases, {len(bench_sources())} timing executables, "
          f"{total / 2**20:.1f} MiB, seed {args.seed}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
