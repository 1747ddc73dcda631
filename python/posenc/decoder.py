"""A whole Llama-architecture decoder compiled by posenc, with a KV cache.

    model = posenc.models.load("stories260K.bin")          # llama2.c checkpoint
    model = posenc.models.load("Qwen2.5-0.5B/")            # or a Hugging Face dir
    logits = model.prefill([1, 403, 407])                  # [S, vocab]
    logits = model.decode(261)                             # [vocab], next position
    ids = list(model.generate([1], steps=64))              # greedy by default

The IR (`model.ir`) has two entry points compiled once, `prefill` (any
number of tokens from a start position) and `decode` (one token):

    prefill(tokens: tensor<?xi32>, start: tensor<1xi64>, <weights>,
            k_cache, v_cache) -> tensor<?x<vocab>xf32>

<weights> are global_names(config) (token_embedding, rms_final, wcls and,
by family, LayerNorm biases and BLOOM's embedding norm), then per layer
layer_names(config, layer) (norms, projections, biases, QK-norm weights,
the MLP, or a mixture of experts' router and experts; MLA's latent
projections instead of wk/wv).

Weights and the caches are memref arguments, passed by reference: the
weights are read where the checkpoint's memory map holds them, and the
caches (cache_shapes: `[layers, max_seq, kv_heads, head_dim]` for keys and
values; MLA's `[layers, max_seq, 1, kv_lora_rank]` latent and
`[layers, max_seq, 1, rope dims]` rope keys) are written in place — one
row per token and layer, so a step's cost grows with the used length, not
with max_seq. Per layer (llama2.c run.c's forward): RMSNorm (eps 1e-5),
q/k/v projections, `posenc.rope` (interleaved pairs, base 10000) on q and
k, the new k and v rows inserted into the cache, `posenc.attention`
(causal, GQA) over the cache's first start + S rows, output projection and
residual, RMSNorm, SwiGLU MLP and residual; then the final RMSNorm and the
classifier. Matrices are used as stored ([out, in], y = x·Wᵀ). Hugging
Face families (posenc.hf) change what the Config says: the RoPE layout,
base and scaling, per layer what Config.schemes says (QK-norm before RoPE,
NoPE layers, windows, soft-caps, softmax scales), LayerNorm and parallel
residuals (GPT-NeoX, Cohere 2, BLOOM, MPT), biases, ALiBi instead of RoPE
(`alibi`), DeepSeek's latent attention (`mla`), mixtures of experts
(`moe`), Gemma's embedding scale, GeGLU and norms after attention and MLP
(Gemma 2/3: `sandwich_norm`), soft-capped (Gemma 2) or scaled (Cohere)
logits. T5 encoder-decoders are posenc.t5's.
"""

import os
import sys

import numpy as np

from .llama2c import CheckpointError, Tokenizer, layer_weights, read_checkpoint
from .models import _mlir_float

# Argument order of the weights in both entry points: the globals, then
# each layer's.
GLOBALS = ("token_embedding", "rms_final", "wcls")
LAYER = ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3")
BIASES = ("bq", "bk", "bv")


def _dims(shape):
    return "x".join("?" if d is None else str(d) for d in shape)


def _tensor(shape, elem="f32"):
    return f"tensor<{_dims(shape)}x{elem}>"


def _memref(shape, elem="f32"):
    return f"memref<{_dims(shape)}x{elem}>"


