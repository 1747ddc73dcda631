"""llama2.c checkpoints and tokenizers (Karpathy's llama2.c, `run.c`).

    cfg, weights = read_checkpoint("stories260K.bin")
    tok = Tokenizer("tokenizer.bin", cfg.vocab_size)
    ids = tok.encode("Once upon a time")        # [1, ...], BOS first

Checkpoint (version 0): a header of 7 little-endian int32 (dim, hidden_dim,
n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a negative vocab_size
means the classifier is not shared with the token embedding), then float32
arrays: token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim],
wk [L, kv_dim, dim], wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim],
w1 [L, hidden, dim], w2 [L, dim, hidden], w3 [L, hidden, dim],
rms_final [dim], two legacy RoPE tables of seq_len·head_size/2 floats
(skipped), and wcls [vocab, dim] when not shared. Matrices are [out, in].
The arrays are read-only views of a memory map of the file: nothing is
copied.

Tokenizer: int32 max_token_length, then per piece float32 score, int32
byte length and the bytes. Encoding is run.c's: BOS, a dummy-prefix space
for non-empty text, one piece per UTF-8 character (bytes + 3 when the
character has no piece), then greedy merges of the adjacent pair whose merge
has the highest score (the first such pair on ties).

Every inconsistency (truncated file, a header that cannot describe a model,
trailing bytes) raises CheckpointError naming the file and the numbers.
"""

import re
from dataclasses import dataclass

import numpy as np


class CheckpointError(ValueError):
    """A checkpoint or tokenizer file that cannot be read as one."""


@dataclass(frozen=True)
class Config:
    dim: int
    hidden_dim: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    seq_len: int
    shared_classifier: bool
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    # What Hugging Face decoders add (posenc.hf): run.c's model has
    # interleaved RoPE over whole heads, no biases and head_dim = dim / heads.
    rope_layout: str = "interleaved"
    rope_scaling: dict = None  # posenc.models.rope_scaling's dict
    attention_factor: float = None
    rotary_dim: int = None
    qkv_bias: bool = False
    head_size: int = 0  # 0: dim / n_heads
    family: str = "llama2.c"
    norm: str = "rms"  # or "layer": LayerNorm with a bias
    mlp: str = "swiglu"  # or "gelu": down(gelu(up(x))), exact erf GELU
    dense_bias: bool = False  # biases on the output projection and the MLP
    o_bias: bool = False  # a bias on the output projection (attention_bias)
    parallel_residual: bool = False  # GPT-NeoX: x + attn(ln1 x) + mlp(ln2 x)
    # Keys each query sees (itself included): one for every layer, or a list
    # with one per layer (None: full attention).
    sliding_window: object = None
    # Per-layer attention of the families posenc.models builds layer by
    # layer (Qwen3, Gemma 2/3): a posenc.models._Scheme per layer (RoPE
    # base/scaling/layout or none, window, soft-cap, softmax scale, QK-norm);
    # None: the fields above for every layer.
    schemes: list = None
    embed_scale: float = None  # Gemma: embeddings times sqrt(dim) (in f32)
    sandwich_norm: bool = False  # Gemma 2/3: norms after attention and MLP too
    final_softcap: float = None  # Gemma 2: logits = c·tanh(logits / c)
    # ALiBi instead of RoPE (BLOOM, MPT): the per-head slopes (a tuple).
    alibi: tuple = None
    embed_norm: bool = False  # BLOOM: LayerNorm on the embeddings
    # Mixture of experts (Mixtral, Qwen2/3-MoE): {experts, top_k, norm_topk,
    # hidden (an expert's intermediate size), shared (Qwen2-MoE's shared
    # expert size, or 0), layers (per layer: MoE, or the dense MLP)}.
    moe: dict = None
    # DeepSeek's multi-head latent attention: {kv_rank, q_rank (0: none),
    # dn, dr, dv (nope/rope/value head dims), scale}; caches hold the latent.
    mla: dict = None
    logit_scale: float = None  # Cohere: logits times logit_scale
    # Low-rank KV-cache compression (posenc.compress_kv): {kind: joint,
    # separate or decoupled, and the latent widths kv, or k and v}.
    kv_compress: dict = None

    @property
    def head_dim(self):
        return self.head_size or self.dim // self.n_heads

    @property
    def q_dim(self):
        return self.head_dim * self.n_heads

    @property
    def kv_dim(self):
        return self.head_dim * self.n_kv_heads


