"""A generator of random, valid posenc programs and the checks every one of
them must pass:

  * it verifies (posenc-opt parses and prints it);
  * compiled with posenc-lower-to-cpu, it matches posenc.reference (float64)
    on random inputs;
  * after each posenc pass (and canonicalize) it computes the same numbers;
  * an alternative configuration of the pipeline (bias left unfused, naive
    MLA, odd attention tiles) also succeeds and agrees.

Programs draw ops, shapes (dynamic dims included), element types, position
types and attributes across every scaling kind, layout, bias kind and mode.
test_random_programs.py runs a few per test-suite run (a fresh seed each
time, printed); scripts/random_programs.py runs many.
"""

import math

import numpy as np

import posenc
from harness import attention, func_ir, rel_err, tensor_type
from posenc import models
from posenc import reference as ref

PASSES = [
    "canonicalize",
    "posenc-raise",
    "posenc-fold-constants",
    "posenc-fold-rope-layout{to=half}",
    "posenc-fold-rope-layout{to=interleaved}",
    "posenc-fuse-bias-into-attention",
    "posenc-decompose-mla{mode=naive}",
    "posenc-decompose-mla{mode=absorbed}",
    "posenc-insert-shape-checks",
    "posenc-approximate-math",
    # The GPU attention kernel, emulated on the host (MLA through it too).
    "posenc-decompose-mla,posenc-fuse-bias-into-attention,"
    "func.func(convert-posenc-attention-to-gpu{emulate=true max-shared-memory=232448})",
]
ALTERNATIVE = ("posenc-lower-to-cpu{fuse-bias=false mla=naive "
               "attention-tile-q=3 attention-tile-k=5}")

NP = {"f32": np.float32, "f16": np.float16, "f64": np.float64, "i32": np.int32,
      "i64": np.int64}
# max |error| / max |reference| allowed per element type of the result. f64:
# the angle p·ω of a position near 2^31 moves by one ulp (5e-7) when ω
# differs from the reference's in its last bit.
TOLERANCE = {"f32": 2e-4, "f16": 4e-3, "bf16": 3e-2, "f64": 2e-6}


def ttype(shape, elem, dynamic=()):
    return tensor_type([None if i in dynamic else d for i, d in enumerate(shape)], elem)


class Program:
    """IR text, inputs (numpy; bf16 as uint16 bits), and the reference."""

    def __init__(self, kind):
        self.kind = kind
        self.args = []  # (name, type text)
        self.inputs = []
        self.body = []
        self.result = None  # (value, type text)
        self.elem = "f32"
        self.expected = None

    def arg(self, name, array, elem, dynamic=()):
        self.args.append((name, ttype(array.shape, elem, dynamic)))
        self.inputs.append(posenc.to_bf16(array) if elem == "bf16" else array.astype(NP[elem]))
        return f"%{name}"

    def value(self, i):
        """Input i as the program sees it (after rounding to its type)."""
        a = self.inputs[i]
        return posenc.from_bf16(a) if a.dtype == np.uint16 else a

    @property
    def ir(self):
        return func_ir(self.args, self.body, [self.result])