class _Function:
    """Text of one entry point; `s` is the token count (None: dynamic)."""

    def __init__(self, cfg, max_seq, s):
        self.c, self.max_seq, self.s = cfg, max_seq, s
        self.lines, self.n = [], 0
        self.S = "%S" if s is None else str(s)

    def fresh(self, stem):
        self.n += 1
        return f"%{stem}{self.n}"

    def emit(self, line):
        self.lines.append("  " + line)

    def empty(self, shape, elem="f32", dyn="%S"):
        v = self.fresh("e")
        dyn = dyn if None in shape else ""
        self.emit(f"{v} = tensor.empty({dyn}) : {_tensor(shape, elem)}")
        return v

    def zeros(self, shape, dyn="%S"):
        v = self.fresh("z")
        self.emit(f"{v} = linalg.fill ins(%zero : f32) outs({self.empty(shape, dyn=dyn)} : "
                  f"{_tensor(shape)}) -> {_tensor(shape)}")
        return v

    def generic(self, ins, out_shape, maps, iters, body, out=None):
        """linalg.generic over `ins` [(value, type)] into a new [out_shape]
        tensor (or `out`); `body` lines use %a0.. for the inputs, %acc for
        the output element and end with the value to yield."""
        v = self.fresh("g")
        out = out or self.empty(out_shape)
        t = _tensor(out_shape)
        args = ", ".join(f"%a{i}: {'i32' if 'i32' in ty else 'f32'}"
                         for i, (_, ty) in enumerate(ins))
        args = (args + ", " if args else "") + "%acc: f32"
        ins_txt = (f"ins({', '.join(x for x, _ in ins)} : {', '.join(ty for _, ty in ins)}) "
                   if ins else "")
        maps_txt = ", ".join(f"affine_map<{m}>" for m in maps)
        iters_txt = ", ".join(f'"{i}"' for i in iters)
        self.emit(f"{v} = linalg.generic {{indexing_maps = [{maps_txt}], "
                  f"iterator_types = [{iters_txt}]}} {ins_txt}outs({out} : {t}) {{")
        self.emit(f"^bb0({args}):")
        *stmts, result = body
        for st in stmts:
            self.emit("  " + st)
        self.emit(f"  linalg.yield {result} : f32")
        self.emit(f"}} -> {t}")
        return v

    def rmsnorm(self, x, w, width):
        # run.c: x·(1/sqrt(mean(x²) + eps))·w, in f32.
        s = self.s
        ss = self.generic([(x, _tensor((s, width)))], (s,),
                          ["(s, d) -> (s, d)", "(s, d) -> (s)"], ["parallel", "reduction"],
                          ["%sq = arith.mulf %a0, %a0 : f32",
                           "%r = arith.addf %acc, %sq : f32", "%r"],
                          out=self.zeros((s,)))
        return self.generic([(x, _tensor((s, width))), (ss, _tensor((s,))),
                             (w, _tensor((width,)))], (s, width),
                            ["(s, d) -> (s, d)", "(s, d) -> (s)", "(s, d) -> (d)",
                             "(s, d) -> (s, d)"], ["parallel", "parallel"],
                            [f"%mean = arith.divf %a1, %width{width} : f32",
                             "%me = arith.addf %mean, %eps : f32",
                             "%rt = math.sqrt %me : f32",
                             "%inv = arith.divf %one, %rt : f32",
                             "%xs = arith.mulf %inv, %a0 : f32",
                             "%r = arith.mulf %a2, %xs : f32", "%r"])

    def layernorm(self, x, w, b, width):
        # torch.nn.LayerNorm: (x - mean)/sqrt(var + eps)·w + b, biased var.
        s, t = self.s, _tensor((self.s, width))
        mean = self.generic([(x, t)], (s,), ["(s, d) -> (s, d)", "(s, d) -> (s)"],
                            ["parallel", "reduction"], ["%r = arith.addf %acc, %a0 : f32", "%r"],
                            out=self.zeros((s,)))
        var = self.generic([(x, t), (mean, _tensor((s,)))], (s,),
                           ["(s, d) -> (s, d)", "(s, d) -> (s)", "(s, d) -> (s)"],
                           ["parallel", "reduction"],
                           [f"%m = arith.divf %a1, %width{width} : f32",
                            "%dx = arith.subf %a0, %m : f32", "%sq = arith.mulf %dx, %dx : f32",
                            "%r = arith.addf %acc, %sq : f32", "%r"], out=self.zeros((s,)))
        return self.generic([(x, t), (mean, _tensor((s,))), (var, _tensor((s,))),
                             (w, _tensor((width,))), (b, _tensor((width,)))], (s, width),
                            ["(s, d) -> (s, d)", "(s, d) -> (s)", "(s, d) -> (s)",
                             "(s, d) -> (d)", "(s, d) -> (d)", "(s, d) -> (s, d)"],
                            ["parallel", "parallel"],
                            [f"%m = arith.divf %a1, %width{width} : f32",
                             f"%v = arith.divf %a2, %width{width} : f32",
                             "%ve = arith.addf %v, %eps : f32", "%rt = math.sqrt %ve : f32",
                             "%dx = arith.subf %a0, %m : f32", "%xn = arith.divf %dx, %rt : f32",
                             "%g = arith.mulf %xn, %a3 : f32", "%r = arith.addf %g, %a4 : f32",
                             "%r"])

    def mla_attention(self, xb, layer, pos, kc, vc, cache):
        """DeepSeek's multi-head latent attention (DeepSeek-V2 modeling,
        arXiv 2405.04434 §2.1): q = wq·x (or wq·RMSNorm(wq_a·x)); [c | k_pe]
        = wkv_a·x; the cache gets RMSNorm(c) and the rotated k_pe; attention
        is posenc.mla_absorb over the cached latent with w_uk, w_uv the
        per-head row blocks of wkv_b. Returns (o_proj output, caches)."""
        c, s, d = self.c, self.s, self.c.dim
        m = c.mla
        H, C, dn, dr, dv = c.n_heads, m["kv_rank"], m["dn"], m["dr"], m["dv"]
        lw = lambda n: self.layer_weight(n, layer)  # noqa: E731
        if m["q_rank"]:
            qa = self.linear(xb, lw("wq_a"), m["q_rank"], d)
            qa = self.rmsnorm(qa, lw("q_norm_a"), m["q_rank"])
            q = self.linear(qa, lw("wq"), H * (dn + dr), m["q_rank"])
        else:
            q = self.linear(xb, lw("wq"), H * (dn + dr), d)
        kv = self.linear(xb, lw("wkv_a"), C + dr, d)
        S = self.S
        q4, qt = self.fresh("q4"), _tensor((1, s, H, dn + dr))
        self.emit(f"{q4} = tensor.expand_shape {q} [[0, 1], [2, 3]] output_shape "
                  f"[1, {S}, {H}, {dn + dr}] : {_tensor((s, H * (dn + dr)))} into {qt}")
        qn, qp = self.fresh("qn"), self.fresh("qp")
        self.emit(f"{qn} = tensor.extract_slice {q4}[0, 0, 0, 0] [1, {S}, {H}, {dn}] "
                  f"[1, 1, 1, 1] : {qt} to {_tensor((1, s, H, dn))}")
        self.emit(f"{qp} = tensor.extract_slice {q4}[0, 0, 0, {dn}] [1, {S}, {H}, {dr}] "
                  f"[1, 1, 1, 1] : {qt} to {_tensor((1, s, H, dr))}")
        lat, kp = self.fresh("lat"), self.fresh("kp")
        self.emit(f"{lat} = tensor.extract_slice {kv}[0, 0] [{S}, {C}] [1, 1] : "
                  f"{_tensor((s, C + dr))} to {_tensor((s, C))}")
        self.emit(f"{kp} = tensor.extract_slice {kv}[0, {C}] [{S}, {dr}] [1, 1] : "
                  f"{_tensor((s, C + dr))} to {_tensor((s, dr))}")
        lat = self.rmsnorm(lat, lw("kv_norm"), C)
        attrs = _rope_attributes(c)
        qr, kp4, kr = self.fresh("qr"), self.fresh("kp4"), self.fresh("kr")
        self.emit(f"{qr} = posenc.rope {qp}, {pos} layout {c.rope_layout}{attrs} : "
                  f"{_tensor((1, s, H, dr))}, {_tensor((s,), 'i64')}")
        self.emit(f"{kp4} = tensor.expand_shape {kp} [[0, 1], [2, 3]] output_shape "
                  f"[1, {S}, 1, {dr}] : {_tensor((s, dr))} into {_tensor((1, s, 1, dr))}")
        self.emit(f"{kr} = posenc.rope {kp4}, {pos} layout {c.rope_layout}{attrs} : "
                  f"{_tensor((1, s, 1, dr))}, {_tensor((s,), 'i64')}")
        lat4 = self.fresh("lat4")
        self.emit(f"{lat4} = tensor.expand_shape {lat} [[0, 1], [2, 3]] output_shape "
                  f"[1, {S}, 1, {C}] : {_tensor((s, C))} into {_tensor((1, s, 1, C))}")
        views, out = [], []
        for value, old, shape, width in ((lat4, kc, cache[0], C), (kr, vc, cache[1], dr)):
            upd, view = self.fresh("mc"), self.fresh("mall")
            self.emit(f"{upd} = tensor.insert_slice {value} into {old}[{layer}, %p0, 0, 0] "
                      f"[1, {S}, 1, {width}] [1, 1, 1, 1] : {_tensor((1, s, 1, width))} into "
                      f"{_tensor(shape)}")
            self.emit(f"{view} = tensor.extract_slice {upd}[{layer}, 0, 0, 0] [1, %n, 1, "
                      f"{width}] [1, 1, 1, 1] : {_tensor(shape)} to {_tensor((1, None, width))}")
            views.append(view)
            out.append(upd)
        wb, wuk, wuv = self.fresh("wb"), self.fresh("wuk"), self.fresh("wuv")
        self.emit(f"{wb} = tensor.expand_shape {lw('wkv_b')} [[0, 1], [2]] output_shape "
                  f"[{H}, {dn + dv}, {C}] : {_tensor((H * (dn + dv), C))} into "
                  f"{_tensor((H, dn + dv, C))}")
        self.emit(f"{wuk} = tensor.extract_slice {wb}[0, 0, 0] [{H}, {dn}, {C}] [1, 1, 1] : "
                  f"{_tensor((H, dn + dv, C))} to {_tensor((H, dn, C))}")
        self.emit(f"{wuv} = tensor.extract_slice {wb}[0, {dn}, 0] [{H}, {dv}, {C}] [1, 1, 1] : "
                  f"{_tensor((H, dn + dv, C))} to {_tensor((H, dv, C))}")
        att, att2 = self.fresh("att"), self.fresh("att")
        self.emit(f"{att} = posenc.mla_absorb {qn}, {qr}, {views[0]}, {views[1]}, {wuk}, {wuv} "
                  f"causal {{scale = {_mlir_float(m['scale'])} : f64}} : {_tensor((1, s, H, dn))}, "
                  f"{_tensor((1, s, H, dr))}, {_tensor((1, None, C))}, "
                  f"{_tensor((1, None, dr))}, {_tensor((H, dn, C))}, {_tensor((H, dv, C))} -> "
                  f"{_tensor((1, s, H, dv))}")
        self.emit(f"{att2} = tensor.collapse_shape {att} [[0, 1], [2, 3]] : "
                  f"{_tensor((1, s, H, dv))} into {_tensor((s, H * dv))}")
        return self.linear(att2, lw("wo"), d, H * dv), out[0], out[1]

    def mlp(self, xb, layer, hid, kind, biases=False, prefix=""):
        """The MLP of `kind` on xb [S, d] with the layer's weights
        <prefix>w1 (gate or up), w3 (up, gated kinds) and w2 (down)."""
        s, d = self.s, self.c.dim
        t = _tensor((s, hid))
        h1 = self.linear(xb, self.layer_weight(prefix + "w1", layer), hid, d)
        if biases:
            h1 = self.add_bias(h1, self.layer_weight("b1", layer), hid)
        gated = kind in ("swiglu", "geglu_tanh")
        ins = [(h1, t)]
        if gated:
            ins.append((self.linear(xb, self.layer_weight(prefix + "w3", layer), hid, d), t))
        if kind == "swiglu":  # silu(gate)·up
            body = ["%ng = arith.negf %a0 : f32", "%ex = math.exp %ng : f32",
                    "%den = arith.addf %one, %ex : f32", "%sg = arith.divf %one, %den : f32",
                    "%act = arith.mulf %a0, %sg : f32"]
        elif kind in ("gelu_tanh", "geglu_tanh"):
            # GELU's tanh form x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2 (BLOOM;
            # Gemma gated: gelu_tanh(gate)·up).
            body = ["%k0 = arith.constant 0.7978845608028654 : f32",
                    "%k1 = arith.constant 0.044715 : f32", "%half = arith.constant 0.5 : f32",
                    "%x2 = arith.mulf %a0, %a0 : f32", "%x3 = arith.mulf %x2, %a0 : f32",
                    "%c3 = arith.mulf %x3, %k1 : f32", "%in = arith.addf %a0, %c3 : f32",
                    "%ar = arith.mulf %in, %k0 : f32", "%th = math.tanh %ar : f32",
                    "%p1 = arith.addf %th, %one : f32", "%hx = arith.mulf %a0, %half : f32",
                    "%act = arith.mulf %hx, %p1 : f32"]
        elif kind == "relu":  # T5 v1.0
            body = ["%act = arith.maximumf %a0, %zero : f32"]
        else:  # exact GELU: x·(1 + erf(x/√2))/2
            body = ["%rs2 = arith.constant 0.70710678118654752 : f32",
                    "%half = arith.constant 0.5 : f32", "%xs = arith.mulf %a0, %rs2 : f32",
                    "%er = math.erf %xs : f32", "%p1 = arith.addf %er, %one : f32",
                    "%hx = arith.mulf %a0, %half : f32", "%act = arith.mulf %hx, %p1 : f32"]
        body += ["%r = arith.mulf %act, %a1 : f32", "%r"] if gated else ["%act"]
        g = self.generic(ins, (s, hid), ["(s, d) -> (s, d)"] * (len(ins) + 1),
                         ["parallel", "parallel"], body)
        y = self.linear(g, self.layer_weight(prefix + "w2", layer), d, hid)
        if biases:
            y = self.add_bias(y, self.layer_weight("b2", layer), d)
        return y

    def moe(self, xb, layer):
        """A mixture of experts on xb [S, d] (Mixtral, Qwen2/3-MoE,
        DeepSeek-V2/V3): router scores p = softmax(xb·routerᵀ) over E
        experts (DeepSeek-V3: sigmoid, and the choice is made on p plus
        e_score_correction_bias); with groups, the choice is limited to the
        topk_group groups of highest score (V2: the group's max; V3: the sum
        of its two best), others zeroed; the top_k of each token are kept
        (ties: the lower expert index, as torch.topk) with their p,
        renormalized with norm_topk (k > 1), and scaled by
        routed_scaling_factor (V2: when not renormalized; V3: always);
        y = Σ_e gate[:, e]·expert_e(xb). An expert no token chose is skipped
        (scf.if): a decode step runs top_k experts. Qwen2-MoE's shared
        expert adds sigmoid(xb·shared_gateᵀ)·shared(xb), DeepSeek's shared
        experts shared(xb)."""
        c, s, d = self.c, self.s, self.c.dim
        m = c.moe
        E, k = m["experts"], m["top_k"]
        te, ts = _tensor((s, E)), _tensor((s,))
        m2, par = ["(s, e) -> (s, e)"] * 2, ["parallel", "parallel"]
        row = ["(s, e) -> (s, e)", "(s, e) -> (s)"]
        logits = self.linear(xb, self.layer_weight("router", layer), E, d)
        if m.get("scoring") == "sigmoid":
            p = self.generic([(logits, te)], (s, E), m2, par,
                             ["%ng = arith.negf %a0 : f32", "%ex = math.exp %ng : f32",
                              "%den = arith.addf %one, %ex : f32",
                              "%r = arith.divf %one, %den : f32", "%r"])
        else:  # softmax over the experts (max-subtracted)
            mx = self.generic([(logits, te)], (s,), row, ["parallel", "reduction"],
                              ["%r = arith.maximumf %acc, %a0 : f32", "%r"],
                              out=self.fill((s,), "0xFF800000"))
            ex = self.generic([(logits, te), (mx, ts)], (s, E), row + ["(s, e) -> (s, e)"], par,
                              ["%dx = arith.subf %a0, %a1 : f32", "%r = math.exp %dx : f32",
                               "%r"])
            sm = self.generic([(ex, te)], (s,), row, ["parallel", "reduction"],
                              ["%r = arith.addf %acc, %a0 : f32", "%r"], out=self.zeros((s,)))
            p = self.generic([(ex, te), (sm, ts)], (s, E), row + ["(s, e) -> (s, e)"], par,
                             ["%r = arith.divf %a0, %a1 : f32", "%r"])
        sel = p
        if m.get("correction_bias"):
            sel = self.generic([(p, te), (self.layer_weight("router_bias", layer),
                                          _tensor((E,)))], (s, E),
                               ["(s, e) -> (s, e)", "(s, e) -> (e)", "(s, e) -> (s, e)"], par,
                               ["%r = arith.addf %a0, %a1 : f32", "%r"])
        if m.get("group"):
            sel = self.limit_groups(sel, E, *m["group"])
        rank = self.rank(sel, (s, E))
        # V3 weighs the chosen experts by p (the bias only chooses); V2 by
        # the group-limited scores.
        weights = p if m.get("correction_bias") else sel
        gate = self.generic([(weights, te), (rank, te)], (s, E), ["(s, e) -> (s, e)"] * 3, par,
                            [f"%k = arith.constant {_mlir_float(float(k))} : f32",
                             "%in = arith.cmpf olt, %a1, %k : f32",
                             "%r = arith.select %in, %a0, %zero : f32", "%r"])
        normalized = m["norm_topk"] and k > 1
        if normalized:
            gs = self.generic([(gate, te)], (s,), row, ["parallel", "reduction"],
                              ["%r = arith.addf %acc, %a0 : f32", "%r"], out=self.zeros((s,)))
            gate = self.generic([(gate, te), (gs, ts)], (s, E), row + ["(s, e) -> (s, e)"], par,
                                ["%r = arith.divf %a0, %a1 : f32", "%r"])
        if m.get("scaling", 1.0) != 1.0 and (not normalized or m.get("scale_always")):
            gate = self.generic([(gate, te)], (s, E), m2, par,
                                [f"%sc = arith.constant {_mlir_float(m['scaling'])} : f32",
                                 "%r = arith.mulf %a0, %sc : f32", "%r"])
        return self.experts(xb, layer, gate)

    def limit_groups(self, x, E, G, keep, how):
        """x [S, E] with the experts outside the `keep` groups (of G) of
        highest score zeroed; a group's score is its max ("max") or the sum
        of its two best ("top2")."""
        s, per = self.s, E // G
        t3, tg = _tensor((s, G, per)), _tensor((s, G))
        x3 = self.fresh("x3")
        self.emit(f"{x3} = tensor.expand_shape {x} [[0], [1, 2]] output_shape [{self.S}, {G}, "
                  f"{per}] : {_tensor((s, E))} into {t3}")
        m3 = ["(s, g, j) -> (s, g, j)", "(s, g, j) -> (s, g)"]
        red = ["parallel", "parallel", "reduction"]
        if how == "max":
            score = self.generic([(x3, t3)], (s, G), m3, red,
                                 ["%r = arith.maximumf %acc, %a0 : f32", "%r"],
                                 out=self.fill((s, G), "0xFF800000"))
        else:
            r3 = self.rank(x3, (s, G, per))
            score = self.generic([(x3, t3), (r3, t3)], (s, G), [m3[0], m3[0], m3[1]], red,
                                 ["%two = arith.constant 2.0 : f32",
                                  "%top = arith.cmpf olt, %a1, %two : f32",
                                  "%v = arith.select %top, %a0, %zero : f32",
                                  "%r = arith.addf %acc, %v : f32", "%r"],
                                 out=self.zeros((s, G)))
        grank = self.rank(score, (s, G))
        kept = self.generic([(x3, t3), (grank, tg)], (s, G, per), m3 + m3[:1], ["parallel"] * 3,
                            [f"%kg = arith.constant {_mlir_float(float(keep))} : f32",
                             "%in = arith.cmpf olt, %a1, %kg : f32",
                             "%r = arith.select %in, %a0, %zero : f32", "%r"])
        out = self.fresh("sel")
        self.emit(f"{out} = tensor.collapse_shape {kept} [[0], [1, 2]] : {t3} into "
                  f"{_tensor((s, E))}")
        return out

    def rank(self, x, shape):
        """rank[..., e] of x [..., n]: the entries ahead of e along the last
        dim (larger, or equal with a lower index: torch.topk's order), as
        f32."""
        t, r = _tensor(shape), len(shape)
        dims = [f"d{i}" for i in range(r)]
        lead = ", ".join(dims[:-1] + ["e"])
        other = ", ".join(dims[:-1] + ["f"])
        domain = f"({', '.join(dims[:-1] + ['e', 'f'])})"
        return self.generic([(x, t), (x, t)], shape,
                            [f"{domain} -> ({lead})", f"{domain} -> ({other})",
                             f"{domain} -> ({lead})"],
                            ["parallel"] * r + ["reduction"],
                            [f"%ei = linalg.index {r - 1} : index",
                             f"%fi = linalg.index {r} : index",
                             "%gt = arith.cmpf ogt, %a1, %a0 : f32",
                             "%eq = arith.cmpf oeq, %a1, %a0 : f32",
                             "%lo = arith.cmpi ult, %fi, %ei : index",
                             "%tie = arith.andi %eq, %lo : i1", "%ah = arith.ori %gt, %tie : i1",
                             "%inc = arith.select %ah, %one, %zero : f32",
                             "%r = arith.addf %acc, %inc : f32", "%r"], out=self.zeros(shape))

    def experts(self, xb, layer, gate):
        """y = Σ_e gate[:, e]·expert_e(xb) (+ the shared experts), each
        expert under an scf.if on its gate column."""
        c, s, d = self.c, self.s, self.c.dim
        m = c.moe
        E, hid = m["experts"], m["hidden"]
        te = _tensor((s, E))
        td = _tensor((s, d))
        y = self.zeros((s, d))
        t1 = _tensor((s, 1))
        for e in range(E):
            # Skipped unless some token routes to expert e (its gate column
            # has a nonzero).
            col = self.fresh("col")
            self.emit(f"{col} = tensor.extract_slice {gate}[0, {e}] [{self.S}, 1] [1, 1] : "
                      f"{te} to {t1}")
            used = self.generic([(col, t1)], (1,), ["(s, o) -> (s, o)", "(s, o) -> (o)"],
                                ["reduction", "parallel"],
                                ["%nz = arith.cmpf one, %a0, %zero : f32",
                                 "%r = arith.select %nz, %one, %acc : f32", "%r"],
                                out=self.zeros((1,)))
            flag, any_ = self.fresh("u"), self.fresh("any")
            self.emit(f"{flag} = tensor.extract {used}[%c0] : {_tensor((1,))}")
            self.emit(f"{any_} = arith.cmpf one, {flag}, %zero : f32")
            out = self.fresh("moe")
            self.emit(f"{out} = scf.if {any_} -> ({td}) {{")
            ye = self.mlp(xb, layer, hid, "swiglu", prefix=f"e{e}_")
            acc = self.generic([(y, td), (ye, td), (col, t1)], (s, d),
                               ["(s, d) -> (s, d)", "(s, d) -> (s, d)", "(s, d) -> (s, 0)",
                                "(s, d) -> (s, d)"], ["parallel", "parallel"],
                               ["%w = arith.mulf %a1, %a2 : f32",
                                "%r = arith.addf %a0, %w : f32", "%r"])
            self.emit(f"  scf.yield {acc} : {td}")
            self.emit("} else {")
            self.emit(f"  scf.yield {y} : {td}")
            self.emit("}")
            y = out
        if m["shared"] and not m.get("shared_gated", True):  # DeepSeek: added as is
            y = self.add(y, self.mlp(xb, layer, m["shared"], "swiglu", prefix="shared_"), d)
        elif m["shared"]:
            ys = self.mlp(xb, layer, m["shared"], "swiglu", prefix="shared_")
            sg = self.linear(xb, self.layer_weight("shared_gate", layer), 1, d)
            y = self.generic([(y, td), (ys, td), (sg, _tensor((s, 1)))], (s, d),
                             ["(s, d) -> (s, d)", "(s, d) -> (s, d)", "(s, d) -> (s, 0)",
                              "(s, d) -> (s, d)"], ["parallel", "parallel"],
                             ["%ng = arith.negf %a2 : f32", "%ex = math.exp %ng : f32",
                              "%den = arith.addf %one, %ex : f32",
                              "%sg = arith.divf %one, %den : f32",
                              "%w = arith.mulf %a1, %sg : f32", "%r = arith.addf %a0, %w : f32",
                              "%r"])
        return y

    def fill(self, shape, value):
        """A new [shape] tensor of the f32 literal `value`."""
        c, v = self.fresh("cst"), self.fresh("z")
        self.emit(f"{c} = arith.constant {value} : f32")
        self.emit(f"{v} = linalg.fill ins({c} : f32) outs({self.empty(shape)} : "
                  f"{_tensor(shape)}) -> {_tensor(shape)}")
        return v

    def positions(self, init, count, start):
        """i64 positions start..start+count-1 (count None: dynamic) into
        the tensor `init`."""
        v, t = self.fresh("pos"), _tensor((count,), "i64")
        self.emit(f"{v} = linalg.generic {{indexing_maps = [affine_map<(s) -> (s)>], "
                  f"iterator_types = [\"parallel\"]}} outs({init} : {t}) {{")
        self.emit("^bb0(%o: i64):")
        self.emit("  %i = linalg.index 0 : index")
        self.emit(f"  %a = arith.addi %i, {start} : index")
        self.emit("  %r = arith.index_cast %a : index to i64")
        self.emit("  linalg.yield %r : i64")
        self.emit(f"}} -> {t}")
        return v

    def head_rmsnorm(self, x, w, heads, hd, eps):
        """QK-norm: RMSNorm of x [1, S, heads, hd] over hd, times w [hd]."""
        t, t3 = _tensor((1, self.s, heads, hd)), _tensor((1, self.s, heads))
        z = self.zeros((1, self.s, heads))
        m4, m3 = "(b, s, h, d) -> (b, s, h, d)", "(b, s, h, d) -> (b, s, h)"
        ss = self.generic([(x, t)], (1, self.s, heads), [m4, m3],
                          ["parallel"] * 3 + ["reduction"],
                          ["%sq = arith.mulf %a0, %a0 : f32",
                           "%r = arith.addf %acc, %sq : f32", "%r"], out=z)
        return self.generic([(x, t), (ss, t3), (w, _tensor((hd,)))], (1, self.s, heads, hd),
                            [m4, m3, "(b, s, h, d) -> (d)", m4], ["parallel"] * 4,
                            [f"%dim = arith.constant {_mlir_float(float(hd))} : f32",
                             f"%qeps = arith.constant {float(eps):.9e} : f32",
                             "%mean = arith.divf %a1, %dim : f32",
                             "%me = arith.addf %mean, %qeps : f32",
                             "%rt = math.sqrt %me : f32", "%inv = arith.divf %one, %rt : f32",
                             "%y = arith.mulf %a0, %inv : f32",
                             "%r = arith.mulf %y, %a2 : f32", "%r"])

    def norm(self, x, w, b, width):
        return self.layernorm(x, w, b, width) if self.c.norm == "layer" else \
            self.rmsnorm(x, w, width)

    def linear(self, x, w, n, k, rows=None):
        """x [S, k] · wᵀ, w [n, k] as stored; `rows` (an index value) for x
        of that many rows instead of S."""
        v, m = self.fresh("mm"), None if rows else self.s
        out = self.zeros((m, n), dyn=rows or "%S")
        self.emit(f"{v} = linalg.matmul indexing_maps = [affine_map<(m, n, k) -> (m, k)>, "
                  f"affine_map<(m, n, k) -> (n, k)>, affine_map<(m, n, k) -> (m, n)>] "
                  f"ins({x}, {w} : {_tensor((m, k))}, {_tensor((n, k))}) "
                  f"outs({out} : {_tensor((m, n))}) -> {_tensor((m, n))}")
        return v

    def latent_kv(self, xb, layer, k_rot, caches, cache, rope):
        """Keys and values [1, n, Hkv, hd] of a compressed decoder
        (posenc.compress_kv): the new tokens' latent(s) go into the
        cache(s), the first n cached rows are up-projected; rebuilt keys are
        rotated at positions 0..n-1 by `rope` ((layout, attribute text) or
        None). Decoupled: the rotated keys `k_rot` are cached as usual.
        Returns (k, v, caches)."""
        c, kc = self.c, self.c.kv_compress
        Hkv, hd, d = c.n_kv_heads, c.head_dim, c.dim
        caches = list(caches)
        full = _tensor((1, None, Hkv, hd))

        def latent(i, a):
            width = cache[i][3]
            lat, lat4 = self.linear(xb, self.layer_weight(a, layer), width, d), self.fresh("lat")
            self.emit(f"{lat4} = tensor.expand_shape {lat} [[0, 1], [2, 3]] output_shape "
                      f"[1, {self.S}, 1, {width}] : {_tensor((self.s, width))} into "
                      f"{_tensor((1, self.s, 1, width))}")
            upd, view = self.fresh("lc"), self.fresh("lall")
            self.emit(f"{upd} = tensor.insert_slice {lat4} into {caches[i]}[{layer}, %p0, 0, 0] "
                      f"[1, {self.S}, 1, {width}] [1, 1, 1, 1] : "
                      f"{_tensor((1, self.s, 1, width))} into {_tensor(cache[i])}")
            self.emit(f"{view} = tensor.extract_slice {upd}[{layer}, 0, 0, 0] [1, %n, 1, "
                      f"{width}] [1, 1, 1, 1] : {_tensor(cache[i])} to "
                      f"{_tensor((None, width))}")
            caches[i] = upd
            return view, width

        def rebuild(view, width, b, per_head=hd):
            # B stored [R, Hkv·per_head]: the plain product vectorizes along
            # its columns whatever R is.
            m, m4, n = self.fresh("mm"), self.fresh("up"), Hkv * per_head
            out = self.zeros((None, n), dyn="%n")
            self.emit(f"{m} = linalg.matmul ins({view}, {self.layer_weight(b, layer)} : "
                      f"{_tensor((None, width))}, {_tensor((width, n))}) outs({out} : "
                      f"{_tensor((None, n))}) -> {_tensor((None, n))}")
            self.emit(f"{m4} = tensor.expand_shape {m} [[0, 1], [2, 3]] output_shape "
                      f"[1, %n, {Hkv}, {per_head}] : {_tensor((None, n))} into "
                      f"{_tensor((1, None, Hkv, per_head))}")
            return m4

        if kc["kind"] == "decoupled":
            # Partial rotary: the cache holds the rotated dims; the others
            # are rebuilt from the latent and joined after them.
            rot = kc.get("k_rot") or hd
            upd, k = self.fresh("kc"), self.fresh("kall")
            self.emit(f"{upd} = tensor.insert_slice {k_rot} into {caches[0]}[{layer}, %p0, 0, 0] "
                      f"[1, {self.S}, {Hkv}, {rot}] [1, 1, 1, 1] : "
                      f"{_tensor((1, self.s, Hkv, rot))} into {_tensor(cache[0])}")
            self.emit(f"{k} = tensor.extract_slice {upd}[{layer}, 0, 0, 0] [1, %n, {Hkv}, "
                      f"{rot}] [1, 1, 1, 1] : {_tensor(cache[0])} to "
                      f"{_tensor((1, None, Hkv, rot))}")
            caches[0] = upd
            lat = latent(1, "v_a")
            if rot < hd:
                nope, joined = rebuild(*lat, "k_b", hd - rot), self.fresh("kj")
                self.emit(f"{joined} = tensor.concat dim(3) {k}, {nope} : "
                          f"({_tensor((1, None, Hkv, rot))}, "
                          f"{_tensor((1, None, Hkv, hd - rot))}) -> {full}")
                k = joined
            return k, rebuild(*lat, "v_b"), caches
        if kc["kind"] == "joint":
            lk = lv = latent(0, "kv_a")
        else:
            lk, lv = latent(0, "k_a"), latent(1, "v_a")
        k, v = rebuild(*lk, "k_b"), rebuild(*lv, "v_b")
        if rope:
            if not hasattr(self, "key_positions"):
                init = self.fresh("e")
                self.emit(f"{init} = tensor.empty(%n) : {_tensor((None,), 'i64')}")
                self.key_positions = self.positions(init, None, "%c0")
            r = self.fresh("kr")
            self.emit(f"{r} = posenc.rope {k}, {self.key_positions} layout {rope[0]}{rope[1]} : "
                      f"{full}, {_tensor((None,), 'i64')}")
            k = r
        return k, v, caches

    def add_bias(self, x, b, width):
        return self.generic([(x, _tensor((self.s, width))), (b, _tensor((width,)))],
                            (self.s, width), ["(s, d) -> (s, d)", "(s, d) -> (d)",
                                              "(s, d) -> (s, d)"], ["parallel", "parallel"],
                            ["%r = arith.addf %a0, %a1 : f32", "%r"])

    def add(self, a, b, width):
        t = _tensor((self.s, width))
        return self.generic([(a, t), (b, t)], (self.s, width),
                            ["(s, d) -> (s, d)"] * 3, ["parallel", "parallel"],
                            ["%r = arith.addf %a0, %a1 : f32", "%r"])

    def layer_weight(self, name, layer, shape=None):
        return f"%L{layer}_{name}"


