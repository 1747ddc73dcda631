"""Attention in upstream dialects, in the forms framework importers emit
(torch-mlir's TorchToLinalg: one linalg op per aten op, generic or named),
for posenc-raise's tests: `attention_program(rng, form)` returns the IR,
its inputs and the float64 reference result."""

import numpy as np


def _t(shape, elem):
    return "tensor<" + "x".join(str(s) for s in shape) + f"x{elem}>"


class _Ir:
    """A function body written line by line with fresh SSA names."""

    def __init__(self, elem):
        self.elem = elem
        self.lines = []
        self.n = 0

    def fresh(self):
        self.n += 1
        return f"%v{self.n}"

    def add(self, line):
        self.lines.append("  " + line)

    def empty(self, shape):
        return self.empty_typed(shape, self.elem)

    def empty_typed(self, shape, elem):
        v = self.fresh()
        self.add(f"{v} = tensor.empty() : {_t(shape, elem)}")
        return v

    def fill(self, shape, value):
        c, v = self.fresh(), self.fresh()
        self.add(f"{c} = arith.constant {value} : {self.elem}")
        e = self.empty(shape)
        self.add(f"{v} = linalg.fill ins({c} : {self.elem}) outs({e} : {_t(shape, self.elem)}) "
                 f"-> {_t(shape, self.elem)}")
        return v

    def generic(self, ins, out_shape, loops, body, init=None, reduce_last=False):
        """ins: [(value, shape, map results)]; body(args) -> lines, result."""
        dims = ", ".join(f"d{i}" for i in range(loops))
        # An input may give its own element type: (value, shape, map, elem).
        ins = [x if len(x) == 4 else (*x, self.elem) for x in ins]
        maps = [f"affine_map<({dims}) -> ({x[2]})>" for x in ins]
        out_results = ", ".join(f"d{i}" for i in range(len(out_shape)))
        if reduce_last and init is not None:
            out_results = init[1]
        maps.append(f"affine_map<({dims}) -> ({out_results})>")
        iters = ['"parallel"'] * loops
        if reduce_last:
            iters[-1] = '"reduction"'
        out = init[0] if init is not None else self.empty(out_shape)
        v = self.fresh()
        args = [f"%a{i}" for i in range(len(ins))] + ["%acc"]
        lines, res = body(args)
        ot = _t(out_shape, self.elem)
        self.add(f"{v} = linalg.generic {{indexing_maps = [{', '.join(maps)}], "
                 f"iterator_types = [{', '.join(iters)}]}} "
                 f"ins({', '.join(x[0] for x in ins)} : "
                 f"{', '.join(_t(x[1], x[3]) for x in ins)}) outs({out} : {ot}) {{")
        types = [x[3] for x in ins] + [self.elem]
        self.add(f"^bb0({', '.join(a + ': ' + t for a, t in zip(args, types))}):")
        for line in lines:
            self.add("  " + line)
        self.add(f"  linalg.yield {res} : {self.elem}")
        self.add(f"}} -> {ot}")
        return v


def _names(n):
    return [f"d{i}" for i in range(n)]


def _contract(ir, a, a_shape, a_res, b, b_shape, b_res, out_shape, named):
    """out[batch..., i, j] = sum_r a·b from a zero fill."""
    zero = ir.fill(out_shape, "0.0")
    nb = len(out_shape) - 2
    if named and nb == 1:
        v = ir.fresh()
        ir.add(f"{v} = linalg.batch_matmul ins({a}, {b} : {_t(a_shape, ir.elem)}, "
               f"{_t(b_shape, ir.elem)}) outs({zero} : {_t(out_shape, ir.elem)}) "
               f"-> {_t(out_shape, ir.elem)}")
        return v
    return _generic_contract(ir, a, a_shape, a_res, b, b_shape, b_res, out_shape, zero)

def _generic_contract(ir, a, a_shape, a_res, b, b_shape, b_res, out_shape, zero):
    nb = len(out_shape) - 2
    loops = nb + 3
    d = _names(loops)
    dims = ", ".join(d)
    maps = [f"affine_map<({dims}) -> ({a_res})>", f"affine_map<({dims}) -> ({b_res})>",
            f"affine_map<({dims}) -> ({', '.join(d[:nb + 2])})>"]
    iters = ", ".join(['"parallel"'] * (nb + 2) + ['"reduction"'])
    v = ir.fresh()
    e, ot = ir.elem, _t(out_shape, ir.elem)
    ir.add(f"{v} = linalg.generic {{indexing_maps = [{', '.join(maps)}], iterator_types = "
           f"[{iters}]}} ins({a}, {b} : {_t(a_shape, e)}, {_t(b_shape, e)}) outs({zero} : {ot}) {{")
    ir.add(f"^bb0(%x: {e}, %y: {e}, %acc: {e}):")
    ir.add(f"  %m = arith.mulf %x, %y : {e}")
    ir.add(f"  %s = arith.addf %acc, %m : {e}")
    ir.add(f"  linalg.yield %s : {e}")
    ir.add(f"}} -> {ot}")
    return v


FORMS = {
    "batch": (0, 1, 2),
    "k": ("transpose", "map"),      # K transposed by linalg.transpose, or read (b, j, c)
    "named": (False, True),         # linalg.batch_matmul where 3-D
    "scale": ("none", "mul", "div_splat"),
    "bias": ("none", "full", "heads", "rows", "unit_batch", "causal", "causal_lowest",
             "where", "masked_fill_causal"),
    "gqa": ("none", "expand", "broadcast"),  # K/V repeated per query head (4-D only)
    "softmax": ("linalg", "decomposed", "fused_exp", "keepdim"),
    "elem": ("f32", "f64"),
}


def random_form(rng):
    return {k: v[rng.integers(len(v))] for k, v in FORMS.items()}


