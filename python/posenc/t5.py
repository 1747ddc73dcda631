"""T5 encoder-decoder models (Hugging Face t5, mt5, flan-t5 directories)
compiled by posenc, with the decoder's KV caches and the cross-attention
keys and values cached once per input.

    model = posenc.models.load("flan-t5-small/")     # a T5Model
    out = list(model.generate([8774, 10, 1], steps=20))

Architecture (transformers' modeling_t5; Raffel et al., arXiv 1910.10683):
embeddings `shared`; encoder blocks of RMSNorm (T5LayerNorm: no mean, no
bias), bidirectional self-attention with T5's bucketed relative position
bias (`posenc.rel_bias kind t5`, the table of the first block shared by
every block, fused into attention) and softmax scale 1 (T5 folds
1/sqrt(d_kv) into its weights), residual, RMSNorm, feed-forward (ReLU, or
"gated-gelu": gelu_new(wi_0·x)·(wi_1·x)), residual; a final RMSNorm.
Decoder blocks add causal self-attention with the unidirectional bias and
cross-attention over the encoder output (no position bias). Tied
embeddings scale the decoder output by d_model^-0.5 before the
classifier.

Two entry points compiled once: `encode(tokens[S])` returns the encoder
output [S, d] and writes every decoder layer's cross-attention keys and
values for the S source positions into its caches; `decode(tokens[T],
start, src_len)` runs T decoder positions from `start` against the first
`src_len` cached source positions and returns logits [T, vocab].
"""

import os
from dataclasses import dataclass

import numpy as np

from .decoder import _Function, _memref, _sample, _tensor, _token_ids, allocate_caches
from .models import _mlir_float


@dataclass
class T5Config:
    dim: int
    d_kv: int
    d_ff: int
    n_heads: int
    enc_layers: int
    dec_layers: int
    vocab_size: int
    buckets: int = 32
    max_distance: int = 128
    norm_eps: float = 1e-6
    mlp: str = "relu"  # or "geglu_tanh" (feed_forward_proj gated-gelu)
    tied: bool = True
    start_id: int = 0
    eos: tuple = (1,)
    seq_len: int = 512  # default cache positions (source and target)
    family: str = "t5"
    norm: str = "rms"

    @property
    def inner(self):
        return self.n_heads * self.d_kv


def layer_names(c, decoder):
    names = ("ln_att", "wq", "wk", "wv", "wo")
    names += ("ln_cross", "xq", "xk", "xv", "xo") if decoder else ()
    names += ("ln_ffn", "w1", "w2") + (("w3",) if c.mlp == "geglu_tanh" else ())
    return names


def weight_shapes(c):
    d, i, f = c.dim, c.inner, c.d_ff
    shapes = {"shared": (c.vocab_size, d), "enc_final": (d,), "dec_final": (d,),
              "lm_head": (c.vocab_size, d), "enc_rel": (c.buckets, c.n_heads),
              "dec_rel": (c.buckets, c.n_heads)}
    shapes.update(ln_att=(d,), ln_cross=(d,), ln_ffn=(d,), w1=(f, d), w3=(f, d), w2=(d, f))
    for n in ("wq", "wk", "wv", "xq", "xk", "xv"):
        shapes[n] = (i, d)
    shapes.update(wo=(d, i), xo=(d, i))
    return shapes


def weight_arguments(c, entry):
    """(argument name, key, shape) of `entry`'s weights: keys are a
    global name or (stack, layer, name) with stack "enc" or "dec"."""
    shapes = weight_shapes(c)
    if entry == "encode":
        args = [(g, g, shapes[g]) for g in ("shared", "enc_rel", "enc_final")]
        for i in range(c.enc_layers):
            args += [(f"Le{i}_{n}", ("enc", i, n), shapes[n]) for n in layer_names(c, False)]
        for i in range(c.dec_layers):  # cross-attention keys and values of the source
            args += [(f"Ld{i}_{n}", ("dec", i, n), shapes[n]) for n in ("xk", "xv")]
        return args
    globals_ = ("shared", "dec_rel", "dec_final") + (() if c.tied else ("lm_head",))
    args = [(g, g, shapes[g]) for g in globals_]
    for i in range(c.dec_layers):
        args += [(f"Ld{i}_{n}", ("dec", i, n), shapes[n]) for n in layer_names(c, True)
                 if n not in ("xk", "xv")]
    return args