def _rope_attributes(c, scheme=None):
    from .models import _rope_attr_sc, _rope_attr_text

    if scheme is not None:
        return _rope_attr_text(scheme.base, c.rotary_dim, *_rope_attr_sc(scheme.scaling))
    return _rope_attr_text(float(c.rope_theta), c.rotary_dim, c.rope_scaling,
                           c.attention_factor)


def decoder_ir(cfg, max_seq):
    """posenc IR of the decoder `cfg` (a llama2c.Config) with caches of
    `max_seq` positions: the functions `prefill` and `decode`."""
    return "\n".join(_entry(cfg, max_seq, name, s)
                     for name, s in (("prefill", None), ("decode", 1))) + "\n"


def weight_shapes(c):
    """{name: shape} of the globals and of one layer's weights. The norms
    keep llama2.c's names (rms_*) whatever their kind; *_b are LayerNorm
    biases."""
    d, h, qd, kv, v = c.dim, c.hidden_dim, c.q_dim, c.kv_dim, c.vocab_size
    shapes = {"token_embedding": (v, d), "rms_final": (d,), "wcls": (v, d), "rms_att": (d,),
              "wq": (qd, d), "wk": (kv, d), "wv": (kv, d), "wo": (d, qd), "rms_ffn": (d,),
              "w1": (h, d), "w2": (d, h), "w3": (h, d)}
    if c.qkv_bias:
        shapes.update(bq=(qd,), bk=(kv,), bv=(kv,))
    if c.dense_bias:
        shapes.update(bo=(d,), b1=(h,), b2=(d,))
    if c.o_bias:
        shapes.update(bo=(d,))
    if c.norm == "layer":
        shapes.update(rms_att_b=(d,), rms_ffn_b=(d,), rms_final_b=(d,))
    if qk_norm(c):
        shapes.update(q_norm=(c.head_dim,), k_norm=(c.head_dim,))
    if c.sandwich_norm:
        shapes.update(post_att=(d,), post_ffn=(d,))
    if c.embed_norm:
        shapes.update(emb_norm=(d,), emb_norm_b=(d,))
    if c.mla:
        m = c.mla
        H, C, dn, dr, dv = c.n_heads, m["kv_rank"], m["dn"], m["dr"], m["dv"]
        shapes.update(wq=(H * (dn + dr), m["q_rank"] or d), wkv_a=(C + dr, d), kv_norm=(C,),
                      wkv_b=(H * (dn + dv), C), wo=(d, H * dv))
        if m["q_rank"]:
            shapes.update(wq_a=(m["q_rank"], d), q_norm_a=(m["q_rank"],))
    if c.kv_compress:
        from .compress_kv import weight_shapes as compressed_shapes

        shapes.update(compressed_shapes(c))
    if c.moe:
        m = c.moe
        shapes.update(router=(m["experts"], d), router_bias=(m["experts"],))
        for e in range(m["experts"]):
            shapes.update({f"e{e}_w1": (m["hidden"], d), f"e{e}_w3": (m["hidden"], d),
                           f"e{e}_w2": (d, m["hidden"])})
        if m["shared"]:
            shapes.update(shared_w1=(m["shared"], d), shared_w3=(m["shared"], d),
                          shared_w2=(d, m["shared"]), shared_gate=(1, d))

    return shapes