def attention_program(rng, form, name="attn", sizes=(5, 7, 8, 6), batch=None,
                      expected=True):
    """(IR, inputs, float64 expected) of `form` (a dict over FORMS);
    `sizes` = (Sq, Sk, D, Dv), `batch` the batch dims ([2, 4][:batch] by
    default; with GQA the second one halves for K and V); `expected`
    False skips the reference (None)."""
    nb = form["batch"]
    batch = list(batch) if batch is not None else [2, 4][:nb]
    assert len(batch) == nb
    sq, sk, d, dv = sizes
    elem = form["elem"]
    ir = _Ir(elem)
    q_shape, k_shape, v_shape = batch + [sq, d], batch + [sk, d], batch + [sk, dv]
    s_shape, o_shape = batch + [sq, sk], batch + [sq, dv]
    dt = np.float32 if elem == "f32" else np.float64
    gqa = form.get("gqa", "none") if nb == 2 else "none"
    group = 2 if gqa != "none" else 1
    kv_shape = lambda shape: shape[:1] + [shape[1] // group] + shape[2:]  # noqa: E731
    q = rng.uniform(-1, 1, q_shape).astype(dt)
    k = rng.uniform(-1, 1, kv_shape(k_shape)).astype(dt)
    v = rng.uniform(-1, 1, kv_shape(v_shape)).astype(dt)
    args = [("q", q_shape), ("k", kv_shape(k_shape)), ("v", kv_shape(v_shape))]
    inputs = [q, k, v]
    kname, vname = "%k", "%v"
    if group > 1:
        # Hugging Face's repeat_kv: [B, Hkv, S, D] -> [B, Hkv, G, S, D] -> [B, H, S, D].
        def repeat(x, shape):
            src = kv_shape(shape)
            wide = src[:2] + [group] + src[2:]
            out = ir.empty(wide)
            r = ir.fresh()
            if gqa == "broadcast":
                ir.add(f"{r} = linalg.broadcast ins({x} : {_t(src, elem)}) outs({out} : "
                       f"{_t(wide, elem)}) dimensions = [2]")
            else:
                unit = src[:2] + [1] + src[2:]
                u = ir.fresh()
                ir.add(f"{u} = tensor.expand_shape {x} [[0], [1, 2], [3], [4]] output_shape "
                       f"{unit} : {_t(src, elem)} into {_t(unit, elem)}")
                r = ir.generic([(u, unit, "d0, d1, 0, d3, d4")], wide, 5,
                               lambda g: ([], g[0]), init=(out, None))
            c = ir.fresh()
            ir.add(f"{c} = tensor.collapse_shape {r} [[0], [1, 2], [3], [4]] : "
                   f"{_t(wide, elem)} into {_t(shape, elem)}")
            return c
        kname, vname = repeat("%k", k_shape), repeat("%v", v_shape)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)

    bd = _names(nb + 3)
    bat = bd[:nb]
    i, j, r = bd[nb], bd[nb + 1], bd[nb + 2]
    named = form["named"] and nb == 1
    # Q·Kᵀ.
    if form["k"] == "transpose" or named:
        kt_shape = batch + [d, sk]
        init = ir.empty(kt_shape)
        kt = ir.fresh()
        perm = list(range(nb)) + [nb + 1, nb]
        ir.add(f"{kt} = linalg.transpose ins({kname} : {_t(k_shape, elem)}) outs({init} : "
               f"{_t(kt_shape, elem)}) permutation = {perm}")
        s = _contract(ir, "%q", q_shape, ", ".join(bat + [i, r]), kt, kt_shape,
                      ", ".join(bat + [r, j]), s_shape, named)
    else:
        s = _contract(ir, "%q", q_shape, ", ".join(bat + [i, r]), kname, k_shape,
                      ", ".join(bat + [j, r]), s_shape, False)
    scores = (np.einsum("...id,...jd->...ij", q.astype(np.float64), k.astype(np.float64))
              if expected else np.zeros(()))

    sd = _names(nb + 2)
    ident = ", ".join(sd)
    scale = 1.0
    if form["scale"] == "mul":
        scale = 0.35
        s = ir.generic([(s, s_shape, ident)], s_shape, nb + 2,
                       lambda g: ([f"%c = arith.constant {scale} : {elem}",
                                   f"%r = arith.mulf {g[0]}, %c : {elem}"], "%r"))
    elif form["scale"] == "div_splat":
        scale = 1 / np.sqrt(d)
        c, out = ir.fresh(), ir.empty(s_shape)
        ir.add(f"{c} = arith.constant dense<{np.sqrt(d)!r}> : {_t(s_shape, elem)}")
        v2 = ir.fresh()
        ir.add(f"{v2} = linalg.div ins({s}, {c} : {_t(s_shape, elem)}, {_t(s_shape, elem)}) "
               f"outs({out} : {_t(s_shape, elem)}) -> {_t(s_shape, elem)}")
        s = v2
    scores = scores * scale

    def select_mask(mask, fill, keeps):
        """select(mask, s, fill) (torch.where) or select(mask, fill, s)
        (masked_fill), the boolean mask [Sq, Sk]."""
        def body(g):
            picked = f"{g[0]}, %f" if keeps else f"%f, {g[0]}"
            return ([f"%f = arith.constant {fill} : {elem}",
                     f"%r = arith.select {g[1]}, {picked} : {elem}"], "%r")
        return ir.generic([(s, s_shape, ident), (mask, [sq, sk], ", ".join(sd[-2:]), "i1")],
                          s_shape, nb + 2, body)

    if form["bias"] in ("causal", "causal_lowest"):
        # A constant mask, bottom-right aligned as posenc's causal.
        masked = np.triu(np.ones((sq, sk), bool), k=sk - sq + 1)
        fill = {("causal", "f32"): "0xFF800000", ("causal", "f64"): "0xFFF0000000000000",
                ("causal_lowest", "f32"): "-3.40282347E+38",
                ("causal_lowest", "f64"): "-1.7976931348623157E+308"}[form["bias"], elem]
        rows = ", ".join("[" + ", ".join(fill if m else "0.0" for m in row) + "]"
                         for row in masked)
        c = ir.fresh()
        ir.add(f"{c} = arith.constant dense<[{rows}]> : {_t([sq, sk], elem)}")
        s = ir.generic([(s, s_shape, ident), (c, [sq, sk], ", ".join(sd[-2:]))], s_shape,
                       nb + 2, lambda g: ([f"%r = arith.addf {g[0]}, {g[1]} : {elem}"], "%r"))
        scores = np.where(masked, -np.inf, scores)
    elif form["bias"] == "where":
        # torch.where(mask, s, -inf): a boolean [Sq, Sk] argument, every row
        # keeping a key.
        keep = rng.random((sq, sk)) < 0.6
        keep[np.arange(sq), rng.integers(sk, size=sq)] = True
        # Passed as i32 (entry points take no i1), made boolean first.
        args.append(("mask", [sq, sk], "i32"))
        inputs.append(keep.astype(np.int32))
        out, m = ir.empty_typed([sq, sk], "i1"), ir.fresh()
        ir.add(f"{m} = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, "
               f"affine_map<(d0, d1) -> (d0, d1)>], iterator_types = [\"parallel\", "
               f"\"parallel\"]}} ins(%mask : {_t([sq, sk], 'i32')}) outs({out} : "
               f"{_t([sq, sk], 'i1')}) {{")
        ir.add("^bb0(%x: i32, %o: i1):")
        ir.add("  %z = arith.constant 0 : i32")
        ir.add("  %b = arith.cmpi ne, %x, %z : i32")
        ir.add("  linalg.yield %b : i1")
        ir.add(f"}} -> {_t([sq, sk], 'i1')}")
        fill = "0xFF800000" if elem == "f32" else "0xFFF0000000000000"
        s = select_mask(m, fill, keeps=True)
        scores = np.where(keep, scores, -np.inf)
    elif form["bias"] == "masked_fill_causal":
        # scores.masked_fill(causal_mask, finfo.min), the mask a constant.
        masked = np.triu(np.ones((sq, sk), bool), k=sk - sq + 1)
        rows = ", ".join("[" + ", ".join("true" if m else "false" for m in row) + "]"
                         for row in masked)
        c = ir.fresh()
        ir.add(f"{c} = arith.constant dense<[{rows}]> : {_t([sq, sk], 'i1')}")
        low = "-3.40282347E+38" if elem == "f32" else "-1.7976931348623157E+308"
        s = select_mask(c, low, keeps=False)
        scores = np.where(masked, -np.inf, scores)
    elif form["bias"] != "none":
        if form["bias"] == "full":
            b_shape, b_res = s_shape, ident
        elif form["bias"] == "heads":      # [H, Sq, Sk] (ALiBi, T5), or [Sq, Sk]
            b_shape, b_res = s_shape[-3:] if nb else s_shape, ", ".join(sd[-3:] if nb else sd)
        elif form["bias"] == "rows":       # a mask of [Sq, Sk]
            b_shape, b_res = s_shape[-2:], ", ".join(sd[-2:])
        else:                              # [1, Sq, Sk] read at 0
            b_shape, b_res = [1] + s_shape[-2:], ", ".join(["0"] + sd[-2:])
            if nb == 0:
                b_shape, b_res = s_shape[-2:], ", ".join(sd[-2:])
        bias = rng.uniform(-2, 2, b_shape).astype(dt)
        bias[..., 0, -1] = -np.inf            # a masked key
        args.append(("bias", b_shape))
        inputs.append(bias)
        s = ir.generic([(s, s_shape, ident), ("%bias", b_shape, b_res)], s_shape, nb + 2,
                       lambda g: ([f"%r = arith.addf {g[0]}, {g[1]} : {elem}"], "%r"))
        scores = scores + bias.astype(np.float64)

    if form["softmax"] == "linalg":
        out, p = ir.empty(s_shape), ir.fresh()
        ir.add(f"{p} = linalg.softmax dimension({nb + 1}) ins({s} : {_t(s_shape, elem)}) "
               f"outs({out} : {_t(s_shape, elem)}) -> {_t(s_shape, elem)}")
    else:
        keep = form["softmax"] == "keepdim"
        row_shape = s_shape[:-1] + ([1] if keep else [])
        row_res = ", ".join(sd[:-1] + (["0"] if keep else []))

        def reduce(x, init_value, op):
            init = ir.fill(row_shape, init_value)
            return ir.generic([(x, s_shape, ident)], row_shape, nb + 2,
                              lambda g: ([f"%r = {op} {g[0]}, {g[1]} : {elem}"], "%r"),
                              init=(init, row_res), reduce_last=True)

        lowest = "0xFF800000" if elem == "f32" else "0xFFF0000000000000"
        if keep:
            lowest = "-3.40282347E+38" if elem == "f32" else "-1.7976931348623157E+308"
        m = reduce(s, lowest, "arith.maximumf")
        if form["softmax"] == "fused_exp":
            e = ir.generic([(s, s_shape, ident), (m, row_shape, row_res)], s_shape, nb + 2,
                           lambda g: ([f"%d = arith.subf {g[0]}, {g[1]} : {elem}",
                                       f"%r = math.exp %d : {elem}"], "%r"))
        else:
            x = ir.generic([(s, s_shape, ident), (m, row_shape, row_res)], s_shape, nb + 2,
                           lambda g: ([f"%r = arith.subf {g[0]}, {g[1]} : {elem}"], "%r"))
            e = ir.generic([(x, s_shape, ident)], s_shape, nb + 2,
                           lambda g: ([f"%r = math.exp {g[0]} : {elem}"], "%r"))
        z = reduce(e, "0.0", "arith.addf")
        p = ir.generic([(e, s_shape, ident), (z, row_shape, row_res)], s_shape, nb + 2,
                       lambda g: ([f"%r = arith.divf {g[0]}, {g[1]} : {elem}"], "%r"))

    o = _contract(ir, p, s_shape, ", ".join(bat + [i, r]), vname, v_shape,
                  ", ".join(bat + [r, j]), o_shape, form["named"])
    if expected:
        w = np.exp(scores - scores.max(axis=-1, keepdims=True))
        expected = (w / w.sum(axis=-1, keepdims=True)) @ v.astype(np.float64)
    else:
        expected = None

    sig = ", ".join(f"%{a[0]}: {_t(a[1], a[2] if len(a) > 2 else elem)}" for a in args)
    text = (f"func.func @{name}({sig}) -> {_t(o_shape, elem)} {{\n" + "\n".join(ir.lines)
            + f"\n  return {o} : {_t(o_shape, elem)}\n}}\n")
    return text, inputs, expected