def cache_shapes(c, max_source, max_target):
    return ((c.dec_layers, max_target, c.n_heads, c.d_kv),
            (c.dec_layers, max_source, c.n_heads, c.d_kv))


def _prologue(f, c, weights, caches):
    f.emit("%c0 = arith.constant 0 : index")
    f.emit("%zero = arith.constant 0.0 : f32")
    f.emit("%one = arith.constant 1.0 : f32")
    f.emit(f"%eps = arith.constant {c.norm_eps:.9e} : f32")
    f.emit(f"%width{c.dim} = arith.constant {_mlir_float(float(c.dim))} : f32")
    f.emit(f"%S = tensor.dim %tokens, %c0 : {_tensor((None,), 'i32')}")
    for arg, _, shape in weights:
        f.emit(f"%{arg} = bufferization.to_tensor %{arg}_m restrict : {_memref(shape)} to "
               f"{_tensor(shape)}")
    for name, shape in caches:
        f.emit(f"%{name}0 = bufferization.to_tensor %{name} restrict writable : "
               f"{_memref(shape)} to {_tensor(shape)}")


def _embed(f, c):
    return f.generic([("%tokens", _tensor((None,), "i32"))], (None, c.dim),
                     ["(s, d) -> (s)", "(s, d) -> (s, d)"], ["parallel", "parallel"],
                     ["%ti = arith.index_cast %a0 : i32 to index",
                      "%di = linalg.index 1 : index",
                      f"%r = tensor.extract %shared[%ti, %di] : "
                      f"{_tensor((c.vocab_size, c.dim))}", "%r"])


def _heads(f, c, x, rows="%S"):
    """[rows, H·d_kv] -> [1, rows, H, d_kv]."""
    v = f.fresh("hd")
    f.emit(f"{v} = tensor.expand_shape {x} [[0, 1], [2, 3]] output_shape [1, {rows}, "
           f"{c.n_heads}, {c.d_kv}] : {_tensor((None, c.inner))} into "
           f"{_tensor((1, None, c.n_heads, c.d_kv))}")
    return v


def _attend(f, c, q, k, v, clauses):
    """T5 attention (scale 1) of q [1, T, H, d_kv] over k, v [1, ?, H, d_kv]
    with `clauses` (bias, causal), back to [T, H·d_kv]."""
    t4 = _tensor((1, None, c.n_heads, c.d_kv))
    init, att, out = f.empty((1, None, c.n_heads, c.d_kv)), f.fresh("att"), f.fresh("att")
    f.emit(f"{att} = posenc.attention {q}, {k}, {v}{clauses} outs({init}) "
           f"{{scale = 1.0 : f64}} : {t4}, {t4}, {t4}, {t4}")
    f.emit(f"{out} = tensor.collapse_shape {att} [[0, 1], [2, 3]] : {t4} into "
           f"{_tensor((None, c.inner))}")
    return out


def _rel_bias(f, c, table, qpos, kpos, bidirectional):
    v, bt = f.fresh("bias"), _tensor((c.n_heads, None, None))
    f.emit(f"{v} = posenc.rel_bias {table}, {qpos}, {kpos} kind t5 {{num_buckets = "
           f"{c.buckets} : i64, max_distance = {c.max_distance} : i64, bidirectional = "
           f"{str(bidirectional).lower()}}} : {_tensor((c.buckets, c.n_heads))}, "
           f"{_tensor((None,), 'i64')}, {_tensor((None,), 'i64')} -> {bt}")
    return f" bias({v} : {bt})"


def _cache_rows(f, c, value, cache, layer, start, rows, shape):
    """Writes value [1, rows, H, d_kv] at cache[layer, start:]; returns the
    new cache."""
    upd = f.fresh("cache")
    f.emit(f"{upd} = tensor.insert_slice {value} into {cache}[{layer}, {start}, 0, 0] "
           f"[1, {rows}, {c.n_heads}, {c.d_kv}] [1, 1, 1, 1] : "
           f"{_tensor((1, None, c.n_heads, c.d_kv))} into {_tensor(shape)}")
    return upd