def qk_norm(c):
    """Whether the layers RMS-normalize q and k per head (QK-norm)."""
    return bool(c.schemes) and any(s.qk_norm for s in c.schemes)


def layer_names(c, layer=0):
    """Weight names of layer `layer` (they differ where a mixture of
    experts replaces some layers' MLP)."""
    names = LAYER if c.mlp in ("swiglu", "geglu_tanh") else \
        tuple(n for n in LAYER if n != "w3")
    if c.mla:
        names = tuple(n for n in names if n not in ("wk", "wv")) + ("wkv_a", "kv_norm", "wkv_b")
        names += ("wq_a", "q_norm_a") if c.mla["q_rank"] else ()
    if c.kv_compress:
        from .compress_kv import weight_shapes as compressed_shapes

        kept = ("wk",) if c.kv_compress["kind"] == "decoupled" else ()
        names = tuple(n for n in names if n not in ("wk", "wv") or n in kept) + \
            tuple(n for n in compressed_shapes(c) if n not in kept)
    if c.moe and c.moe["layers"][layer]:
        names = tuple(n for n in names if n not in ("w1", "w2", "w3")) + ("router",)
        names += ("router_bias",) if c.moe.get("correction_bias") else ()
        names += tuple(f"e{e}_{w}" for e in range(c.moe["experts"]) for w in ("w1", "w3", "w2"))
        if c.moe["shared"]:
            names += ("shared_w1", "shared_w3", "shared_w2") + \
                (("shared_gate",) if c.moe.get("shared_gated", True) else ())
    names += BIASES if c.qkv_bias else ()
    names += ("bo", "b1", "b2") if c.dense_bias else ("bo",) if c.o_bias else ()
    names += ("rms_att_b", "rms_ffn_b") if c.norm == "layer" else ()
    names += ("q_norm", "k_norm") if qk_norm(c) else ()
    names += ("post_att", "post_ffn") if c.sandwich_norm else ()
    return names