CACHE_ROWS = 48  # the cached tables' positions 0..47 (the programs' positions are < 40)


def _cache(ir, vals):
    """A cached table [P, n] as a constant."""
    u = ir.fresh()
    rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in vals)
    ir.add(f"{u} = arith.constant dense<[{rows}]> : {_t(list(vals.shape), 'f32')}")
    return u


def _gather(ir, cache, n, pb, s):
    """cache[pos] (torch's index / embedding of the position ids as
    TorchToLinalg writes it): [pb, s, n]."""
    out, g = ir.empty([pb, s, n]), ir.fresh()
    ir.add(f"{g} = linalg.generic {{indexing_maps = [affine_map<(d0, d1, d2) -> (d0, d1)>, "
           f"affine_map<(d0, d1, d2) -> (d0, d1, d2)>], iterator_types = [\"parallel\", "
           f"\"parallel\", \"parallel\"]}} ins(%pos : {_t([pb, s], 'i64')}) outs({out} : "
           f"{_t([pb, s, n], 'f32')}) {{")
    ir.add("^bb0(%p: i64, %o: f32):")
    ir.add("  %i = arith.index_cast %p : i64 to index")
    ir.add("  %j = linalg.index 2 : index")
    ir.add(f"  %e = tensor.extract {cache}[%i, %j] : {_t([CACHE_ROWS, n], 'f32')}")
    ir.add("  linalg.yield %e : f32")
    ir.add(f"}} -> {_t([pb, s, n], 'f32')}")
    return g


def _cache_angles(inv):
    """Angles of the cached rows in f32, as the model computes its cache."""
    return np.arange(CACHE_ROWS, dtype=np.float32)[:, None] * inv


ROPE_FORMS = {
    "angles": ("matmul", "elementwise"),  # inv_freq @ position_ids, or a product
    "apply": ("fused", "separate"),       # x·cos + rot(x)·sin in one generic or three
    "scaling": ("none", "linear"),
    "factor": (1.0, 1.25),                # attention_scaling on cos and sin
    "batched_pos": (True, False),         # position_ids [B, S], or [1, S] shared
    "tables": ("computed", "constant", "gathered"),  # from positions, folded, or cache[pos]
}


def random_rope_form(rng):
    return {k: v[rng.integers(len(v))] for k, v in ROPE_FORMS.items()}