def _cache_view(f, c, cache, layer, rows, shape):
    v = f.fresh("view")
    f.emit(f"{v} = tensor.extract_slice {cache}[{layer}, 0, 0, 0] [1, {rows}, {c.n_heads}, "
           f"{c.d_kv}] [1, 1, 1, 1] : {_tensor(shape)} to "
           f"{_tensor((1, None, c.n_heads, c.d_kv))}")
    return v


def _ffn(f, c, x, layer):
    xb = f.rmsnorm(x, f.layer_weight("ln_ffn", layer), c.dim)
    return f.add(x, f.mlp(xb, layer, c.d_ff, c.mlp), c.dim)


def _signature(name, args, results):
    return f"func.func @{name}({', '.join(args)}) -> {results} {{\n"


def _encode_ir(c, max_source, max_target):
    f = _Function(c, None, None)
    weights = weight_arguments(c, "encode")
    _, xshape = cache_shapes(c, max_source, max_target)
    args = [f"%tokens: {_tensor((None,), 'i32')}"]
    args += [f"%{a}_m: {_memref(shape)}" for a, _, shape in weights]
    args += [f"%xk_cache: {_memref(xshape)}", f"%xv_cache: {_memref(xshape)}"]
    _prologue(f, c, weights, [("xk_cache", xshape), ("xv_cache", xshape)])
    pos = f.positions(f.empty((None,), "i64"), None, "%c0")
    bias = _rel_bias(f, c, "%enc_rel", pos, pos, True)
    x = _embed(f, c)
    for i in range(c.enc_layers):
        layer = f"e{i}"
        xb = f.rmsnorm(x, f.layer_weight("ln_att", layer), c.dim)
        q, k, v = (_heads(f, c, f.linear(xb, f.layer_weight(n, layer), c.inner, c.dim))
                   for n in ("wq", "wk", "wv"))
        o = f.linear(_attend(f, c, q, k, v, bias), f.layer_weight("wo", layer), c.dim, c.inner)
        x = _ffn(f, c, f.add(x, o, c.dim), layer)
    enc = f.rmsnorm(x, "%enc_final", c.dim)
    caches = {"xk": "%xk_cache0", "xv": "%xv_cache0"}
    for i in range(c.dec_layers):
        for n in ("xk", "xv"):
            kv = _heads(f, c, f.linear(enc, f.layer_weight(n, f"d{i}"), c.inner, c.dim))
            caches[n] = _cache_rows(f, c, kv, caches[n], i, "%c0", "%S", xshape)
    for n in ("xk", "xv"):
        f.emit(f"bufferization.materialize_in_destination {caches[n]} in restrict writable "
               f"%{n}_cache : ({_tensor(xshape)}, {_memref(xshape)}) -> ()")
    rt = _tensor((None, c.dim))
    f.emit(f"return {enc} : {rt}")
    return _signature("encode", args, rt) + "\n".join(f.lines) + "\n}\n"