def global_names(c):
    return GLOBALS + (("rms_final_b",) if c.norm == "layer" else ()) + \
        (("emb_norm", "emb_norm_b") if c.embed_norm else ())


def weight_arguments(c):
    """(argument name, weight key, shape) in argument order; keys are a
    global name or (layer, name)."""
    shapes = weight_shapes(c)
    args = [(g, g, shapes[g]) for g in global_names(c)]
    for i in range(c.n_layers):
        args += [(f"L{i}_{n}", (i, n), shapes[n]) for n in layer_names(c, i)]
    return args


def cache_shapes(c, max_seq):
    """The two caches: keys and values [L, max_seq, Hkv, hd], or MLA's
    latent [L, max_seq, 1, C] and rotated rope keys [L, max_seq, 1, Dr], or
    a compressed decoder's (posenc.compress_kv.cache_shapes)."""
    if c.kv_compress:
        from .compress_kv import cache_shapes as compressed_caches

        return compressed_caches(c, max_seq)
    if c.mla:
        return ((c.n_layers, max_seq, 1, c.mla["kv_rank"]),
                (c.n_layers, max_seq, 1, c.mla["dr"]))
    cache = (c.n_layers, max_seq, c.n_kv_heads, c.head_dim)
    return cache, cache


def cache_names(shapes):
    """Argument names of the caches: k and v, or kv for one latent."""
    return ("k", "v") if len(shapes) == 2 else ("kv",)