def rope_program(rng, form, name="rope", b=2, h=3, s=6, d=8, base=10000.0, rotary=None,
                 inv_freq=None):
    """Hugging Face's apply_rotary_pos_emb on q [B, H, S, D] with cos/sin
    from LlamaRotaryEmbedding (inv_freq a constant, position_ids an i64
    argument), as TorchToLinalg writes it: (IR, inputs, float64 expected).
    With `rotary` < D, partial rotary (GPT-NeoX, Phi): the first `rotary`
    dims rotated, the rest concatenated back. `inv_freq` (R/2 values)
    replaces base^(-2i/R) (another scaling's frequencies)."""
    ir = _Ir("f32")
    d_full, d = d, rotary or d
    half = d // 2
    factor = 2.0 if form["scaling"] == "linear" else 1.0
    inv = (1.0 / (np.float32(base) ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))
           / np.float32(factor)).astype(np.float32)
    if inv_freq is not None:
        inv = np.asarray(inv_freq, np.float32)
    pb = b if form["batched_pos"] else 1
    x = rng.uniform(-1, 1, (b, h, s, d_full)).astype(np.float32)
    pos = rng.integers(0, 40, (pb, s)).astype(np.int64)
    f = _angles(ir, form, _positions_f32(ir, pb, s), inv, pb, s, half)
    emb = ir.fresh()
    ir.add(f"{emb} = tensor.concat dim(2) {f}, {f} : ({_t([pb, s, half], 'f32')}, "
           f"{_t([pb, s, half], 'f32')}) -> {_t([pb, s, d], 'f32')}")
    fac = form["factor"]
    constant = form.get("tables") == "constant"
    if constant:
        # A static export folds the tables for positions 0..S-1 (in f32, as
        # the model computes them); the position argument is unused.
        pos = np.broadcast_to(np.arange(s, dtype=np.int64), (pb, s)).copy()
        ang = np.arange(s, dtype=np.float32)[:, None] * np.concatenate([inv, inv])

    gathered = form.get("tables") == "gathered"

    def table(fn):
        if gathered:
            # Older Hugging Face Llama: cos_cached[position_ids].unsqueeze(1).
            ca = _cache_angles(np.concatenate([inv, inv]))
            vals = (np.float32(fac) * (np.cos(ca) if fn == "math.cos" else np.sin(ca))
                    ).astype(np.float32)
            g, u = _gather(ir, _cache(ir, vals), d, pb, s), ir.fresh()
            ir.add(f"{u} = tensor.expand_shape {g} [[0, 1], [2], [3]] output_shape "
                   f"[{pb}, 1, {s}, {d}] : {_t([pb, s, d], 'f32')} into {_t([pb, 1, s, d], 'f32')}")
            return u
        if constant:
            vals = (np.float32(fac) * (np.cos(ang) if fn == "math.cos" else np.sin(ang))
                    ).astype(np.float32)
            rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in vals)
            u = ir.fresh()
            ir.add(f"{u} = arith.constant dense<[[[{rows}]]]> : {_t([1, 1, s, d], 'f32')}")
            return u
        lines = [f"%t = {fn} {{}} : f32"]
        if fac != 1.0:
            lines = [f"%u = {fn} {{}} : f32", f"%a = arith.constant {fac} : f32",
                     "%t = arith.mulf %u, %a : f32"]
        t = ir.generic([(emb, [pb, s, d], "d0, d1, d2")], [pb, s, d], 3,
                       lambda g: ([ln.replace("{}", g[0]) for ln in lines], "%t"))
        u = ir.fresh()
        ir.add(f"{u} = tensor.expand_shape {t} [[0, 1], [2], [3]] output_shape "
               f"[{pb}, 1, {s}, {d}] : {_t([pb, s, d], 'f32')} into {_t([pb, 1, s, d], 'f32')}")
        return u

    cos, sin = table("math.cos"), table("math.sin")
    xt, full_t = _t([b, h, s, d], "f32"), _t([b, h, s, d_full], "f32")
    xn = "%x"
    if d < d_full:
        xn = ir.fresh()
        ir.add(f"{xn} = tensor.extract_slice %x[0, 0, 0, 0] [{b}, {h}, {s}, {d}] [1, 1, 1, 1] : "
               f"{full_t} to {xt}")
    x1, x2 = ir.fresh(), ir.fresh()
    ir.add(f"{x1} = tensor.extract_slice {xn}[0, 0, 0, 0] [{b}, {h}, {s}, {half}] [1, 1, 1, 1] : "
           f"{xt} to {_t([b, h, s, half], 'f32')}")
    ir.add(f"{x2} = tensor.extract_slice {xn}[0, 0, 0, {half}] [{b}, {h}, {s}, {half}] "
           f"[1, 1, 1, 1] : {xt} to {_t([b, h, s, half], 'f32')}")
    n2 = ir.generic([(x2, [b, h, s, half], "d0, d1, d2, d3")], [b, h, s, half], 4,
                    lambda g: ([f"%r = arith.negf {g[0]} : f32"], "%r"))
    rot = ir.fresh()
    ir.add(f"{rot} = tensor.concat dim(3) {n2}, {x1} : ({_t([b, h, s, half], 'f32')}, "
           f"{_t([b, h, s, half], 'f32')}) -> {xt}")
    tmap = ("d0" if pb == b and b > 1 and not constant else "0") + ", 0, d2, d3"
    tshape = lambda: [1 if constant else pb, 1, s, d]  # noqa: E731
    full = "d0, d1, d2, d3"
    if form["apply"] == "fused":
        y = ir.generic([(xn, [b, h, s, d], full), (cos, tshape(), tmap),
                        (rot, [b, h, s, d], full), (sin, tshape(), tmap)], [b, h, s, d], 4,
                       lambda g: ([f"%m = arith.mulf {g[0]}, {g[1]} : f32",
                                   f"%n = arith.mulf {g[2]}, {g[3]} : f32",
                                   "%r = arith.addf %m, %n : f32"], "%r"))
    else:
        a = ir.generic([(xn, [b, h, s, d], full), (cos, tshape(), tmap)],
                       [b, h, s, d], 4, lambda g: ([f"%r = arith.mulf {g[0]}, {g[1]} : f32"], "%r"))
        r = ir.generic([(rot, [b, h, s, d], full), (sin, tshape(), tmap)],
                       [b, h, s, d], 4, lambda g: ([f"%r = arith.mulf {g[0]}, {g[1]} : f32"], "%r"))
        y = ir.generic([(a, [b, h, s, d], full), (r, [b, h, s, d], full)], [b, h, s, d], 4,
                       lambda g: ([f"%r = arith.addf {g[0]}, {g[1]} : f32"], "%r"))
    text = _rope_function(ir, name, y, [b, h, s], d, d_full, [pb, s])
    omega = base ** (-np.arange(0, d, 2) / d) / factor
    if inv_freq is not None:
        omega = inv.astype(np.float64)
    theta = pos.astype(np.float64)[:, None, :, None] * np.concatenate([omega, omega])
    xd = x.astype(np.float64)[..., :d]
    rotated = np.concatenate([-xd[..., half:], xd[..., :half]], axis=-1)
    expected = fac * (xd * np.cos(theta) + rotated * np.sin(theta))
    expected = np.concatenate([expected, x.astype(np.float64)[..., d:]], axis=-1)
    return text, [x, pos], expected