def _decode_ir(c, max_source, max_target):
    f = _Function(c, None, None)
    weights = weight_arguments(c, "decode")
    shape, xshape = cache_shapes(c, max_source, max_target)
    args = [f"%tokens: {_tensor((None,), 'i32')}", f"%start: {_tensor((1,), 'i64')}",
            f"%src_len: {_tensor((1,), 'i64')}"]
    args += [f"%{a}_m: {_memref(s)}" for a, _, s in weights]
    args += [f"%k_cache: {_memref(shape)}", f"%v_cache: {_memref(shape)}",
             f"%xk_cache: {_memref(xshape)}", f"%xv_cache: {_memref(xshape)}"]
    _prologue(f, c, weights, [("k_cache", shape), ("v_cache", shape), ("xk_cache", xshape),
                              ("xv_cache", xshape)])
    for n in ("start", "src_len"):
        f.emit(f"%{n}_i = tensor.extract %{n}[%c0] : {_tensor((1,), 'i64')}")
        f.emit(f"%{n}_x = arith.index_cast %{n}_i : i64 to index")
    f.emit("%n = arith.addi %start_x, %S : index")
    qpos = f.positions(f.empty((None,), "i64"), None, "%start_x")
    kinit = f.fresh("e")
    f.emit(f"{kinit} = tensor.empty(%n) : {_tensor((None,), 'i64')}")
    kpos = f.positions(kinit, None, "%c0")
    bias = _rel_bias(f, c, "%dec_rel", qpos, kpos, False)
    x = _embed(f, c)
    kc, vc = "%k_cache0", "%v_cache0"
    for i in range(c.dec_layers):
        layer = f"d{i}"
        xb = f.rmsnorm(x, f.layer_weight("ln_att", layer), c.dim)
        q, k, v = (_heads(f, c, f.linear(xb, f.layer_weight(n, layer), c.inner, c.dim))
                   for n in ("wq", "wk", "wv"))
        kc = _cache_rows(f, c, k, kc, i, "%start_x", "%S", shape)
        vc = _cache_rows(f, c, v, vc, i, "%start_x", "%S", shape)
        att = _attend(f, c, q, _cache_view(f, c, kc, i, "%n", shape),
                      _cache_view(f, c, vc, i, "%n", shape), bias + " causal")
        x = f.add(x, f.linear(att, f.layer_weight("wo", layer), c.dim, c.inner), c.dim)
        xb = f.rmsnorm(x, f.layer_weight("ln_cross", layer), c.dim)
        q = _heads(f, c, f.linear(xb, f.layer_weight("xq", layer), c.inner, c.dim))
        att = _attend(f, c, q, _cache_view(f, c, "%xk_cache0", i, "%src_len_x", xshape),
                      _cache_view(f, c, "%xv_cache0", i, "%src_len_x", xshape), "")
        x = f.add(x, f.linear(att, f.layer_weight("xo", layer), c.dim, c.inner), c.dim)
        x = _ffn(f, c, x, layer)
    out = f.rmsnorm(x, "%dec_final", c.dim)
    if c.tied:  # transformers scales the tied classifier's input by d_model^-0.5
        out = f.generic([(out, _tensor((None, c.dim)))], (None, c.dim),
                        ["(s, d) -> (s, d)"] * 2, ["parallel", "parallel"],
                        [f"%sc = arith.constant {_mlir_float(c.dim ** -0.5)} : f32",
                         "%r = arith.mulf %a0, %sc : f32", "%r"])
    logits = f.linear(out, "%shared" if c.tied else "%lm_head", c.vocab_size, c.dim)
    for n, value, sh in (("k", kc, shape), ("v", vc, shape)):
        f.emit(f"bufferization.materialize_in_destination {value} in restrict writable "
               f"%{n}_cache : ({_tensor(sh)}, {_memref(sh)}) -> ()")
    rt = _tensor((None, c.vocab_size))
    f.emit(f"return {logits} : {rt}")
    return _signature("decode", args, rt) + "\n".join(f.lines) + "\n}\n"


def t5_ir(c, max_source, max_target):
    return _encode_ir(c, max_source, max_target) + "\n" + _decode_ir(c, max_source, max_target)