class Generator:
    def __init__(self, rng):
        self.rng = rng

    def choice(self, options):
        return options[self.rng.integers(len(options))]

    def chance(self, p):
        return self.rng.random() < p

    def dynamic(self, rank, keep=()):
        return tuple(i for i in range(rank) if i not in keep and self.chance(0.3))

    def start(self):
        return int(self.rng.integers(0, 3)) * int(self.choice([1, 1000, 100000]))

    def positions(self, p, name, b, s, allow_batch=True, start=None):
        """[S] or [B, S] positions, i32 or i64, maybe a constant. Query and
        key positions share a start: biases of distances near 10^5 in f32
        would measure f32 rounding, not posenc."""
        elem = self.choice(["i32", "i64"])
        shape = (b, s) if allow_batch and self.chance(0.3) else (s,)
        start = self.start() if start is None else start
        pos = (start + np.arange(s) + self.rng.integers(0, 3, size=shape).cumsum(-1))
        pos = pos.astype(NP[elem])
        if self.chance(0.25):
            vals = ", ".join(str(int(v)) for v in pos.ravel())
            t = ttype(shape, elem)
            p.body.append(f"%{name} = arith.constant dense<[{vals}]> : {t}"
                          if len(shape) == 1 else
                          f"%{name} = arith.constant dense<{pos.tolist()}> : {t}")
            return f"%{name}", t, pos
        v = p.arg(name, pos, elem, self.dynamic(len(shape)))
        return v, p.args[-1][1], pos

    def scaling(self, rotary):
        kind = self.choice(["none", "linear", "ntk", "dynamic", "yarn", "llama3", "longrope"])
        if kind == "none" or (kind in ("ntk", "dynamic") and rotary <= 2):
            return None
        f = float(self.choice([1.0, 2.0, 4.0, 8.0]))
        if kind == "linear":
            return {"kind": "linear", "factor": f}
        if kind == "ntk":
            return {"kind": "ntk", "alpha": f}
        if kind == "dynamic":
            return {"kind": "dynamic", "factor": f, "original": int(self.choice([4, 16, 64]))}
        if kind == "yarn":
            return {"kind": "yarn", "factor": f, "original": int(self.choice([16, 4096])),
                    "beta_fast": 32.0, "beta_slow": 1.0, "truncate": bool(self.chance(0.5))}
        if kind == "llama3":
            return {"kind": "llama3", "factor": f, "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0, "original": int(self.choice([16, 8192]))}
        n = rotary // 2
        return {"kind": "longrope", "short_factor": list(1 + self.rng.random(n)),
                "long_factor": list(2 + 4 * self.rng.random(n)),
                "original": int(self.choice([4, 4096])), "max_positions": 16384}

    def rope_attrs(self, d, allow_absent=True):
        rotary = int(self.choice([d, d, 2 * int(self.rng.integers(0, d // 2 + 1))]))
        sc = self.scaling(rotary) if rotary > 0 else None
        base = float(self.choice([10000.0, 500000.0, 1e6]))
        factor = float(self.choice([1.25, 0.5])) if self.chance(0.2) else None
        parts = [f"base = {base!r} : f64"]
        if rotary != d or not allow_absent or self.chance(0.3):
            parts.append(f"rotary_dim = {rotary} : i64")
        if sc:
            parts.append(f"scaling = {models.scaling_attribute(sc)}")
        if factor is not None:
            parts.append(f"attention_factor = {factor!r} : f64")
        kw = dict(base=base, rotary_dim=rotary, scaling=sc, attention_factor=factor)
        return "{" + ", ".join(parts) + "}", kw

    # -- programs ------------------------------------------------------------

    def rope(self):
        p = Program("rope")
        b, s, h = (int(self.rng.integers(1, n)) for n in (3, 10, 5))
        d = 2 * int(self.rng.integers(1, 17))
        p.elem = self.choice(["f32", "f32", "f16", "bf16", "f64"])
        dyn = self.dynamic(4)
        x = self.rng.uniform(-1, 1, size=(b, s, h, d))
        xv = p.arg("x", x, p.elem, dyn)
        pv, pt, pos = self.positions(p, "p", b, s)
        layout = self.choice(["half", "interleaved"])
        attrs, kw = self.rope_attrs(d, allow_absent=3 not in dyn)
        xt = p.args[0][1]
        p.body.append(f"%y = posenc.rope {xv}, {pv} layout {layout} {attrs} : {xt}, {pt}")
        out = "%y"
        if self.chance(0.3):  # a second rotation: canonicalize may compose them
            p.body.append(f"%z = posenc.rope %y, {pv} layout {layout} {attrs} : {xt}, {pt}")
            out = "%z"
        p.result = (out, xt)
        y = ref.rope(p.value(0), pos, layout=layout, **kw)
        if out == "%z":
            y = ref.rope(y, pos, layout=layout, **kw)
        p.expected = y
        return p

    def sinusoidal(self):
        p = Program("sinusoidal")
        b, s = int(self.rng.integers(1, 3)), int(self.rng.integers(1, 12))
        convention = self.choice(["vaswani", "vaswani", "fairseq", "marian"])
        d = {"vaswani": 2 * int(self.rng.integers(1, 17)),
             "fairseq": int(self.rng.integers(4, 34)),
             "marian": int(self.rng.integers(1, 34))}[convention]
        pv, pt, pos = self.positions(p, "p", b, s)
        if not p.args:  # constant positions: keep one argument for the call
            p.arg("unused", np.zeros(1), "f32")
        layout = self.choice(["half", "interleaved"]) if convention == "vaswani" else "half"
        base = float(self.choice([10000.0, 100.0]))
        padding = int(pos.flat[0]) if self.rng.random() < 0.3 else None
        p.elem = self.choice(["f32", "bf16", "f64"])
        rt = ttype(pos.shape + (d,), p.elem)
        conv = "" if convention == "vaswani" and self.rng.random() < 0.5 else f" convention {convention}"
        pad = "" if padding is None else f", padding_idx = {padding} : i64"
        p.body.append(f"%y = posenc.sinusoidal {pv} layout {layout}{conv} {{dim = {d} : i64, "
                      f"base = {base!r} : f64{pad}}} : {pt} -> {rt}")
        p.result = ("%y", rt)
        p.expected = ref.sinusoidal(pos, d, base=base, layout=layout, convention=convention,
                                    padding_idx=padding)
        return p

    def bias(self, p, b, sq, sk, h, q=None):
        """A random bias op over fresh positions; returns (value, type, ref)."""
        start = self.start()
        qv, qt, qpos = self.positions(p, "qp", b, sq, start=start)
        kv, kt, kpos = self.positions(p, "kp", b, sk, start=start)
        batched = qpos.ndim == 2 or kpos.ndim == 2
        shape = ((b,) if batched else ()) + (h, sq, sk)
        kind = self.choice(["alibi", "t5", "clip"] + (["rel_key"] if q is not None else []))
        if kind == "alibi":
            mode = self.choice(["causal", "symmetric"])
            max_bias = float(self.choice([8.0, 4.0]))
            rt = ttype(shape, "f32")
            p.body.append(f"%bias = posenc.alibi_bias {qv}, {kv} mode {mode} {{num_heads = {h} : i64, "
                          f"max_bias = {max_bias!r} : f64}} : {qt}, {kt} -> {rt}")
            return "%bias", rt, ref.alibi_bias(qpos, kpos, h, max_bias=max_bias, mode=mode)
        if kind in ("t5", "clip"):
            bidirectional = self.chance(0.6)
            if kind == "t5":
                nb = int(self.choice([8, 16, 32]))
                md = int(self.choice([nb // 2 + 1, 20, 128]))
                rows = nb
                attrs = f"num_buckets = {nb} : i64, max_distance = {md} : i64"
            else:
                md = int(self.choice([0, 1, 3, 8]))
                rows = 2 * md + 1 if bidirectional else md + 1
                attrs = f"max_distance = {md} : i64"
                nb = None
            table = self.rng.uniform(-1, 1, size=(rows, h))
            tv = p.arg("table", table, "f32", self.dynamic(2))
            tt = p.args[-1][1]
            rt = ttype(shape, "f32")
            flag = "true" if bidirectional else "false"
            p.body.append(f"%bias = posenc.rel_bias {tv}, {qv}, {kv} kind {kind} {{{attrs}, "
                          f"bidirectional = {flag}}} : {tt}, {qt}, {kt} -> {rt}")
            want = ref.rel_bias(p.value(len(p.inputs) - 1), qpos, kpos, kind=kind,
                                num_buckets=nb, max_distance=md, bidirectional=bidirectional)
            return "%bias", rt, want
        qval, qtype, qarray = q
        md = int(self.choice([1, 4]))
        emb = self.rng.uniform(-1, 1, size=(2 * md + 1, qarray.shape[3]))
        ev = p.arg("emb", emb, "f32")
        shape = (qarray.shape[0], h, sq, sk)
        rt = ttype(shape, "f32")
        p.body.append(f"%bias = posenc.rel_key_bias {qval}, {ev}, {qv}, {kv} {{max_distance = {md} : i64}}"
                      f" : {qtype}, {p.args[-1][1]}, {qt}, {kt} -> {rt}")
        return "%bias", rt, ref.rel_key_bias(qarray, p.value(len(p.inputs) - 1), qpos, kpos, md)

    def bias_only(self):
        p = Program("bias")
        h = int(self.rng.integers(1, 6))
        v, t, want = self.bias(p, int(self.rng.integers(1, 3)), int(self.rng.integers(1, 9)),
                               int(self.rng.integers(1, 9)), h)
        if not p.args:
            p.arg("unused", np.zeros(1), "f32")
        p.result = (v, t)
        p.expected = want
        return p

    def attention_layer(self):
        """q, k from projections and RoPE, a bias, then attention."""
        p = Program("attention")
        b, s, hkv = 1, int(self.rng.integers(1, 10)), int(self.rng.integers(1, 3))
        hq = hkv * int(self.choice([1, 2, 4]))
        d = 2 * int(self.rng.integers(1, 9))
        e = int(self.rng.integers(2, 17))
        sk = s + int(self.rng.integers(0, 4))  # a cache: Sk >= Sq
        x = self.rng.uniform(-1, 1, size=(b * s, e))
        xk = self.rng.uniform(-1, 1, size=(b * sk, e))
        wq = self.rng.uniform(-1, 1, size=(e, hq * d)) / math.sqrt(e)
        wk = self.rng.uniform(-1, 1, size=(e, hkv * d)) / math.sqrt(e)
        v = self.rng.uniform(-1, 1, size=(b, sk, hkv, d))
        p.arg("x", x, "f32")
        p.arg("xk", xk, "f32")
        p.arg("wq", wq, "f32")
        p.arg("wk", wk, "f32")
        p.arg("v", v, "f32")
        start = self.start()
        _, qpt, qpos = self.positions(p, "p", b, s, allow_batch=False, start=start)
        _, kpt, kpos = self.positions(p, "pk", b, sk, allow_batch=False, start=start)
        layout = self.choice(["half", "interleaved"])
        attrs, kw = self.rope_attrs(d, allow_absent=True)
        proj = {}
        for name, src, w, rows, h, pos, pt in [("q", "%x", "%wq", s, hq, "%p", qpt),
                                               ("k", "%xk", "%wk", sk, hkv, "%pk", kpt)]:
            t2 = ttype((b * rows, h * d), "f32")
            t4 = ttype((b, rows, h, d), "f32")
            xin = ttype((b * rows, e), "f32")
            p.body += [
                f"%z{name} = arith.constant dense<0.0> : {t2}",
                f"%{name}2 = linalg.matmul ins({src}, {w} : {xin}, {ttype((e, h * d), 'f32')}) "
                f"outs(%z{name} : {t2}) -> {t2}",
                f"%{name}4 = tensor.expand_shape %{name}2 [[0, 1], [2, 3]] output_shape "
                f"[{b}, {rows}, {h}, {d}] : {t2} into {t4}",
                f"%{name} = posenc.rope %{name}4, {pos} layout {layout} {attrs} : {t4}, {pt}",
            ]
            proj[name] = (t4, ref.rope((p.value(0 if name == "q" else 1).astype(np.float64)
                                        @ p.value(2 if name == "q" else 3)).reshape(b, rows, h, d),
                                       qpos if name == "q" else kpos, layout=layout, **kw))
        causal = self.chance(0.5)
        scale = float(self.choice([0.5, 0.125])) if self.chance(0.3) else None
        bias_v = bias_t = bias_ref = None
        if self.chance(0.7):
            bias_v, bias_t, bias_ref = self.bias(p, b, s, sk, hq, q=("%q", proj["q"][0], proj["q"][1]))
        rt = ttype((b, s, hq, d), "f32")
        attr = []
        if causal:
            attr.append("causal")
        opts = f" {{scale = {scale!r} : f64}}" if scale is not None else ""
        bias_part = f" bias({bias_v} : {bias_t})" if bias_v else ""
        p.body += attention("%o", "%q", "%k", "%v", proj["q"][0], proj["k"][0], p.args[4][1],
                            rt, attrs=bias_part + "".join(" " + a for a in attr),
                            attr_dict=opts)
        p.result = ("%o", rt)
        p.expected = ref.attention(proj["q"][1], proj["k"][1], p.value(4), bias=bias_ref,
                                   scale=scale, causal=causal)
        return p

    def mla(self):
        p = Program("mla")
        b, sq, h = 1, int(self.rng.integers(1, 5)), int(self.rng.integers(1, 4))
        sk = sq + int(self.rng.integers(0, 6))
        dn, dr, c, dv = (2 * int(self.rng.integers(1, 9)) for _ in range(4))
        shapes = {"qn": (b, sq, h, dn), "qr": (b, sq, h, dr), "c": (b, sk, c),
                  "kr": (b, sk, dr), "wk": (h, dn, c), "wv": (h, dv, c)}
        for name, shape in shapes.items():
            keep = range(len(shape)) if name in ("wk", "wv") else (len(shape) - 1, 2)
            p.arg(name, self.rng.uniform(-1, 1, size=shape), "f32",
                  self.dynamic(len(shape), keep=tuple(keep)))
        causal = self.chance(0.5)
        rt = ttype((b, sq, h, dv), "f32")
        types = ", ".join(t for _, t in p.args)
        p.body.append(f"%o = posenc.mla_absorb %qn, %qr, %c, %kr, %wk, %wv{' causal' if causal else ''}"
                      f" : {types} -> {rt}")
        p.result = ("%o", rt)
        p.expected = ref.mla_absorb(*(p.value(i) for i in range(6)), causal=causal)
        return p

    def program(self):
        return self.choice([self.rope, self.rope, self.sinusoidal, self.bias_only,
                            self.attention_layer, self.attention_layer, self.mla])()


def result_elem(p):
    return p.result[1].rsplit("x", 1)[1].rstrip(">")


def error(actual, expected):
    """harness.rel_err, with bf16 results (uint16 bits) decoded first."""
    return rel_err(posenc.from_bf16(actual) if actual.dtype == np.uint16 else actual, expected)


def check(p, passes=PASSES):
    """Runs every check on `p`; raises AssertionError naming the program and
    the configuration that failed."""
    tol = TOLERANCE[result_elem(p)]

    def run(pipeline):
        try:
            return posenc.compile(p.ir, pipeline=pipeline).f(*p.inputs)
        except posenc.Error as e:
            raise AssertionError(f"{pipeline} failed on\n{p.ir}\n{e}") from None

    base = run("posenc-lower-to-cpu")
    err = error(base, p.expected)
    assert err <= tol, f"posenc-lower-to-cpu: error {err:.2e} > {tol} vs reference on\n{p.ir}"
    for config in [f"{pass_},posenc-lower-to-cpu" for pass_ in passes] + [ALTERNATIVE]:
        out = run(config)
        err = error(out, p.expected)
        assert err <= tol, f"{config}: error {err:.2e} > {tol} vs reference on\n{p.ir}"
    return err