INTERLEAVED_ROPE_FORMS = {
    "style": ("gptj", "pairs"),           # rotate_every_two, or Meta's pairs
    "slices": ("strided", "reshape"),     # x[..., ::2], or x viewed as [..., D/2, 2]
    "repeat": ("tables", "angles"),       # GPT-J's repeat_interleave after cos/sin or before
    "angles": ("matmul", "elementwise"),
    "apply": ("fused", "separate"),
    "scaling": ("none", "linear"),
    "factor": (1.0, 1.25),
    "batched_pos": (True, False),
    "tables": ("computed", "constant", "gathered"),
}


def random_interleaved_rope_form(rng):
    return {k: v[rng.integers(len(v))] for k, v in INTERLEAVED_ROPE_FORMS.items()}


def _positions_f32(ir, pb, s):
    """The i64 position ids %pos [pb, s] as f32 (arith.sitofp)."""
    out, pf = ir.empty([pb, s]), ir.fresh()
    ir.add(f"{pf} = linalg.generic {{indexing_maps = [affine_map<(d0, d1) -> (d0, d1)>, "
           f"affine_map<(d0, d1) -> (d0, d1)>], iterator_types = [\"parallel\", \"parallel\"]}} "
           f"ins(%pos : {_t([pb, s], 'i64')}) outs({out} : {_t([pb, s], 'f32')}) {{")
    ir.add("^bb0(%p: i64, %o: f32):")
    ir.add("  %f = arith.sitofp %p : i64 to f32")
    ir.add("  linalg.yield %f : f32")
    ir.add(f"}} -> {_t([pb, s], 'f32')}")
    return pf


def _rope_function(ir, name, y, lead, d, d_full, pos_shape):
    """The function @name(%x: [*lead, d_full], %pos: pos_shape) returning y,
    the rotated first d dims, with x[..., d:] concatenated back when
    d < d_full (partial rotary)."""
    xt, full_t = _t(lead + [d], "f32"), _t(lead + [d_full], "f32")
    if d < d_full:
        rest, yy = ir.fresh(), ir.fresh()
        rest_t = _t(lead + [d_full - d], "f32")
        ir.add(f"{rest} = tensor.extract_slice %x[0, 0, 0, {d}] "
               f"[{', '.join(map(str, lead))}, {d_full - d}] [1, 1, 1, 1] : {full_t} to {rest_t}")
        ir.add(f"{yy} = tensor.concat dim(3) {y}, {rest} : ({xt}, {rest_t}) -> {full_t}")
        y = yy
    return (f"func.func @{name}(%x: {full_t}, %pos: {_t(pos_shape, 'i64')}) -> {full_t} {{\n"
            + "\n".join(ir.lines) + f"\n  return {y} : {full_t}\n}}\n")


def _angles(ir, form, pf, inv, pb, s, half):
    """F = positions ⊗ inv_freq: [pb, s, half] (inv_freq @ position_ids
    transposed, or an elementwise product)."""
    c = ir.fresh()
    ir.add(f"{c} = arith.constant dense<[{', '.join(repr(float(v)) for v in inv)}]> : "
           f"{_t([half], 'f32')}")
    if form["angles"] == "matmul":
        ie = ir.fresh()
        ir.add(f"{ie} = tensor.expand_shape {c} [[0, 1, 2]] output_shape [1, {half}, 1] : "
               f"{_t([half], 'f32')} into {_t([1, half, 1], 'f32')}")
        ib = ir.generic([(ie, [1, half, 1], "0, d1, d2")], [pb, half, 1], 3,
                        lambda g: ([], g[0]))
        pe = ir.fresh()
        ir.add(f"{pe} = tensor.expand_shape {pf} [[0], [1, 2]] output_shape [{pb}, 1, {s}] : "
               f"{_t([pb, s], 'f32')} into {_t([pb, 1, s], 'f32')}")
        fz = ir.fill([pb, half, s], "0.0")
        fr = ir.fresh()
        ir.add(f"{fr} = linalg.batch_matmul ins({ib}, {pe} : {_t([pb, half, 1], 'f32')}, "
               f"{_t([pb, 1, s], 'f32')}) outs({fz} : {_t([pb, half, s], 'f32')}) -> "
               f"{_t([pb, half, s], 'f32')}")
        init, f = ir.empty([pb, s, half]), ir.fresh()
        ir.add(f"{f} = linalg.transpose ins({fr} : {_t([pb, half, s], 'f32')}) outs({init} : "
               f"{_t([pb, s, half], 'f32')}) permutation = [0, 2, 1]")
        return f
    return ir.generic([(pf, [pb, s], "d0, d1"), (c, [half], "d2")], [pb, s, half], 3,
                      lambda g: ([f"%r = arith.mulf {g[0]}, {g[1]} : f32"], "%r"))


def _repeat_interleave(ir, v, shape):
    """torch.repeat_interleave(v, 2, -1) as torch decomposes it: unsqueeze,
    broadcast to [..., n, 2], flatten."""
    r = len(shape)
    u = ir.fresh()
    groups = ", ".join(f"[{i}]" for i in range(r - 1)) + f", [{r - 1}, {r}]"
    ir.add(f"{u} = tensor.expand_shape {v} [{groups}] output_shape "
           f"[{', '.join(map(str, shape + [1]))}] : {_t(shape, 'f32')} into "
           f"{_t(shape + [1], 'f32')}")
    dims = ", ".join(f"d{i}" for i in range(r))
    bc = ir.generic([(u, shape + [1], dims + ", 0")], shape + [2], r + 1, lambda g: ([], g[0]))
    flat, out = ir.fresh(), shape[:-1] + [2 * shape[-1]]
    ir.add(f"{flat} = tensor.collapse_shape {bc} [{groups}] : {_t(shape + [2], 'f32')} into "
           f"{_t(out, 'f32')}")
    return flat


def _unsqueeze_heads(ir, v, pb, s, n):
    """[pb, s, n] as [pb, s, 1, n] (GPT-J's sin[:, :, None, :])."""
    u = ir.fresh()
    ir.add(f"{u} = tensor.expand_shape {v} [[0], [1, 2], [3]] output_shape [{pb}, {s}, 1, {n}] "
           f": {_t([pb, s, n], 'f32')} into {_t([pb, s, 1, n], 'f32')}")
    return u