class T5Model:
    """A compiled T5 with its caches; see the module docstring. `max_source`
    and `max_target` (default: the config's seq_len) size the caches."""

    seq2seq = True

    def __init__(self, config, weights, tokenizer=None, max_source=None, max_target=None,
                 source="", threads=None):
        import posenc

        self.config, self.tokenizer, self.source = config, tokenizer, source
        self.max_source = int(max_source or config.seq_len)
        self.max_target = int(max_target or config.seq_len)
        self.max_seq = self.max_target
        self.bos, self.eos = config.start_id, tuple(config.eos)
        self._args = {}
        for entry in ("encode", "decode"):
            arrays = []
            for _, key, shape in weight_arguments(config, entry):
                w = weights.get(key) if isinstance(key, str) else \
                    weights[key[0]][key[1]].get(key[2])
                if w is None or tuple(w.shape) != shape:
                    raise ValueError(f"{source}: tensor {key} is "
                                     + ("missing" if w is None else
                                        f"of shape {tuple(w.shape)}, not {shape}"))
                arrays.append(np.require(w, np.float32, "C"))
            self._args[entry] = arrays
        shape, xshape = cache_shapes(config, self.max_source, self.max_target)
        self.k_cache, self.v_cache, self.xk_cache, self.xv_cache = allocate_caches(
            (shape, shape, xshape, xshape),
            f"the caches of {self.max_source} source and {self.max_target} target positions")
        self.ir = t5_ir(config, self.max_source, self.max_target)
        self.module = posenc.compile(self.ir, threads=threads)
        self.src_len, self.pos = 0, 0

    def _ids(self, ids):
        ids = _token_ids(ids)
        bad = ids[(ids < 0) | (ids >= self.config.vocab_size)]
        if bad.size:
            raise ValueError(f"token id {int(bad[0])} outside the vocabulary "
                             f"[0, {self.config.vocab_size})")
        return ids.astype(np.int32)

    def encode(self, ids):
        """Encoder output [S, d] of the source `ids`; the decoder attends to
        them from now on."""
        ids = self._ids(ids)
        if not 0 < ids.size <= self.max_source:
            raise ValueError(f"the source has {ids.size} tokens; it needs 1..{self.max_source}")
        out = self.module.call("encode", ids, *self._args["encode"], self.xk_cache,
                               self.xv_cache)
        self.src_len, self.pos = ids.size, 0
        return out

    def decode(self, ids, start=None):
        """Logits [T, vocab] of the decoder `ids` at positions start.. (the
        next position by default) against the encoded source."""
        ids = self._ids(ids)
        start = self.pos if start is None else start
        if self.src_len == 0:
            raise ValueError("decode before encode: no source")
        if ids.size == 0 or start < 0 or start + ids.size > self.max_target:
            raise ValueError(f"positions {start}..{start + ids.size - 1} do not fit the "
                             f"cache of {self.max_target} positions")
        logits = self.module.call("decode", ids, np.array([start], np.int64),
                                  np.array([self.src_len], np.int64), *self._args["decode"],
                                  self.k_cache, self.v_cache, self.xk_cache, self.xv_cache)
        self.pos = start + ids.size
        return logits

    def generate(self, source_ids, steps, temperature=0.0, top_p=0.9, seed=None,
                 stop_at_bos=False):
        """Yields up to `steps` tokens generated for `source_ids`, starting
        from decoder_start_token_id and stopping at an EOS (not yielded).
        Greedy at temperature 0."""
        del stop_at_bos  # the decoder starts from its own token
        self.encode(source_ids)
        rng = np.random.default_rng(seed)
        token = self.config.start_id
        for step in range(min(int(steps), self.max_target)):
            token = _sample(self.decode([token], step)[0], temperature, top_p, rng)
            if token in self.eos:
                return
            yield token