def _entry(c, max_seq, name, s):
    f = _Function(c, max_seq, s)
    weights = weight_arguments(c)
    cache = cache_shapes(c, max_seq)
    H, Hkv, hd, d, hid, V = (c.n_heads, c.n_kv_heads, c.head_dim, c.dim, c.hidden_dim,
                             c.vocab_size)
    qd = c.q_dim
    args = [f"%tokens: {_tensor((s,), 'i32')}", f"%start: {_tensor((1,), 'i64')}"]
    args += [f"%{arg}_m: {_memref(shape)}" for arg, _, shape in weights]
    names = cache_names(cache)
    args += [f"%{nm}_cache: {_memref(shape)}" for nm, shape in zip(names, cache)]
    f.emit("%c0 = arith.constant 0 : index")
    f.emit("%zero = arith.constant 0.0 : f32")
    f.emit("%one = arith.constant 1.0 : f32")
    f.emit(f"%eps = arith.constant {c.norm_eps:.9e} : f32")
    for width in sorted({d} | ({c.mla["kv_rank"], c.mla["q_rank"] or d} if c.mla else set())):
        f.emit(f"%width{width} = arith.constant {_mlir_float(float(width))} : f32")
    if s is None:
        f.emit(f"%S = tensor.dim %tokens, %c0 : {_tensor((s,), 'i32')}")
    else:
        f.emit(f"%S = arith.constant {s} : index")
    f.emit(f"%start_i = tensor.extract %start[%c0] : {_tensor((1,), 'i64')}")
    f.emit("%p0 = arith.index_cast %start_i : i64 to index")
    f.emit("%n = arith.addi %p0, %S : index")
    for arg, _, shape in weights:
        f.emit(f"%{arg} = bufferization.to_tensor %{arg}_m restrict : {_memref(shape)} to "
               f"{_tensor(shape)}")
    for kv, shape in zip(names, cache):
        f.emit(f"%{kv}c0 = bufferization.to_tensor %{kv}_cache restrict writable : "
               f"{_memref(shape)} to {_tensor(shape)}")

    # Positions start..start+S-1 and the token embeddings.
    pos = f.positions(f.empty((s,), "i64"), s, "%p0")
    x = f.generic([("%tokens", _tensor((s,), "i32"))], (s, d),
                  ["(s, d) -> (s)", "(s, d) -> (s, d)"], ["parallel", "parallel"],
                  ["%ti = arith.index_cast %a0 : i32 to index",
                   "%di = linalg.index 1 : index",
                   f"%r = tensor.extract %token_embedding[%ti, %di] : "
                   f"{_tensor((V, d))}"]
                  + ([f"%es = arith.constant {_mlir_float(c.embed_scale)} : f32",
                      "%rs = arith.mulf %r, %es : f32", "%rs"] if c.embed_scale else ["%r"]))

    if c.embed_norm:
        x = f.layernorm(x, "%emb_norm", "%emb_norm_b", d)
    bias_clause = ""
    if c.alibi:
        # ALiBi over the cache: queries at start.., keys 0..n-1; the bias
        # [H, S, n] is fused into attention by the pipeline.
        kinit = f.fresh("e")
        f.emit(f"{kinit} = tensor.empty(%n) : {_tensor((None,), 'i64')}")
        kpos = f.positions(kinit, None, "%c0")
        bt = _tensor((H, s, None))
        slopes = ", ".join(repr(float(m)) for m in c.alibi)
        f.emit(f"%alibi = posenc.alibi_bias {pos}, {kpos} mode causal {{num_heads = {H} : i64, "
               f"slopes = array<f64: {slopes}>}} : {_tensor((s,), 'i64')}, "
               f"{_tensor((None,), 'i64')} -> {bt}")
        bias_clause = f" bias(%alibi : {bt})"
    caches = [f"%{nm}c0" for nm in names]
    kc, vc = (caches + [None])[:2]
    q_t, kv_t = _tensor((1, s, H, hd)), _tensor((1, s, Hkv, hd))
    full_kv_t = _tensor((1, None, Hkv, hd))
    for layer in range(c.n_layers):
        xb = f.norm(x, f.layer_weight("rms_att", layer), f.layer_weight("rms_att_b", layer), d)
        if c.mla:
            o, kc, vc = f.mla_attention(xb, layer, pos, kc, vc, cache)
        else:
            ckv = c.kv_compress
            q = f.linear(xb, f.layer_weight("wq", layer), qd, d)
            k = v = None
            # Decoupled partial rotary projects only the rotated key dims.
            k_hd = ckv.get("k_rot") or hd if ckv else hd
            if not ckv or ckv["kind"] == "decoupled":
                k = f.linear(xb, f.layer_weight("wk", layer), Hkv * k_hd, d)
            if not ckv:
                v = f.linear(xb, f.layer_weight("wv", layer), c.kv_dim, d)
            if c.qkv_bias:
                q, k, v = (f.add_bias(t, f.layer_weight(b, layer), width) for t, b, width in
                           ((q, "bq", qd), (k, "bk", c.kv_dim), (v, "bv", c.kv_dim)))
            heads = {}
            for nm, val, nh, width in (("q", q, H, qd), ("k", k, Hkv, Hkv * k_hd),
                                       ("v", v, Hkv, c.kv_dim)):
                if val is None:
                    continue
                r, w = f.fresh(nm + "h"), width // nh
                f.emit(f"{r} = tensor.expand_shape {val} [[0, 1], [2, 3]] output_shape "
                       f"[1, {f.S}, {nh}, {w}] : {_tensor((s, width))} into "
                       f"{_tensor((1, s, nh, w))}")
                heads[nm] = r
            sch = c.schemes[layer] if c.schemes else None
            if sch and sch.qk_norm:
                for nm, nh in (("q", H), ("k", Hkv)):
                    heads[nm] = f.head_rmsnorm(heads[nm], f.layer_weight(f"{nm}_norm", layer),
                                               nh, hd, sch.eps)
            rope = None
            for nm, nh in (("q", H), ("k", Hkv)):
                if sch and not sch.rope or c.alibi:
                    continue  # a NoPE layer, or ALiBi
                rope = (sch.layout if sch else c.rope_layout, _rope_attributes(c, sch))
                if nm not in heads:
                    continue  # keys rebuilt from a compressed cache
                r = f.fresh(nm + "r")
                layout = sch.layout if sch else c.rope_layout
                w = k_hd if nm == "k" else hd
                f.emit(f"{r} = posenc.rope {heads[nm]}, {pos} layout {layout}"
                       f"{_rope_attributes(c, sch)} : {_tensor((1, s, nh, w))}, "
                       f"{_tensor((s,), 'i64')}")
                heads[nm] = r
            views = {}
            if ckv:
                views["k"], views["v"], caches = f.latent_kv(xb, layer, heads.get("k"), caches,
                                                             cache, rope)
            for nm, cache_v in () if ckv else (("k", kc), ("v", vc)):
                upd = f.fresh(nm + "c")
                f.emit(f"{upd} = tensor.insert_slice {heads[nm]} into {cache_v}[{layer}, %p0, 0, "
                       f"0] [1, {f.S}, {Hkv}, {hd}] [1, 1, 1, 1] : {kv_t} into "
                       f"{_tensor(cache[0])}")
                view = f.fresh(nm + "all")
                f.emit(f"{view} = tensor.extract_slice {upd}[{layer}, 0, 0, 0] [1, %n, {Hkv}, "
                       f"{hd}] [1, 1, 1, 1] : {_tensor(cache[0])} to {full_kv_t}")
                views[nm] = view
                if nm == "k":
                    kc = upd
                else:
                    vc = upd
            att = f.fresh("att")
            init = f.empty((1, s, H, hd))
            if sch:
                w = sch.window
            else:
                w = c.sliding_window[layer] if isinstance(c.sliding_window, list) \
                    else c.sliding_window
            window = f" window({w})" if w else ""
            cap = scale = ""
            if sch and sch.softcap is not None:
                cap = f" softcap({_mlir_float(sch.softcap)})"
            if sch and sch.scale is not None:
                scale = f" {{scale = {_mlir_float(sch.scale)} : f64}}"
            f.emit(f"{att} = posenc.attention {heads['q']}, {views['k']}, {views['v']}{bias_clause}"
                   f"{cap} causal"
                   f"{window} outs({init}){scale} : {q_t}, {full_kv_t}, {full_kv_t}, {q_t}")
            att2 = f.fresh("att")
            f.emit(f"{att2} = tensor.collapse_shape {att} [[0, 1], [2, 3]] : {q_t} into "
                   f"{_tensor((s, qd))}")
            o = f.linear(att2, f.layer_weight("wo", layer), d, qd)
        if c.dense_bias or c.o_bias:
            o = f.add_bias(o, f.layer_weight("bo", layer), d)
        if c.sandwich_norm:
            o = f.norm(o, f.layer_weight("post_att", layer), None, d)
        # Sequential residuals, or GPT-NeoX's parallel ones (both norms
        # read the layer's input).
        x_att = f.add(x, o, d)
        xb = f.norm(x if c.parallel_residual else x_att, f.layer_weight("rms_ffn", layer),
                    f.layer_weight("rms_ffn_b", layer), d)
        if c.moe and c.moe["layers"][layer]:
            y = f.moe(xb, layer)
        else:
            y = f.mlp(xb, layer, hid, c.mlp, biases=c.dense_bias)
        if c.sandwich_norm:
            y = f.norm(y, f.layer_weight("post_ffn", layer), None, d)
        x = f.add(x_att, y, d)
    xf = f.norm(x, "%rms_final", "%rms_final_b", d)
    logits = f.linear(xf, "%wcls", V, d)
    if c.logit_scale is not None:
        logits = f.generic([(logits, _tensor((s, V)))], (s, V), ["(s, d) -> (s, d)"] * 2,
                           ["parallel", "parallel"],
                           [f"%ls = arith.constant {_mlir_float(c.logit_scale)} : f32",
                            "%r = arith.mulf %a0, %ls : f32", "%r"])
    if c.final_softcap:
        logits = f.generic([(logits, _tensor((s, V)))], (s, V), ["(s, d) -> (s, d)"] * 2,
                           ["parallel", "parallel"],
                           [f"%cap = arith.constant {_mlir_float(c.final_softcap)} : f32",
                            "%xc = arith.divf %a0, %cap : f32", "%th = math.tanh %xc : f32",
                            "%r = arith.mulf %th, %cap : f32", "%r"])
    if not c.kv_compress:
        caches = [kc, vc]
    for value, kv, shape in zip(caches, names, cache):
        f.emit(f"bufferization.materialize_in_destination {value} in restrict writable "
               f"%{kv}_cache : ({_tensor(shape)}, {_memref(shape)}) -> ()")
    rt = _tensor((s, V))
    f.emit(f"return {logits} : {rt}")
    return (f"func.func @{name}({', '.join(args)}) -> {rt} {{\n" + "\n".join(f.lines) + "\n}\n")