INTERLEAVED_LOOK_ALIKES = {
    # GPT-J: stack((-x[..., ::2], x[..., 1::2])): the even element negated.
    "negate_even": "gptj",
    # GPT-J: stack((x[..., ::2], -x[..., 1::2])): the halves of each pair swapped.
    "stack_swapped": "gptj",
    # GPT-J: tables of cat(F, F) (rotate_half's) with rotate_every_two.
    "tiled_tables": "gptj",
    # Pairs: (x_r·cos + x_i·sin, x_i·cos - x_r·sin), a rotation by -θ.
    "conjugate": "pairs",
    # Pairs: x_r and x_i exchanged in every product.
    "elements_swapped": "pairs",
}


def interleaved_rope_program(rng, form, name="rope", b=2, s=6, h=3, d=8, base=10000.0,
                             rotary=None, look_alike=None, inv_freq=None):
    """Interleaved RoPE on x [B, S, H, D] as TorchToLinalg writes it:
    GPT-J's x·cos + rotate_every_two(x)·sin with repeat_interleave'd
    tables, or Meta's pairs (x_r·cos - x_i·sin, x_r·sin + x_i·cos) stacked
    and flattened (Llama's apply_rotary_emb in real arithmetic, as
    ExecuTorch writes it). (IR, inputs, float64 expected). `look_alike`
    (a key of INTERLEAVED_LOOK_ALIKES) writes a program that is not RoPE;
    its expected result is then None. `inv_freq` as in rope_program."""
    ir = _Ir("f32")
    d_full, d = d, rotary or d
    half = d // 2
    factor = 2.0 if form["scaling"] == "linear" else 1.0
    fac = form["factor"]
    inv = (1.0 / (np.float32(base) ** (np.arange(0, d, 2, dtype=np.float32) / np.float32(d)))
           / np.float32(factor)).astype(np.float32)
    if inv_freq is not None:
        inv = np.asarray(inv_freq, np.float32)
    pb = b if form["batched_pos"] else 1
    x = rng.uniform(-1, 1, (b, s, h, d_full)).astype(np.float32)
    pos = rng.integers(0, 40, (pb, s)).astype(np.int64)
    constant = form["tables"] == "constant"
    gathered = form["tables"] == "gathered"
    gptj = form["style"] == "gptj"
    repeat_tables = gptj and form["repeat"] == "tables"
    if constant:
        pos = np.broadcast_to(np.arange(s, dtype=np.int64), (pb, s)).copy()
        ang = np.arange(s, dtype=np.float32)[:, None] * inv
    elif not gathered:
        f = _angles(ir, form, _positions_f32(ir, pb, s), inv, pb, s, half)
        if look_alike == "tiled_tables":
            tiled = ir.fresh()
            ir.add(f"{tiled} = tensor.concat dim(2) {f}, {f} : ({_t([pb, s, half], 'f32')}, "
                   f"{_t([pb, s, half], 'f32')}) -> {_t([pb, s, d], 'f32')}")
            f = tiled
        elif gptj and not repeat_tables:
            f = _repeat_interleave(ir, f, [pb, s, half])
    # Columns of the tables as read: D repeated (GPT-J), D/2 (pairs).
    cols = d if gptj else half
    if gathered and gptj:
        # GPT-J's embed_positions: cat(sin, cos) of each cached position,
        # gathered once and split.
        ca = _cache_angles(inv)
        sincos = _gather(ir, _cache(ir, (np.float32(fac) * np.concatenate(
            [np.sin(ca), np.cos(ca)], axis=-1)).astype(np.float32)), d, pb, s)

    def table(fn):
        if gathered:
            if gptj:
                g = ir.fresh()
                lo = half if fn == "math.cos" else 0
                ir.add(f"{g} = tensor.extract_slice {sincos}[0, 0, {lo}] [{pb}, {s}, {half}] "
                       f"[1, 1, 1] : {_t([pb, s, d], 'f32')} to {_t([pb, s, half], 'f32')}")
            else:
                ca = _cache_angles(inv)
                vals = (np.float32(fac) * (np.cos(ca) if fn == "math.cos" else np.sin(ca))
                        ).astype(np.float32)
                g = _gather(ir, _cache(ir, vals), half, pb, s)
            u = _unsqueeze_heads(ir, g, pb, s, half)
            return _repeat_interleave(ir, u, [pb, s, 1, half]) if gptj else u
        if constant:
            vals = (np.float32(fac) * (np.cos(ang) if fn == "math.cos" else np.sin(ang))
                    ).astype(np.float32)
            n = half
            if gptj and not repeat_tables:
                vals, n = np.repeat(vals, 2, axis=-1), d
            rows = ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in vals)
            u = ir.fresh()
            ir.add(f"{u} = arith.constant dense<[[{rows}]]> : {_t([1, s, n], 'f32')}")
            u = _unsqueeze_heads(ir, u, 1, s, n)
            if repeat_tables:
                u = _repeat_interleave(ir, u, [1, s, 1, half])
            return u
        lines = [f"%t = {fn} {{}} : f32"]
        if fac != 1.0:
            lines = [f"%u = {fn} {{}} : f32", f"%a = arith.constant {fac} : f32",
                     "%t = arith.mulf %u, %a : f32"]
        n = d if gptj and not repeat_tables else half
        t = ir.generic([(f, [pb, s, n], "d0, d1, d2")], [pb, s, n], 3,
                       lambda g: ([ln.replace("{}", g[0]) for ln in lines], "%t"))
        u = _unsqueeze_heads(ir, t, pb, s, n)
        if repeat_tables:
            u = _repeat_interleave(ir, u, [pb, s, 1, half])
        return u

    cos, sin = table("math.cos"), table("math.sin")
    tb = 1 if constant else pb
    tmap = ("d0" if tb == b and b > 1 else "0") + ", d1, 0, d3"
    xt, full_t = _t([b, s, h, d], "f32"), _t([b, s, h, d_full], "f32")
    ht = _t([b, s, h, half], "f32")
    xn = "%x"
    if d < d_full:
        xn = ir.fresh()
        ir.add(f"{xn} = tensor.extract_slice %x[0, 0, 0, 0] [{b}, {s}, {h}, {d}] [1, 1, 1, 1] : "
               f"{full_t} to {xt}")
    # The even and odd elements of each pair.
    x0, x1 = ir.fresh(), ir.fresh()
    if form["slices"] == "strided":
        for v, off in ((x0, 0), (x1, 1)):
            ir.add(f"{v} = tensor.extract_slice {xn}[0, 0, 0, {off}] [{b}, {s}, {h}, {half}] "
                   f"[1, 1, 1, 2] : {xt} to {ht}")
    else:
        xp = ir.fresh()
        pt = _t([b, s, h, half, 2], "f32")
        ir.add(f"{xp} = tensor.expand_shape {xn} [[0], [1], [2], [3, 4]] output_shape "
               f"[{b}, {s}, {h}, {half}, 2] : {xt} into {pt}")
        for v, off in ((x0, 0), (x1, 1)):
            ir.add(f"{v} = tensor.extract_slice {xp}[0, 0, 0, 0, {off}] [{b}, {s}, {h}, {half}, 1] "
                   f"[1, 1, 1, 1, 1] : {pt} to {ht}")
    full = "d0, d1, d2, d3"

    def stack(a, c):
        ea, ec, cat, flat = ir.fresh(), ir.fresh(), ir.fresh(), ir.fresh()
        et = _t([b, s, h, half, 1], "f32")
        for src, dst in ((a, ea), (c, ec)):
            ir.add(f"{dst} = tensor.expand_shape {src} [[0], [1], [2], [3, 4]] output_shape "
                   f"[{b}, {s}, {h}, {half}, 1] : {ht} into {et}")
        ir.add(f"{cat} = tensor.concat dim(4) {ea}, {ec} : ({et}, {et}) -> "
               f"{_t([b, s, h, half, 2], 'f32')}")
        ir.add(f"{flat} = tensor.collapse_shape {cat} [[0], [1], [2], [3, 4]] : "
               f"{_t([b, s, h, half, 2], 'f32')} into {xt}")
        return flat

    def mul(a, ashape, amap, c, cshape, cmap):
        return ir.generic([(a, ashape, amap), (c, cshape, cmap)], [b, s, h, ashape[-1]], 4,
                          lambda g: ([f"%r = arith.mulf {g[0]}, {g[1]} : f32"], "%r"))

    def binary(op, a, c, shape):
        return ir.generic([(a, shape, full), (c, shape, full)], shape, 4,
                          lambda g: ([f"%r = arith.{op} {g[0]}, {g[1]} : f32"], "%r"))

    tshape = [tb, s, 1, cols]
    if look_alike == "elements_swapped":
        x0, x1 = x1, x0
    if gptj:
        neg_src, kept = (x0, x1) if look_alike == "negate_even" else (x1, x0)
        n1 = ir.generic([(neg_src, [b, s, h, half], full)], [b, s, h, half], 4,
                        lambda g: ([f"%r = arith.negf {g[0]} : f32"], "%r"))
        rot = stack(kept, n1) if look_alike == "stack_swapped" else stack(n1, kept)
        if form["apply"] == "fused":
            y = ir.generic([(xn, [b, s, h, d], full), (cos, tshape, tmap),
                            (rot, [b, s, h, d], full), (sin, tshape, tmap)], [b, s, h, d], 4,
                           lambda g: ([f"%m = arith.mulf {g[0]}, {g[1]} : f32",
                                       f"%n = arith.mulf {g[2]}, {g[3]} : f32",
                                       "%r = arith.addf %m, %n : f32"], "%r"))
        else:
            y = binary("addf", mul(xn, [b, s, h, d], full, cos, tshape, tmap),
                       mul(rot, [b, s, h, d], full, sin, tshape, tmap), [b, s, h, d])
    else:
        hs = [b, s, h, half]
        # (a, t, c, u, op): a·t op c·u.
        parts = [(x0, cos, x1, sin, "subf"), (x0, sin, x1, cos, "addf")]
        if look_alike == "conjugate":
            parts = [(x0, cos, x1, sin, "addf"), (x1, cos, x0, sin, "subf")]
        re, im = [
            (ir.generic([(a, hs, full), (t, tshape, tmap), (c, hs, full), (u, tshape, tmap)],
                        hs, 4, lambda g, op=op: ([f"%m = arith.mulf {g[0]}, {g[1]} : f32",
                                                  f"%n = arith.mulf {g[2]}, {g[3]} : f32",
                                                  f"%r = arith.{op} %m, %n : f32"], "%r"))
             if form["apply"] == "fused" else
             binary(op, mul(a, hs, full, t, tshape, tmap), mul(c, hs, full, u, tshape, tmap), hs))
            for a, t, c, u, op in parts]
        y = stack(re, im)
    text = _rope_function(ir, name, y, [b, s, h], d, d_full, [pb, s])
    omega = base ** (-np.arange(0, d, 2) / d) / factor
    if inv_freq is not None:
        omega = inv.astype(np.float64)
    theta = pos.astype(np.float64)[:, :, None, None] * omega       # [pb, s, 1, half]
    xd = x.astype(np.float64)
    ev, od = xd[..., 0:d:2], xd[..., 1:d:2]
    expected = xd.copy()
    expected[..., 0:d:2] = fac * (ev * np.cos(theta) - od * np.sin(theta))
    expected[..., 1:d:2] = fac * (od * np.cos(theta) + ev * np.sin(theta))
    return text, [x, pos], None if look_alike else expected