def read_config(path, cfg):
    """A T5Config from a parsed config.json (posenc.decoder.load calls this)."""
    from .hf import HFError

    def positive(name, default=None):
        v = cfg.get(name, default)
        if v is None:
            v = default
        if not isinstance(v, int) or isinstance(v, bool) or not 0 < v < 2**31:
            raise HFError(f"{path}: {name} must be a positive integer below 2^31, got {v!r}")
        return v

    proj = cfg.get("feed_forward_proj", "relu")
    kinds = {"relu": "relu", "gated-gelu": "geglu_tanh"}
    if proj not in kinds:
        raise HFError(f"{path}: feed_forward_proj {proj!r}; T5 is read with relu or "
                      f"gated-gelu")
    eps = cfg.get("layer_norm_epsilon", 1e-6)
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not 0 < eps < 1:
        raise HFError(f"{path}: layer_norm_epsilon must be a number in (0, 1), got {eps!r}")
    tied = cfg.get("tie_word_embeddings", True)
    if not isinstance(tied, bool):
        raise HFError(f"{path}: tie_word_embeddings must be true or false, got {tied!r}")
    buckets = positive("relative_attention_num_buckets", 32)
    max_distance = positive("relative_attention_max_distance", 128)
    # The op's bounds (posenc.rel_bias): bidirectional halves the buckets.
    if buckets < 4 or buckets % 2 or max_distance <= buckets // 4:
        raise HFError(f"{path}: relative_attention_num_buckets {buckets} must be even and "
                      f">= 4, and relative_attention_max_distance {max_distance} above a "
                      f"quarter of it")
    eos = cfg.get("eos_token_id", 1)
    eos = eos if isinstance(eos, list) else [eos]
    if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in eos):
        raise HFError(f"{path}: eos_token_id must be a token id or a list of them")
    start = cfg.get("decoder_start_token_id", 0)
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise HFError(f"{path}: decoder_start_token_id must be a token id, got {start!r}")
    layers = positive("num_layers", 6)
    if max(layers, positive("num_decoder_layers", layers)) > 4096:
        raise HFError(f"{path}: num_layers/num_decoder_layers above 4096")
    return T5Config(dim=positive("d_model"), d_kv=positive("d_kv", 64), d_ff=positive("d_ff"),
                    n_heads=positive("num_heads"), enc_layers=layers,
                    dec_layers=positive("num_decoder_layers", layers),
                    vocab_size=positive("vocab_size"), buckets=buckets,
                    max_distance=max_distance, norm_eps=float(eps), mlp=kinds[proj],
                    tied=tied, start_id=start, eos=tuple(eos),
                    seq_len=positive("n_positions", 512), family=cfg.get("model_type", "t5"))


def tensor_name(c, key):
    """The Hugging Face name of weight `key` (see weight_arguments)."""
    if isinstance(key, str):
        return {"shared": "shared.weight", "enc_final": "encoder.final_layer_norm.weight",
                "dec_final": "decoder.final_layer_norm.weight", "lm_head": "lm_head.weight",
                "enc_rel": "encoder.block.0.layer.0.SelfAttention.relative_attention_bias"
                           ".weight",
                "dec_rel": "decoder.block.0.layer.0.SelfAttention.relative_attention_bias"
                           ".weight"}[key]
    stack, i, n = key
    p = f"{'encoder' if stack == 'enc' else 'decoder'}.block.{i}."
    ffn = 2 if stack == "dec" else 1
    wi = ("wi_0", "wi_1") if c.mlp == "geglu_tanh" else ("wi", None)
    names = {"ln_att": "layer.0.layer_norm", "ln_cross": "layer.1.layer_norm",
             "ln_ffn": f"layer.{ffn}.layer_norm", "w1": f"layer.{ffn}.DenseReluDense.{wi[0]}",
             "w3": f"layer.{ffn}.DenseReluDense.{wi[1]}",
             "w2": f"layer.{ffn}.DenseReluDense.wo"}
    for a, b in (("w", "SelfAttention"), ("x", "EncDecAttention")):
        for h in "qkvo":
            names[f"{a}{h}"] = f"layer.{0 if a == 'w' else 1}.{b}.{h}"
    return p + names[n] + ".weight"


def weights_from(c, get):
    """{global: array, "enc": [layer dicts], "dec": [...]} through
    get(hf_name, shape)."""
    shapes = weight_shapes(c)
    out = {"enc": [{} for _ in range(c.enc_layers)], "dec": [{} for _ in range(c.dec_layers)]}
    keys = {key for entry in ("encode", "decode") for _, key, _ in weight_arguments(c, entry)}
    for key in sorted(keys, key=str):
        shape = shapes[key if isinstance(key, str) else key[2]]
        value = get(tensor_name(c, key), shape)
        if isinstance(key, str):
            out[key] = value
        else:
            out[key[0]][key[1]][key[2]] = value
    return out


def load(path, tokenizer=None, max_seq=None, threads=None, cfg=None, get=None, eos=None):
    """A T5Model of the directory `path` (posenc.decoder.load reads the
    files; `eos`: the ids of config.json and generation_config.json)."""
    config = read_config(os.path.join(path, "config.json"), cfg)
    if eos:
        config.eos = tuple(eos)
    return T5Model(config, weights_from(config, get), tokenizer, max_seq, max_seq,
                   source=str(path), threads=threads)