def aligned_zeros(shape, dtype=np.float32, align=64):
    """A zeroed C-contiguous array of `shape` and `dtype` whose data starts
    on an `align`-byte boundary. numpy's large arrays start 16 bytes into
    a page, so every 256- or 512-byte row of a [keys, heads, D] cache would
    straddle one cache line more than it fills (bf16 decode at 32K keys
    reads about 15% slower from such a cache)."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(d) for d in shape)
    if any(d < 0 for d in shape):
        raise ValueError(f"aligned_zeros: negative dimension in shape {shape}")
    if align < 1 or align & (align - 1):
        raise ValueError(f"aligned_zeros: align must be a power of two, got {align}")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    raw = np.zeros(nbytes + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def allocate_caches(shapes, what):
    """Zeroed 64-byte aligned f32 arrays of `shapes`, or a ValueError naming
    `what` and the bytes when they cannot be allocated. Checked before
    allocating: some
    allocators (sanitizers among them) abort on a request they cannot serve
    instead of failing it."""
    nbytes = 4 * sum(int(np.prod(shape, dtype=object)) for shape in shapes)
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        physical = None
    message = (f"{what} needs {nbytes / 2**30:.3g} GiB, which cannot be allocated"
               + (f" (this machine has {physical / 2**30:.3g} GiB)" if physical else "")
               + "; pass a smaller max_seq")
    if physical and nbytes > physical:
        raise ValueError(message)
    try:
        return [aligned_zeros(shape) for shape in shapes]
    except (MemoryError, ValueError):
        raise ValueError(message) from None


class Model:
    """A compiled decoder with its weights and KV cache; see the module
    docstring. `max_seq` defaults to the checkpoint's seq_len; `threads`
    (posenc.compile's) runs the compiled code on that many OpenMP threads
    (None or 1: the calling thread; 0: POSENC_NUM_THREADS or every core).
    `bos` is the id a prompt starts with (llama2.c: 1); generation stops at
    any of the `eos` ids (llama2.c: none, run.c runs through them)."""

    def __init__(self, config, weights, tokenizer=None, max_seq=None, source="",
                 threads=None, bos=Tokenizer.BOS, eos=(), compress_kv=None):
        import posenc

        # compress_kv: posenc.compress_kv's spec ("rank=R", "energy=E", ...);
        # `compression` reports the ranks and cache size (None: not asked).
        self.compression = None
        if compress_kv is not None:
            from . import compress_kv as ckv

            layers = weights.get("layers", [])
            if len(layers) != config.n_layers:
                raise CheckpointError(f"{source}: {len(layers)} layers of weights, the config "
                                      f"has {config.n_layers}")
            config, layers, self.compression = ckv.compress(config, layers, compress_kv)
            weights = dict(weights, layers=layers)
        self.config, self.tokenizer, self.source = config, tokenizer, source
        self.bos, self.eos = bos, tuple(eos)
        self.max_seq = config.seq_len if max_seq is None else max_seq
        if isinstance(self.max_seq, bool) or not isinstance(self.max_seq, (int, np.integer)) \
                or self.max_seq <= 0:
            raise ValueError(f"max_seq must be a positive integer, got {self.max_seq!r}")
        self.max_seq = int(self.max_seq)
        # Passed by reference: C-contiguous float32, no copy of a memory map.
        self._weights = []
        layers = weights.get("layers", [])
        if len(layers) != config.n_layers:
            raise CheckpointError(f"{source}: {len(layers)} layers of weights, the config "
                                  f"has {config.n_layers}")
        for _, key, shape in weight_arguments(config):
            w = weights.get(key) if isinstance(key, str) else layers[key[0]].get(key[1])
            label = key if isinstance(key, str) else f"layer {key[0]} {key[1]}"
            if w is None:
                raise CheckpointError(f"{source}: tensor '{label}' is missing")
            if tuple(w.shape) != shape:
                raise CheckpointError(f"{source}: tensor '{label}' has shape {tuple(w.shape)}, "
                                      f"the config needs {shape}")
            self._weights.append(np.require(w, np.float32, "C"))
        self.caches = allocate_caches(
            cache_shapes(config, self.max_seq),
            f"the KV cache of {self.max_seq} positions ({config.n_layers} layers, "
            f"{config.n_kv_heads} kv heads of {config.head_dim})")
        # k_cache/v_cache: keys and values, MLA's latent and rope keys, or a
        # compressed decoder's latents (v_cache None with one joint latent).
        self.k_cache, self.v_cache = (self.caches + [None])[:2]
        self.ir = decoder_ir(config, self.max_seq)
        self.module = posenc.compile(self.ir, threads=threads)
        self.pos = 0

    def _run(self, fn, ids, start):
        ids = _token_ids(ids)
        if isinstance(start, bool) or not isinstance(start, (int, np.integer)):
            raise ValueError(f"start must be an integer position, got {start!r}")
        if ids.size == 0:
            raise ValueError("no tokens")
        bad = ids[(ids < 0) | (ids >= self.config.vocab_size)]
        if bad.size:
            raise ValueError(f"token id {int(bad[0])} outside the vocabulary "
                             f"[0, {self.config.vocab_size})")
        if start < 0 or start + ids.size > self.max_seq:
            raise ValueError(f"positions {start}..{start + ids.size - 1} do not fit the "
                             f"cache of {self.max_seq} positions")
        logits = self.module.call(fn, ids.astype(np.int32), np.array([start], np.int64),
                                  *self._weights, *self.caches)
        self.pos = start + ids.size
        return logits

    def prefill(self, ids, start=0):
        """Logits [len(ids), vocab] of `ids` at positions start..; the cache
        keeps them (and forgets any position after)."""
        return self._run("prefill", ids, start)

    def decode(self, token):
        """Logits [vocab] of `token` (one integer id) at the next position."""
        if isinstance(token, bool) or not isinstance(token, (int, np.integer)):
            raise ValueError(f"decode takes one integer token id, got {token!r}")
        return self._run("decode", [token], self.pos)[0]

    def generate(self, prompt_ids, steps, temperature=0.0, top_p=0.9, seed=None,
                 stop_at_bos=False):
        """Yields the tokens after `prompt_ids` (BOS first) until `steps`
        positions have run (run.c's steps), until the model emits one of
        the model's `eos` ids (not yielded), or BOS with `stop_at_bos` (the
        shared llama2.c reference sequences run through it).
        Greedy (argmax, the first on ties) at temperature 0; else top-p
        sampling with `seed`."""
        prompt_ids = [int(t) for t in _token_ids(prompt_ids)]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps <= 0:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if not (np.isfinite(temperature) and temperature >= 0):
            raise ValueError(f"temperature must be finite and >= 0, got {temperature!r}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")
        steps = min(int(steps), self.max_seq)
        if not prompt_ids or len(prompt_ids) > steps:
            raise ValueError(f"the prompt has {len(prompt_ids)} tokens; it needs 1..{steps}")
        rng = np.random.default_rng(seed)
        logits = self.prefill(prompt_ids)[-1]
        while True:
            token = _sample(logits, temperature, top_p, rng)
            if stop_at_bos and token == self.bos or token in self.eos:
                return
            yield token
            if self.pos >= steps:
                return
            logits = self.decode(token)


def _token_ids(ids):
    """`ids` as a 1-D int64 array: integers only (no floats, bools or
    nested sequences), each within int64."""
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        ids = [ids]
    try:
        array = np.asarray(ids)
    except (OverflowError, ValueError) as e:
        raise ValueError(f"token ids must be a 1-D sequence of integers ({e})") from None
    if array.ndim != 1:
        raise ValueError(f"token ids must be a 1-D sequence, got shape {array.shape}")
    if array.dtype == object and all(isinstance(v, int) and not isinstance(v, bool)
                                     for v in array):
        # Python ints beyond int64: no vocabulary has them.
        big = next((v for v in array if not -2**63 <= v < 2**63), array[0])
        raise ValueError(f"token id {big} is outside the vocabulary")
    if array.size and (array.dtype == bool or not np.issubdtype(array.dtype, np.integer)):
        raise ValueError(f"token ids must be integers, got {array.dtype} values such as "
                         f"{array[0]!r}")
    if array.dtype == np.uint64 and array.size and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"token id {int(array.max())} is outside the vocabulary")
    return array.astype(np.int64)


def _sample(logits, temperature, top_p, rng):
    if temperature <= 0:
        return int(np.argmax(logits))
    z = logits.astype(np.float64) / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    if 0 < top_p < 1:
        order = np.argsort(-p, kind="stable")
        keep = order[:int(np.searchsorted(np.cumsum(p[order]), top_p)) + 1]
        q = np.zeros_like(p)
        q[keep] = p[keep]
        p = q / q.sum()
    return int(rng.choice(p.size, p=p))


def _directory_tokenizer(path, tokenizer, vocab_size, bos, eos):
    """The tokenizer asked for, else the model directory's tokenizer.json
    (one it cannot read is a warning: the model still takes token ids)."""
    own = os.path.join(path, "tokenizer.json")
    if not tokenizer and not os.path.exists(own):
        return None
    from .tokenizer import TokenizerError

    try:
        tok = _tokenizer(tokenizer or own, vocab_size, bos, eos[0] if eos else None)
    except TokenizerError as e:
        if tokenizer:
            raise
        print(f"posenc: the model's tokenizer is not read ({e}); token ids only",
              file=sys.stderr)
        return None
    pieces = getattr(tok, "pieces", None)  # tokenizer.json: {id: piece}
    largest = max(pieces) if isinstance(pieces, dict) and pieces else -1
    if largest >= vocab_size:
        raise ValueError(f"{getattr(tok, 'path', tokenizer)}: token id {largest} is outside "
                         f"the model's vocabulary [0, {vocab_size})")
    return tok


def _tokenizer(path, vocab_size, bos=None, eos=None):
    """A llama2.c tokenizer.bin, or a Hugging Face tokenizer.json (a
    directory: its tokenizer.json)."""
    if os.path.isdir(path) or str(path).endswith(".json"):
        from . import tokenizer

        return tokenizer.load(path, bos, eos)
    return Tokenizer(path, vocab_size)


def load(path, tokenizer=None, max_seq=None, threads=None, compress_kv=None):
    """A Model from `path`: a llama2.c checkpoint (and its tokenizer.bin
    or a tokenizer.json when given), or a Hugging Face model directory
    (posenc.hf; its tokenizer.json when present, or `tokenizer`; a T5
    directory gives a posenc.t5.T5Model), compiled for `threads` threads
    (Model's). A Hugging Face model stops generating at its config's
    eos_token_id(s) (config.json, generation_config.json)."""
    if os.path.isdir(path):
        from . import hf

        cfg = hf.raw_config(path)
        t5 = cfg.get("model_type") in ("t5", "mt5")
        if t5:
            from . import t5 as t5_module

            config = t5_module.read_config(os.path.join(path, "config.json"), cfg)
        else:
            config, weights = hf.read_model(path)
        bos, eos = hf.special_ids(path)
        for what, ids in (("bos_token_id", [bos] if bos is not None else []),
                          ("eos_token_id", eos)):
            bad = [i for i in ids if i >= config.vocab_size]
            if bad:
                raise ValueError(f"{path}: {what} {bad[0]} (config.json or "
                                 f"generation_config.json) is outside the vocabulary "
                                 f"[0, {config.vocab_size})")
        tok = _directory_tokenizer(path, tokenizer, config.vocab_size, bos, eos)
        if t5:
            if compress_kv is not None:
                raise ValueError("compress_kv: T5 encoder-decoders are not supported")
            return t5_module.load(path, tok, max_seq, threads, cfg, hf.tensor_reader(path)[0],
                                  eos)
        return Model(config, weights, tok, max_seq, source=str(path), threads=threads,
                     bos=bos, eos=eos, compress_kv=compress_kv)
    config, weights = read_checkpoint(path)
    tok = _tokenizer(tokenizer, config.vocab_size) if tokenizer else None
    return Model(config, layer_weights(weights, config.n_layers), tok, max_seq,
                 source=str(path), threads=threads, compress_kv=compress_kv)