MLA_FORMS = {
    "join": ("concat", "insert"),        # tensor.concat, or new_empty + slice assignments
    "weight": ("broadcast", "generic"),  # W over the batch: linalg.broadcast, or a generic
    "causal": (False, True),
    "softmax": FORMS["softmax"],
    "scale": ("mul", "div_splat"),
    "k": FORMS["k"],
}


def random_mla_form(rng):
    return {k: v[rng.integers(len(v))] for k, v in MLA_FORMS.items()}


MLA_LOOK_ALIKES = {
    # W differs between the two batch rows (concatenated W and 2·W): no
    # one w_uk, w_uv.
    "per_batch_weight": "",
    # v = kv[..., Dn - 2:Dn - 2 + Dv] overlaps k_nope: not the split of W.
    "values_overlap": "",
    # [q_pe | q_nope]: the query's columns meet the keys' out of order.
    "queries_rope_first": "",
}


def mla_program(rng, form, b=2, h=3, sq=5, sk=7, dn=8, dr=4, dv=6, c=10, look_alike=None):
    """DeepSeek-V2's multi-head latent attention, naive, as Hugging Face's
    DeepseekV2Attention writes it and TorchToLinalg lowers it: kv_b_proj
    (c_kv·Wᵀ, W [H·(Dn + Dv), C] broadcast over the batch for
    linalg.batch_matmul) viewed as [B, Sk, H, Dn + Dv], transposed to
    [B, H, Sk, .] and split into k_nope and v; queries [q_nope | q_pe],
    keys [k_nope | k_pe expanded over the heads]; the attention a call of
    attention_program's function. Arguments q_nope [B, H, Sq, Dn], q_pe
    [B, H, Sq, Dr] (rotated), c_kv [B, Sk, C], k_pe [B, 1, Sk, Dr], W.
    (IR, inputs, float64 expected [B, H, Sq, Dv]); `look_alike` (a key of
    MLA_LOOK_ALIKES, b = 2) writes a program that is not MLA, its
    expected None."""
    from posenc import reference

    ir = _Ir("f32")
    e, n, d = dn + dv, h * (dn + dv), dn + dr
    qn = rng.uniform(-1, 1, (b, h, sq, dn)).astype(np.float32)
    qr = rng.uniform(-1, 1, (b, h, sq, dr)).astype(np.float32)
    ckv = rng.uniform(-1, 1, (b, sk, c)).astype(np.float32)
    kpe = rng.uniform(-1, 1, (b, 1, sk, dr)).astype(np.float32)
    w = (rng.uniform(-1, 1, (n, c)) / np.sqrt(c)).astype(np.float32)
    wt, init = ir.fresh(), ir.empty([c, n])
    ir.add(f"{wt} = linalg.transpose ins(%w : {_t([n, c], 'f32')}) outs({init} : "
           f"{_t([c, n], 'f32')}) permutation = [1, 0]")
    if look_alike == "per_batch_weight":
        u, wb = ir.fresh(), ir.fresh()
        ir.add(f"{u} = tensor.expand_shape {wt} [[0, 1], [2]] output_shape [1, {c}, {n}] : "
               f"{_t([c, n], 'f32')} into {_t([1, c, n], 'f32')}")
        u2 = ir.generic([(u, [1, c, n], "d0, d1, d2")], [1, c, n], 3,
                        lambda g: ([f"%r = arith.addf {g[0]}, {g[0]} : f32"], "%r"))
        ir.add(f"{wb} = tensor.concat dim(0) {u}, {u2} : ({_t([1, c, n], 'f32')}, "
               f"{_t([1, c, n], 'f32')}) -> {_t([b, c, n], 'f32')}")
    elif form["weight"] == "broadcast":
        wb, init = ir.fresh(), ir.empty([b, c, n])
        ir.add(f"{wb} = linalg.broadcast ins({wt} : {_t([c, n], 'f32')}) outs({init} : "
               f"{_t([b, c, n], 'f32')}) dimensions = [0]")
    else:
        u = ir.fresh()
        ir.add(f"{u} = tensor.expand_shape {wt} [[0, 1], [2]] output_shape [1, {c}, {n}] : "
               f"{_t([c, n], 'f32')} into {_t([1, c, n], 'f32')}")
        wb = ir.generic([(u, [1, c, n], "0, d1, d2")], [b, c, n], 3, lambda g: ([], g[0]))
    z, proj = ir.fill([b, sk, n], "0.0"), ir.fresh()
    ir.add(f"{proj} = linalg.batch_matmul ins(%ckv, {wb} : {_t([b, sk, c], 'f32')}, "
           f"{_t([b, c, n], 'f32')}) outs({z} : {_t([b, sk, n], 'f32')}) -> "
           f"{_t([b, sk, n], 'f32')}")
    kv4, kvt, init = ir.fresh(), ir.fresh(), ir.empty([b, h, sk, e])
    ir.add(f"{kv4} = tensor.expand_shape {proj} [[0], [1], [2, 3]] output_shape "
           f"[{b}, {sk}, {h}, {e}] : {_t([b, sk, n], 'f32')} into {_t([b, sk, h, e], 'f32')}")
    ir.add(f"{kvt} = linalg.transpose ins({kv4} : {_t([b, sk, h, e], 'f32')}) outs({init} : "
           f"{_t([b, h, sk, e], 'f32')}) permutation = [0, 2, 1, 3]")
    kn, v = ir.fresh(), ir.fresh()
    ir.add(f"{kn} = tensor.extract_slice {kvt}[0, 0, 0, 0] [{b}, {h}, {sk}, {dn}] [1, 1, 1, 1] : "
           f"{_t([b, h, sk, e], 'f32')} to {_t([b, h, sk, dn], 'f32')}")
    v_at = dn - 2 if look_alike == "values_overlap" else dn
    ir.add(f"{v} = tensor.extract_slice {kvt}[0, 0, 0, {v_at}] [{b}, {h}, {sk}, {dv}] [1, 1, 1, 1] "
           f": {_t([b, h, sk, e], 'f32')} to {_t([b, h, sk, dv], 'f32')}")
    kr = ir.generic([("%kpe", [b, 1, sk, dr], "d0, 0, d2, d3")], [b, h, sk, dr], 4,
                    lambda g: ([], g[0]))

    def join(a, a_last, x, s):
        shape = [b, h, s, d]
        r = ir.fresh()
        if form["join"] == "concat":
            ir.add(f"{r} = tensor.concat dim(3) {a}, {x} : ({_t([b, h, s, a_last], 'f32')}, "
                   f"{_t([b, h, s, d - a_last], 'f32')}) -> {_t(shape, 'f32')}")
            return r
        full, first = ir.empty(shape), ir.fresh()
        ir.add(f"{first} = tensor.insert_slice {a} into {full}[0, 0, 0, 0] [{b}, {h}, {s}, "
               f"{a_last}] [1, 1, 1, 1] : {_t([b, h, s, a_last], 'f32')} into {_t(shape, 'f32')}")
        ir.add(f"{r} = tensor.insert_slice {x} into {first}[0, 0, 0, {a_last}] [{b}, {h}, {s}, "
               f"{d - a_last}] [1, 1, 1, 1] : {_t([b, h, s, d - a_last], 'f32')} into "
               f"{_t(shape, 'f32')}")
        return r

    q = (join("%qr", dr, "%qn", sq) if look_alike == "queries_rope_first"
         else join("%qn", dn, "%qr", sq))
    k = join(kn, dn, kr, sk)
    aform = dict(batch=2, k=form["k"], named=False, scale=form["scale"],
                 bias="causal" if form["causal"] else "none", softmax=form["softmax"],
                 elem="f32", gqa="none")
    attn, _, _ = attention_program(rng, aform, name="attn", sizes=(sq, sk, d, dv),
                                   batch=(b, h), expected=False)
    o = ir.fresh()
    qt, kt, vt, ot = (_t([b, h, s, x], "f32") for s, x in ((sq, d), (sk, d), (sk, dv), (sq, dv)))
    ir.add(f"{o} = func.call @attn({q}, {k}, {v}) : ({qt}, {kt}, {vt}) -> {ot}")
    args = (f"%qn: {_t([b, h, sq, dn], 'f32')}, %qr: {_t([b, h, sq, dr], 'f32')}, "
            f"%ckv: {_t([b, sk, c], 'f32')}, %kpe: {_t([b, 1, sk, dr], 'f32')}, "
            f"%w: {_t([n, c], 'f32')}")
    text = (f"func.func @mla({args}) -> {ot} {{\n" + "\n".join(ir.lines)
            + f"\n  return {o} : {ot}\n}}\n"
            + attn.replace("func.func @attn(", "func.func private @attn("))
    if look_alike:
        return text, [qn, qr, ckv, kpe, w], None
    w3 = w.astype(np.float64).reshape(h, e, c)
    scale = 0.35 if form["scale"] == "mul" else 1 / np.sqrt(d)
    out = reference.mla_absorb(qn.transpose(0, 2, 1, 3), qr.transpose(0, 2, 1, 3), ckv,
                               kpe[:, 0], w3[:, :dn], w3[:, dn:], scale=scale,
                               causal=form["causal"])
    return text, [qn, qr, ckv, kpe, w], np.asarray(out).transpose(0, 2, 1, 3)