HEADER = 7 * 4


def read_config(path):
    """The header of the llama2.c checkpoint at `path`, checked."""
    with open(path, "rb") as f:
        head = f.read(HEADER)
    if len(head) < HEADER:
        raise CheckpointError(f"{path}: {len(head)} bytes, shorter than the "
                              f"{HEADER}-byte llama2.c header")
    dim, hidden, layers, heads, kv_heads, vocab, seq_len = (
        int(x) for x in np.frombuffer(head, "<i4"))
    fields = dict(dim=dim, hidden_dim=hidden, n_layers=layers, n_heads=heads,
                  n_kv_heads=kv_heads, vocab_size=abs(vocab), seq_len=seq_len)
    for name, value in fields.items():
        if value <= 0 or value > 1 << 24:
            raise CheckpointError(f"{path}: header field {name} = {value} is not a "
                                  f"size in (0, 2^24]; not a llama2.c checkpoint?")
    if dim % heads:
        raise CheckpointError(f"{path}: dim ({dim}) is not a multiple of n_heads ({heads})")
    if heads % kv_heads:
        raise CheckpointError(f"{path}: n_heads ({heads}) is not a multiple of "
                              f"n_kv_heads ({kv_heads})")
    if (dim // heads) % 2:
        raise CheckpointError(f"{path}: head size {dim // heads} is odd; RoPE rotates pairs")
    return Config(shared_classifier=vocab > 0, **fields)


def _layout(c):
    """(name, shape) of every array after the header, in file order; None
    names the skipped legacy tables."""
    L, d, h, kv, v = c.n_layers, c.dim, c.hidden_dim, c.kv_dim, c.vocab_size
    layout = [("token_embedding", (v, d)), ("rms_att", (L, d)), ("wq", (L, d, d)),
              ("wk", (L, kv, d)), ("wv", (L, kv, d)), ("wo", (L, d, d)),
              ("rms_ffn", (L, d)), ("w1", (L, h, d)), ("w2", (L, d, h)),
              ("w3", (L, h, d)), ("rms_final", (d,)),
              (None, (c.seq_len * c.head_dim // 2,)), (None, (c.seq_len * c.head_dim // 2,))]
    if not c.shared_classifier:
        layout.append(("wcls", (v, d)))
    return layout


def read_checkpoint(path):
    """(Config, {name: float32 array}) of the llama2.c checkpoint at `path`;
    `wcls` is the token embedding when the classifier is shared."""
    c = read_config(path)
    layout = _layout(c)
    floats = sum(int(np.prod(shape)) for _, shape in layout)
    size = np.memmap(path, dtype=np.uint8, mode="r").size
    expected = HEADER + 4 * floats
    if size != expected:
        raise CheckpointError(
            f"{path}: {size} bytes, but the header (dim {c.dim}, hidden_dim {c.hidden_dim}, "
            f"n_layers {c.n_layers}, n_heads {c.n_heads}, n_kv_heads {c.n_kv_heads}, "
            f"vocab_size {c.vocab_size}, seq_len {c.seq_len}, shared classifier "
            f"{c.shared_classifier}) describes {expected} bytes"
            + (" (truncated)" if size < expected else ""))
    data = np.memmap(path, dtype="<f4", mode="r", offset=HEADER, shape=(floats,))
    weights, at = {}, 0
    for name, shape in layout:
        n = int(np.prod(shape))
        if name:
            weights[name] = data[at:at + n].reshape(shape)
        at += n
    if c.shared_classifier:
        weights["wcls"] = weights["token_embedding"]
    return c, weights


def write_checkpoint(path, config, weights):
    """Writes `weights` (the arrays read_checkpoint returns) as a llama2.c
    checkpoint of `config`; the classifier is stored only when not shared.
    The legacy RoPE tables are written as zeros."""
    vocab = config.vocab_size if config.shared_classifier else -config.vocab_size
    header = np.array([config.dim, config.hidden_dim, config.n_layers, config.n_heads,
                       config.n_kv_heads, vocab, config.seq_len], "<i4")
    with open(path, "wb") as f:
        f.write(header.tobytes())
        for name, shape in _layout(config):
            array = weights[name] if name else np.zeros(shape, np.float32)
            if tuple(array.shape) != shape:
                raise CheckpointError(f"{path}: '{name}' has shape {array.shape}, the config "
                                      f"needs {shape}")
            f.write(np.ascontiguousarray(array, "<f4").tobytes())


def layer_weights(weights, n_layers):
    """The per-layer form posenc.decoder takes: globals plus `layers`, a
    list of {rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3} (views, no
    copy)."""
    per_layer = ("rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3")
    out = {k: weights[k] for k in ("token_embedding", "rms_final", "wcls")}
    out["layers"] = [{k: weights[k][i] for k in per_layer} for i in range(n_layers)]
    return out


_BYTE_PIECE = re.compile(rb"^<0x([0-9A-Fa-f]{2})>$")


class Tokenizer:
    """A llama2.c tokenizer.bin with `vocab_size` pieces."""

    BOS, EOS = 1, 2

    def __init__(self, path, vocab_size):
        self.path = path
        with open(path, "rb") as f:
            data = f.read()
        self.pieces, self.scores = [], []
        if len(data) < 4:
            raise CheckpointError(f"{path}: {len(data)} bytes, no tokenizer header")
        at = 4
        for i in range(vocab_size):
            if at + 8 > len(data):
                raise CheckpointError(f"{path}: truncated at piece {i} of {vocab_size} "
                                      f"(byte {at} of {len(data)})")
            score = float(np.frombuffer(data, "<f4", 1, at)[0])
            n = int(np.frombuffer(data, "<i4", 1, at + 4)[0])
            if n < 0 or at + 8 + n > len(data):
                raise CheckpointError(f"{path}: piece {i} claims {n} bytes at byte {at + 8} "
                                      f"of {len(data)}")
            self.pieces.append(data[at + 8:at + 8 + n])
            self.scores.append(score)
            at += 8 + n
        self.lookup = {}
        for i, p in enumerate(self.pieces):
            self.lookup.setdefault(p, i)

    def encode(self, text, bos=True, eos=False):
        """Token ids of `text` (str or UTF-8 bytes), as run.c's encode()."""
        raw = text.encode() if isinstance(text, str) else bytes(text)
        ids = [self.BOS] if bos else []
        if raw:
            if b" " not in self.lookup:
                raise CheckpointError(f"{self.path}: the tokenizer has no ' ' piece for the "
                                      f"dummy prefix run.c puts before text")
            ids.append(self.lookup[b" "])
        # One piece per UTF-8 character; unknown characters as bytes + 3.
        chars = re.findall(rb"[\x00-\x7f]|[\xc0-\xff][\x80-\xbf]{0,3}|[\x80-\xbf]", raw)
        for ch in chars:
            if ch in self.lookup:
                ids.append(self.lookup[ch])
            else:
                ids.extend(b + 3 for b in ch)
        start = 1 if bos else 0
        while True:
            best, best_id, best_at = -1e10, -1, -1
            for i in range(start, len(ids) - 1):
                merged = self.lookup.get(self.pieces[ids[i]] + self.pieces[ids[i + 1]])
                if merged is not None and self.scores[merged] > best:
                    best, best_id, best_at = self.scores[merged], merged, i
            if best_at < 0:
                break
            ids[best_at:best_at + 2] = [best_id]
        if eos:
            ids.append(self.EOS)
        return ids

    def piece_bytes(self, prev, token):
        """The bytes run.c prints for `token` after `prev`: the leading space
        dropped after BOS, `<0xXX>` pieces as their byte."""
        piece = self.pieces[token]
        if prev == self.BOS and piece.startswith(b" "):
            piece = piece[1:]
        m = _BYTE_PIECE.match(piece)
        return bytes([int(m.group(1), 16)]) if m else piece

    def decode(self, ids):
        """The text of `ids` (BOS first), as run.c prints it."""
        out = b"".join(self.piece_bytes(prev, tok) for prev, tok in zip(ids, ids[1:]))
        return out.decode("utf-8", errors="replace")
