//===- Passes.td - posenc dialect passes -------------------*- tablegen -*-===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_TD
#define POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

def PosencDecomposeMlaPass : Pass<"posenc-decompose-mla"> {
  let summary = "Rewrite posenc.mla_absorb into attention over decompressed "
                "or latent keys";
  let description = [{
    `naive`: decompress per-head keys k = [w_uk·c_kv | k_pe] and values
    v = w_uv·c_kv, then multi-head `posenc.attention` (compute-friendly:
    prefill). `absorbed`: q_lat = q_nope·w_uk per head, then multi-query
    `posenc.attention` over keys [c_kv | k_pe] (C + Dr wide) with values
    c_kv, then out = o_lat·w_uvᵀ (memory-friendly: decode reads C + Dr
    elements per cached token instead of H·(Dn + Dr + Dv)). `auto` absorbs
    when the query length is static and at most `absorb-threshold`.

    Both forms are `posenc.attention` plus linalg on tensors, so bias fusion
    and every lowering apply to them.
  }];
  let options = [
    Option<"mode", "mode", "::mlir::posenc::MlaDecomposition",
           "::mlir::posenc::MlaDecomposition::automatic",
           "Which form to produce",
           [{::llvm::cl::values(
             clEnumValN(::mlir::posenc::MlaDecomposition::automatic, "auto",
                        "absorbed for short queries, naive otherwise"),
             clEnumValN(::mlir::posenc::MlaDecomposition::naive, "naive",
                        "decompress keys and values per head"),
             clEnumValN(::mlir::posenc::MlaDecomposition::absorbed, "absorbed",
                        "multi-query attention over the latent cache"))}]>,
    Option<"absorbThreshold", "absorb-threshold", "int64_t", "16",
           "With mode=auto, absorb when the query length is <= this">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencCompressKVPass : Pass<"posenc-compress-kv"> {
  let summary = "Low-rank KV-cache compression: factor constant key/value "
                "projections by truncated SVD into a latent per token";
  let description = [{
    The third idea of DeepSeek-V2's attention (arXiv 2405.04434 §2.1),
    applied at compile time to a model trained without it: the key and
    value projections `k = x·W_k`, `v = x·W_v` (`W: [d, Hkv·D]` constants,
    `arith.constant` dense or `dense_resource`) are replaced by a latent
    `c = x·A` of R floats per token, the only thing a KV cache would store,
    and up-projections `B` with `A·B` the best rank-R approximation of the
    weights (Eckart–Young; Eigen's SVD in float64, `A` the left singular
    vectors, `B = Σ·Vᵀ`).

    Matched: `posenc.attention` whose `k` (optionally through `posenc.rope`)
    and `v` are `tensor.expand_shape [[0, 1], [2, 3]]` of `linalg.matmul`s
    of the same `x: [N, d]` by constant f32 weights into a zero fill.
    `factor=joint` factors `[W_k | W_v]` into one latent of R; `separate`
    factors W_k and W_v alone, with ⌈R/2⌉ and ⌊R/2⌋ (or each by `energy`).
    - Non-rotary keys: the up-projections are absorbed, as MLA absorbs
      them: `q_lat = q·B_kᵀ` per query head, multi-query `posenc.attention`
      over the latent (keys and values both `c`, the original scale), then
      `out = o_lat·B_v` per head. When q is itself `x·W_q` of a constant
      and the result feeds `collapse_shape [[0, 1], [2, 3]]` and a matmul
      by a constant W_o, B_k and B_v are folded into those weights instead
      (no per-head products are left).
    - Rotary keys (RoPE does not commute with the up-projection):
      `rotary=reconstruct` rebuilds k = rope(c·B_k) and v = c·B_v from the
      latent (in decode block by block inside the key loop, where
      posenc-tile-attention fuses them); `rotary=decoupled` keeps the
      rotary keys as they are and compresses the values alone (W_v, rank
      R). With partial rotary (the rope's `rotary_dim` R_rot < D) only the
      rotated dims are kept, `rope(x·W_k[rotated columns])`; the others are
      position-independent and join the values in one latent (rank R of
      [W_k's other columns | W_v]), and k = concat(rotated, c·B_k) along
      the head dim: DeepSeek-V2's decoupled RoPE (§2.1.3) on a model
      trained without it.

    The rank is `rank` (clamped to min(d, columns)) or, per attention, the
    smallest R whose singular values keep the fraction `energy` of Σσ²;
    exactly one of them must be set. `layers` lists the attention ops to
    compress by their index in walk order (default: all); a listed one that
    does not match is an error naming what did not match. Each compressed
    op gets a remark with its rank, latent width and the dropped energy.
  }];
  let options = [
    Option<"rank", "rank", "int64_t", "0",
           "Latent width R per token (0: use energy)">,
    Option<"energy", "energy", "double", "0.0",
           "Fraction of Σσ² to keep, in (0, 1] (0: use rank)">,
    Option<"factor", "factor", "std::string", "\"joint\"",
           "joint ([W_k | W_v] together) or separate">,
    Option<"rotary", "rotary", "std::string", "\"reconstruct\"",
           "Rotary keys: reconstruct (k = rope(c·B_k)) or decoupled (keep "
           "the rotated key dims, compress values and any other key dims)">,
    ListOption<"layers", "layers", "int64_t",
               "Indices of the attention ops to compress (default: all)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencDecomposeAttentionPass : Pass<"posenc-decompose-attention"> {
  let summary = "Rewrite posenc.attention and posenc.online_attention through "
                "their decompositions";
  let description = [{
    Calls `decomposeOperation` (linalg::AggregatedOpInterface) on every
    `posenc.attention` (into `posenc.online_attention` from the initial
    state (0, -inf, 0) followed by the normalization acc / sum) and every
    `posenc.online_attention` (into one online-softmax step on linalg),
    until none is left. Tile first: the decomposition of a block of Sq
    queries and Sk keys holds [B, H, Sq, Sk] scores. An op that cannot be
    decomposed (a dynamic number of heads, or a dynamic key head dim and no
    scale) is an error naming it.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencTileForThreadsPass
    : Pass<"posenc-tile-for-threads", "::mlir::func::FuncOp"> {
  let summary = "Top-level linalg ops as scf.forall chunks for threads";
  let description = [{
    Tiles each linalg op on tensors that sits directly in the function body
    (rope, sinusoidal and the bias ops after conversion, the projections
    and elementwise ops of model IR; not the linalg inside attention's
    tiles) along its outermost parallel dim of more than one iteration that
    every indexing map uses as a plain dim and the body does not index,
    into an `scf.forall` of at most `chunks` iterations, each a multiple of
    64 long (fewer when the dim is shorter): only that dim is sliced, the
    op is cloned on the slices with its maps kept. Each chunk computes its
    slice of the result exactly as the untiled op would (no reduction is
    split, and the 64-multiples keep the vectorized matmul's register
    blocks where they were), so results do not depend on the chunk count.
    Ops of fewer than `min-iterations` loop iterations (statically; a
    projection counts its reduction too) stay whole: a chunk should be a
    few pages of work for bandwidth-bound loops to keep streaming.
    `posenc-lower-to-cpu{num-threads}` runs it with 4 chunks per thread.
  }];
  let options = [
    Option<"chunks", "chunks", "int64_t", "8",
           "Iterations of each scf.forall (>= 1)">,
    Option<"minIterations", "min-iterations", "int64_t", "65536",
           "Ops with statically fewer loop iterations stay whole">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencTileAttentionPass : Pass<"posenc-tile-attention"> {
  let summary = "The FlashAttention loop derived from attention's interfaces";
  let description = [{
    For each `posenc.attention` with a static query length of at most
    `max-queries` (0: any): tiles it over (batch, query heads, queries) by
    `tile-sizes` through `scf::tileUsingSCF` (its TilingInterface; empty or
    0: untiled), turns each tile into `posenc.online_attention` from the
    state (0, -inf, 0) followed by acc / sum, and tiles that along keys by
    `key-tile` (a loop over key blocks carrying the state). Each key block
    is one online-softmax step; `convert-posenc-to-linalg` (or
    `posenc-decompose-attention`) decomposes it into linalg. Attention
    with dynamic head counts, or a dynamic key head dim and no scale, is
    left as it is (the lowering reports it); a head tile that splits a GQA
    group is an error naming the op.

    With `tile-rows` > 0 the outer tiles are one batch, the G = Hq / Hkv
    query heads of one kv head and max(1, tile-rows / G) queries, whatever
    the op's GQA group: the shape of the 2-D steps online_attention
    decomposes into; each kv head's K and V are copied once into
    contiguous blocks that its query tiles share. When the static query
    length fits one tile (decode), only the batch is tiled: each key block
    then spans every kv head of its keys, a contiguous stretch of the
    cache read in place, and the step loops over the kv heads inside. The
    producers of decode's K and V that implement TilingInterface (linalg
    ops, `posenc.rope`, through `tensor.expand_shape`) and have no reader
    but attention are fused into the key loop, since each key block is read
    once: keys rebuilt from a compressed cache (posenc-compress-kv's
    `rope(c·B_k)`, `c·B_v`) are multiplied out and rotated one block at a
    time and never stored whole. A rope whose scaling reads the largest
    position of the run (dynamic NTK, longrope with two tables) stays
    whole. A causal
    tile reads only the keys its queries can see, and online_attention's
    key loop ends at its causal limit, so key blocks above the diagonal
    are never visited.

    With `key-chunk` > 0 decode's keys are split (flash-decoding): an
    `scf.forall` over chunks of `key-chunk` keys, each a loop over key
    blocks from its own state (0, -inf, 0), the partial states merged after
    it through online_attention's `PartialReductionOpInterface`. The chunk
    length is fixed, so the merge (and the rounding) depends on the number
    of keys, not on the threads. Keys that cannot fill more than one chunk
    are not split; a dynamic key count (a cache's used length) is split
    under an `scf.if` on it, whose else branch is the unsplit loop: a
    short cache starts no parallel region and has one thread's bits.

    With `parallel`, the outermost tiles form an `scf.forall` (tiles
    share nothing; each computes exactly what the scf.for iteration
    would), which `posenc-lower-to-cpu{num-threads}` runs on OpenMP
    threads.

    `posenc-lower-to-cpu` runs it for decode-shaped attention (a few
    queries against a long cache, longer key blocks), where K and V are
    read in place, once, in their stored layout and dtype;
    `convert-posenc-to-linalg` tiles every other attention the same way.
  }];
  let options = [
    ListOption<"tileSizes", "tile-sizes", "int64_t",
               "Tile sizes of batch, query heads and queries (0: untiled)">,
    Option<"tileRows", "tile-rows", "int64_t", "0",
           "Rows per tile, as (query, head) pairs: each tile takes one batch, "
           "the G = Hq / Hkv query heads of one kv head and max(1, "
           "tile-rows / G) queries (0: tile-sizes decides)">,
    Option<"keyTile", "key-tile", "int64_t", "256",
           "Keys per block of the online-softmax loop">,
    Option<"maxQueries", "max-queries", "int64_t", "0",
           "Tile only attention whose static query length is at most this "
           "(0: every attention)">,
    Option<"keyChunk", "key-chunk", "int64_t", "0",
           "Decode (all queries in one tile): split the keys into chunks of "
           "this many keys, an scf.forall with partial states merged after "
           "it (split-K); 0: one loop over key blocks">,
    Option<"parallel", "parallel", "bool", "false",
           "Emit the outermost tiles (with tile-rows: per batch and kv head, "
           "or per batch for decode) as scf.forall, whose iterations may run "
           "on different threads, instead of scf.for">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencFoldConstantsPass : Pass<"posenc-fold-constants"> {
  let summary = "Evaluate posenc ops whose operands are all constants";
  let description = [{
    Replaces `posenc.rope`, `posenc.sinusoidal`, `posenc.alibi_bias` and
    `posenc.rel_bias` whose operands are all `arith.constant` by a constant,
    evaluated in float64 and rounded once to the result type, when the
    result has at most `max-elements` elements. The limit exists because
    folding an O(S²) bias into the binary is the opposite of what users
    want; 0 disables folding.
  }];
  let options = [
    Option<"maxElements", "max-elements", "int64_t", "4096",
           "Largest result (in elements) to fold">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def PosencRaisePass : Pass<"posenc-raise"> {
  let summary = "Raise attention and RoPE written in upstream dialects to "
                "posenc.attention and posenc.rope";
  let description = [{
    Framework importers (torch-mlir's TorchToLinalg, IREE's input
    conversions, hand-written linalg) emit attention as separate ops:
    `softmax(scale·Q·Kᵀ + bias)·V` on `[batch..., S, D]` tensors, building
    the `[batch..., Sq, Sk]` scores. This pass finds that computation on
    linalg-on-tensors and rewrites it into `posenc.attention`, whose
    lowerings never build the scores (`posenc-fuse-bias-into-attention`
    then applies to a raised bias as usual). `populatePosencRaisePatterns`
    gives the pattern to other pipelines.

    Matched, each link checked on its indexing maps and payload (named ops
    such as `linalg.batch_matmul`, `linalg.transpose`, `linalg.softmax`,
    `linalg.reduce`, `linalg.broadcast` and elementwise named ops, or
    `linalg.generic`, fused or not):
    - Q·Kᵀ and P·V: contractions from a zero fill, payload `out + a·b`,
      each operand read through any permutation of (batch..., row, r);
      0, 1 or 2 batch dims (`[S, D]`, `[N, S, D]` with N any batch such
      as batch·heads, `[B, H, S, D]`), static or dynamic;
    - the scale: multiplications or divisions of Q·Kᵀ by constants
      (scalars, splats, fills), positive and finite (1 when absent);
    - the bias: one tensor added after the scale, read as numpy
      broadcasting would (trailing dims in order, size-1 dims read at 0),
      e.g. an ALiBi, T5 or causal-mask tensor of `[H, Sq, Sk]`;
    - the softmax over the last dim (the keys): `linalg.softmax`, or
      `e = exp(s - max(s))` divided by `sum(e)` or multiplied by
      `1 / sum(e)`, with the max reduction from -inf (or the lowest
      finite value) and the sum from 0, each reduction's kept dim
      reshaped or not. TOSA's form (`tosa.reduce_max`, `tosa.exp`,
      `tosa.reciprocal`, ...) is taken after upstream's
      `tosa-to-linalg-named, tosa-to-linalg`;
    - a mask applied by `arith.select` between the scores and -inf (or
      the lowest finite value), either way round (torch's `where` and
      `masked_fill`), the boolean mask read as numpy broadcasting would:
      it becomes an additive bias of the mask's shape (0 or the fill);
    - a constant bias or boolean mask that is causal (of `[1..., Sq, Sk]`,
      masking exactly the keys j > i + Sk - Sq) becomes `causal`, whose
      tiles skip the masked keys. A fill of the lowest finite value (as
      Hugging Face writes masks) only when Sq <= Sk: with Sq > Sk the
      first rows see no key and average all of them uniformly, which
      `causal` does not (they stay a bias);
    - K and V of `[B, H, S, D]` that repeat each kv head G times (Hugging
      Face's `repeat_kv`: `tensor.expand_shape` to `[B, Hkv, 1, S, D]` or
      not, a broadcast to `[B, Hkv, G, S, D]`, `tensor.collapse_shape`)
      are read unrepeated (GQA: query head h reads kv head h / G), the
      same G for both.
    Scores of f32 or f64 only: a softmax computed in f16 or bf16 is not
    what posenc.attention computes (f32). Q, K and V become posenc's
    `[B, S, H, D]`: `[B, H, S, D]` by one transpose (transposes before
    the contractions fold into it), `[N, S, D]` as `[N, S, 1, D]` and
    `[S, D]` as `[1, S, 1, D]` by reshapes (heads stay static); the
    result goes back the same way.

    RoPE as Hugging Face's `apply_rotary_pos_emb` writes it on
    `[B, H, S, D]` or `[B, S, H, D]` (static shapes, f32): `x·cos + rotate_half(x)·sin`
    with `rotate_half(x) = concat(-x[..., D/2:], x[..., :D/2])` (extract
    slices, a negation, `tensor.concat`), fused in one elementwise op or
    not, and cos/sin read broadcast over the heads from tables
    `a·cos(E)`, `a·sin(E)` of one `E = concat(F, F)`, `F[.., s, i] =
    pos[.., s]·ω_i` (LlamaRotaryEmbedding: `inv_freq @ position_ids` as a
    contraction over a unit dim, transposed, or an elementwise product;
    the positions an integer tensor converted by `arith.sitofp`, ω a
    constant; S, R/2 and a batch > 1 distinct, which fixes the dims ω
    and the positions are read along), becomes `posenc.rope` (layout half) on the integer
    positions: the base from ω (snapped to an integer within f32
    rounding), a linear factor when ω_0 != 1, `attention_factor` a.
    Tables folded to constants (`[1..., S, D]`, as a static export writes
    them; row s is position s) are taken too: ω is estimated from the
    rows, the base and factor recovered as above, and every entry checked
    against posenc's frequencies to the f32 rounding of the exporter's
    angle; the positions become a constant 0..S-1.
    Interleaved RoPE (layout interleaved, pairs (2i, 2i + 1)) on
    `[B, S, H, D]` or `[B, H, S, D]` (the dim the tables' rows are read
    along is S), in two forms: GPT-J's `x·cos + rotate_every_two(x)·sin`,
    `rotate_every_two(x) = stack((-x[..., 1::2], x[..., ::2]), -1)`
    flattened, with tables `repeat_interleave`d (unsqueeze, broadcast to
    `[..., R/2, 2]`, flatten; after cos/sin or on F); and Meta's pairs
    (Llama's `apply_rotary_emb` in real arithmetic, as ExecuTorch writes
    it) `stack((x_r·cos - x_i·sin, x_r·sin + x_i·cos), -1)` flattened,
    tables of `[.., S, R/2]`. The pair elements `x_r, x_i` are strided
    slices `x[..., 0::2]`, `x[..., 1::2]`, or slices of `x` viewed as
    `[..., R/2, 2]` (`tensor.expand_shape`). Tables computed or constant
    as above.
    Partial rotary (GPT-NeoX's `rotary_pct`, Phi, GPT-J's `rotary_dim`:
    `concat(rope(x[..., :R]), x[..., R:])`) becomes one `posenc.rope`
    with `rotary_dim = R`.
    Each ω is checked against posenc's own frequencies to f32 rounding.
    Frequencies that no base and linear factor give (Llama 3's, YaRN's or
    any other inv_freq; constant tables consistent with some ω) are kept
    as they are: `longrope` per-frequency factors ext_i = base^(-2i/R)/ω_i
    with short = long (the positions never select) and max_positions =
    original (no implied attention factor), the base from the two highest
    frequencies. Every ω must lie in (0, π] (above π a frequency aliases
    at integer positions). Tables that are not a·cos(s·ω), a·sin(s·ω) of
    one ω per column are left alone. Computed angles are checked read by
    read: each factor's indexing maps are composed back through the
    broadcasts, transposes, reshapes and the integer conversion to the
    constant ω (read along the frequency dim) and the integer positions
    (read along the batch and sequence dims). Tables may also be rows of a
    constant cache gathered by the position ids (`cache[position_ids]`:
    a generic of `tensor.extract` at the `index_cast` position and the
    column's `linalg.index`, or a last-dim slice of one, as GPT-J's
    sin/cos halves), row p being position p; the positions are then the
    ids. posenc.rope forms the angles exactly; the
    importer's f32 product p·ω is off by up to p·ω·2^-24, so the raised
    rotation is the more accurate one at long positions.

    DeepSeek-V2's multi-head latent attention in its naive form (Hugging
    Face's DeepseekV2Attention): `kv = c_kv·Wᵀ` (a contraction over C of
    `c_kv: [B, Sk, C]` and a W the same for every batch row: broadcast,
    transposed or of batch 1) viewed as `[B, Sk, H, Dn + Dv]` and split
    into k_nope `[..., :Dn]` and v `[..., Dn:]`; queries `[q_nope | q_pe]`
    and keys `[k_nope | k_pe]` joined along the head dim (`tensor.concat`,
    or `tensor.insert_slice` into an empty tensor as `new_empty` and slice
    assignments lower), k_pe `[B, Sk, Dr]` broadcast over the heads; the
    attention raised as above with no bias (causal or not). It becomes
    `posenc.mla_absorb` with `w_uk`, `w_uv` = W as `[H, Dn + Dv, C]`
    split at Dn, whose lowering absorbs W into the queries and never
    builds the per-head keys and values.

    The layout transposes the raised ops bring meet the importer's own
    (`[B, H, S, D]` ⇄ `[B, S, H, D]`) and fold: a transpose of a transpose
    becomes one, or none. Importers that write one function per module
    (or after `inline`) thus end with one layout change per tensor.

    On finite inputs the raised attention equals the original within
    rounding. Where the original yields NaN because a row sees no key (all
    scores -inf) or a -inf-masked key holds NaN or Inf, posenc.attention
    follows its mask rule instead (such a row is 0; masked keys never
    influence their row). Look-alikes are left alone: a softmax over
    another dim, a max or sum of other values, a non-zero accumulator,
    a bias added before the scale or read transposed, a non-positive
    scale, contractions over other dims.
  }];
  let dependentDialects = [
    "::mlir::linalg::LinalgDialect",
    "::mlir::posenc::PosencDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencFoldRopeLayoutPass : Pass<"posenc-fold-rope-layout"> {
  let summary = "Switch the RoPE layout of q and k by permuting W_q and W_k";
  let description = [{
    RoPE depends on the position, so it cannot be folded into W_q/W_k; its
    layout can. When `q = rope(x·W_q)` and `k = rope(x·W_k)` meet only as
    the q and k operands of one `posenc.attention`, permuting the output
    columns of W_q and W_k inside every head by the same permutation (pair
    i moves from (i, i + R/2) to (2i, 2i + 1), or back) and switching both
    ropes to layout `to` leaves every score q·k, and so the attention,
    unchanged. This is how Meta-layout LLaMA checkpoints become Hugging
    Face ones; a compiler uses it to pick the layout its target rotates
    fastest.

    Matched form: `linalg.matmul(x, W) : [N, H·D]`, then
    `tensor.expand_shape` to `[B, S, H, D]`, then `posenc.rope`. Constant
    weights are permuted at compile time; others get an explicit gather.
    Nothing changes when q or k (or their projections) have other users,
    when the two ropes differ in rotary dim, base, scaling or attention
    factor, or when the projection is not of the matched form.
  }];
  let options = [
    Option<"to", "to", "::mlir::posenc::RopeLayout",
           "::mlir::posenc::RopeLayout::half", "Layout to switch to",
           [{::llvm::cl::values(
             clEnumValN(::mlir::posenc::RopeLayout::half, "half",
                        "NeoX / Hugging Face rotate_half pairs (i, i + R/2)"),
             clEnumValN(::mlir::posenc::RopeLayout::interleaved, "interleaved",
                        "GPT-J / Meta pairs (2i, 2i + 1)"))}]>,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencFuseBiasIntoAttentionPass
    : Pass<"posenc-fuse-bias-into-attention"> {
  let summary = "Compute position biases inside attention's score_mod";
  let description = [{
    A `posenc.attention` whose bias operand is produced by
    `posenc.alibi_bias`, `posenc.rel_bias` or `posenc.rel_key_bias` (directly
    or through `tensor.cast` / unit-dim `tensor.expand_shape`), and used only
    as attention biases (one bias may serve several attention ops, as the
    layers of an ALiBi model share theirs: each fuses its own copy), gets
    that bias as `score_mod` arithmetic on (b, h, i, j) instead:
    the [H, Sq, Sk] tensor is never built and extra memory is O(S), not
    O(H·S²). Slopes, tables and bucket maps are captured small constants;
    `rel_key_bias` keeps one small product q·embᵀ of [B, Sq, H, 2M+1] and
    gathers from it by clamped distance.

    An existing `score_mod` runs after the bias, as the op semantics
    require. Biases with users other than attention biases (they need the
    tensor anyway), or produced by anything else, stay operands.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencCheckCPUInputPass
    : Pass<"posenc-check-cpu-input", "::mlir::ModuleOp"> {
  let summary = "Reject ops that posenc-lower-to-cpu cannot lower";
  let description = [{
    The first step of `posenc-lower-to-cpu`. The pipeline lowers the posenc
    dialect and the upstream dialects that posenc's lowerings and model IR
    use (builtin, func, arith, math, tensor, linalg, bufferization, memref,
    scf, cf, affine, index, vector, complex, ub, llvm). An op of any other
    dialect (tosa, stablehlo, an unregistered one, ...) would otherwise
    fail deep inside bufferization or be left unconverted; this pass names
    it, its dialect and what to do instead, before any work is done.
    `posenc-lower-to-nvvm` runs it too (`pipeline` names the pipeline in
    the message), with `f32-attention`: its attention kernel computes in
    f32, so f64 posenc.attention, posenc.online_attention and
    posenc.mla_absorb are refused by their own names (MLA would otherwise
    be refused after its decomposition, as the attention it becomes).
    A tensor built inside the body of a linalg op (a `tensor.empty` and a
    nested `linalg.generic`) is refused too: one-shot bufferization gives
    it no buffer of its own and the result would be silently wrong; a body
    may still read tensors defined above it with `tensor.extract`.
  }];
  let options = [
    Option<"pipeline", "pipeline", "std::string", "\"posenc-lower-to-cpu\"",
           "The pipeline the message names">,
    Option<"f32Attention", "f32-attention", "bool", "false",
           "Refuse attention ops that compute in f64">
  ];
}

def PosencInsertShapeChecksPass : Pass<"posenc-insert-shape-checks"> {
  let summary = "Check at run time the shape relations of dynamic dims";
  let description = [{
    Every posenc op's verifier checks how its dims relate (the sequence
    length of `x` and `pos` agree, a T5 table has `num_buckets` rows, query
    heads are a multiple of kv heads, ...) where the sizes are static. Where
    one of them is dynamic, this pass inserts a `cf.assert` before the op
    with the op's location and the relation in its message, so that a call
    with disagreeing arrays stops with that message instead of reading out
    of bounds. posenc-run and the Python package turn the failed check into
    an error of the call; other hosts see cf.assert's default (print and
    abort). Ops with only static dims get no checks.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::cf::ControlFlowDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def PosencApproximateMathPass : Pass<"posenc-approximate-math"> {
  let summary = "Vectorizable f32 exp, and sin/cos of f64 angles rounded to f32";
  let description = [{
    The softmax of attention evaluates exp once per score, and RoPE and
    sinusoidal evaluate sin and cos once per (position, pair); as libm calls
    they are scalar and dominate their loops. This pass rewrites

    - f32 `math.exp`, `math.erf` and `math.tanh` (scalars and vectors; erf
      for exact GELU, tanh for attention's `softcap`) into MLIR's
      polynomial approximations (a few ulp);
    - `arith.truncf (math.sin|math.cos %theta : f64)` to f32/f16/bf16 into a
      range reduction in f64 (θ = k·π/2 + r with a two-part π/2 and FMA, so
      angles of positions up to 2^24 keep posenc.rope's 1e-6 contract) and
      f32 polynomials for sin r and cos r, selected and signed by k mod 4.

    f64 math whose result stays f64 is left to libm.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def PosencExpandArithPass : Pass<"posenc-expand-arith"> {
  let summary = "arith-expand without the min/max expansion";
  let description = [{
    Upstream `arith-expand` also rewrites `arith.maximumf`, `minimumf`,
    `maxnumf` and `minnumf` into compare-and-select chains; the LLVM loop
    vectorizer does not recognize those as reductions, so the row maxima of
    attention's online softmax would stay scalar (with a branch per score).
    The LLVM lowering maps these ops to `llvm.maximum`/`llvm.maxnum`
    intrinsics, whose reductions vectorize. This pass applies the rest of
    `arith-expand`: signed/unsigned ceil and floor division, bf16
    conversions as integer ops (the host's libgcc may lack
    `__truncsfbf2`), and scaling extf/truncf.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def PosencExpandShapeToReinterpretCastPass
    : Pass<"posenc-expand-shape-to-reinterpret-cast"> {
  let summary = "memref.expand_shape with several dynamic sizes in one group "
                "as memref.reinterpret_cast";
  let description = [{
    LLVM 22's `expand-strided-metadata` assumes at most one dynamic size per
    reassociation group of `memref.expand_shape` and dereferences a null
    size otherwise (llvm-project issue #186830, fixed for LLVM 23 by reading
    `output_shape`). Such an expand comes from ordinary IR: keys reshaped
    from a flat `[B·S, D]` projection to `[%b, %n/%b, H, D]` with both B and
    S dynamic. This pass rewrites exactly those expands, before
    `expand-strided-metadata` runs, into `memref.extract_strided_metadata`
    of the source and a `memref.reinterpret_cast` with the sizes of
    `output_shape` and, within each group, strides that are suffix products
    of the sizes times the source dimension's stride (row-major, as
    `expand_shape` defines them). Other expands are left to upstream. Both
    CPU and GPU pipelines run it.
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect"];
}

def PosencAllocateOnGpuPass
    : Pass<"posenc-allocate-on-gpu", "::mlir::func::FuncOp"> {
  let summary = "Buffers of functions that launch GPU kernels live on the device";
  let description = [{
    After bufferization, a function's temporaries (RoPE's cos/sin tables,
    results) are `memref.alloc` on the host, and copies are `memref.copy`.
    In a function that launches kernels (`gpu.launch` or `gpu.launch_func`)
    this pass makes them `gpu.alloc`, `gpu.dealloc` and `gpu.memcpy`, and
    gives each constant table (`memref.get_global`) a device copy: every
    buffer of such a function is device memory, and its arguments and
    results are device buffers (the caller copies to and from the host).
    Functions without kernels are left alone.
  }];
  let dependentDialects = ["::mlir::gpu::GPUDialect"];
}

def PosencEmulateGpuLaunchPass
    : Pass<"posenc-emulate-gpu-launch", "::mlir::func::FuncOp"> {
  let summary = "Run GPU kernels on the host, threads in lockstep between "
                "barriers and warp collectives";
  let description = [{
    Rewrites each `gpu.launch` into host loops that compute what the GPU
    computes, so that kernels (their tiling, guards, index arithmetic,
    shared-memory staging and tensor-core fragments) are checked
    numerically on a machine without a GPU; `posenc-lower-to-nvvm{emulate=true}`
    runs every kernel of the GPU pipeline this way.

    The grid's blocks run one after another (z, y, x). In a block, the body
    is cut at every synchronization point into segments, each a loop over
    the block's threads (z, y, x): all threads reach the point before any
    passes it. The points are `gpu.barrier` and the warp collectives
    `gpu.shuffle`, `gpu.subgroup_reduce`, `nvgpu.mma.sync` and
    `nvgpu.ldmatrix`; a collective is
    computed for the 32 lanes of each warp as the PTX ISA specifies it:
    - `gpu.shuffle` as upstream lowers it to `shfl.sync` (the first `width`
      lanes take part; a lane whose source is out of range reads itself and
      gets `valid = false`);
    - `gpu.subgroup_reduce`, with clusters (`cluster(size, stride)`): each
      lane gets its cluster's reduction, combined as a pairwise tree
      (neighbours first), which is what the xor butterfly upstream lowers
      it to computes;
    - `nvgpu.mma.sync` m16n8k8 and m16n8k16 on f16/bf16 and m16n8k4 and
      m16n8k8 on tf32 (`tf32Enabled`; the operands' low 13 mantissa bits
      are dropped, as the tensor cores read them), f32 or f16
      accumulators (f16 ones for f16 operands only, as in PTX), each lane's
      fragment registers mapped to matrix rows
      and columns as in the ISA's "Matrix Fragments for mma.m16n8k*"
      figures; products are summed in f32 in k order;
    - `nvgpu.ldmatrix` x1/x2/x4, transposed or not: lane 8i + r addresses
      row r of tile i, and each lane receives the 32 bits of its row
      l / 4 at column 4 (l mod 4) bytes on.

    `nvgpu.device_async_copy` runs as an ordinary copy where it is issued
    (the elements past `srcElements` zero-filled, as cp.async's src-size
    does), in loops and branches too; `nvgpu.device_async_create_group` and `nvgpu.device_async_wait`
    then have nothing to wait for. A kernel that reads a copy's destination
    before waiting for it is therefore not caught here.

    A value that one segment defines and a later one reads is kept per
    thread in a host buffer [threads] (scalars and vectors); constants and
    side-effect-free views (`memref.subview`, `memref.view`, ...) are
    recomputed where they are read. An `scf.for` or `scf.if` that holds a
    synchronization point must have bounds or a condition that cannot
    differ between the threads of a block (they may not depend on thread
    ids, warp collectives or memory writes): it runs once per block, and
    its iteration arguments and results live per thread. Workgroup
    attributions and dynamic shared memory are host buffers, reused by
    every block; so is each static `memref.alloca` of a segment (a
    thread's private buffer lives within its turn).

    Errors (on the launch, naming the op or value): more than one block in
    the body, async launches, thread block clusters, private attributions,
    calls (a callee's barriers and ids cannot be seen), shared memory
    declared as a `memref.global`, NVVM ops, gpu/nvgpu ops not
    listed above (e.g. `gpu.all_reduce`, `nvgpu.warpgroup.mma`), an
    async copy token that reaches anything but a group or a wait,
    a synchronization point inside another region op or under bounds that
    may differ between threads, a memref or other non-scalar value live
    across a point that is not a side-effect-free view, warp collectives
    in a block that is not a static multiple of 32 threads, subgroup
    reductions whose clusters span more than a warp, and mma shapes or
    types other than the above.
  }];
  let options = [
    Option<"deallocate", "deallocate", "bool", "true",
           "Free the host buffers after the launch (false when buffer "
           "deallocation runs later)">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
  ];
}

def PosencMapParallelLoopsToGpuPass
    : Pass<"posenc-map-parallel-loops-to-gpu", "::mlir::func::FuncOp"> {
  let summary = "Map the outermost scf.parallel loops to GPU blocks and threads";
  let description = [{
    The loops that `convert-linalg-to-parallel-loops` makes of posenc's
    elementwise and table ops run over [..., d] with the contiguous dim
    last. Each outermost `scf.parallel` has its dims collapsed into one in
    row-major order and tiled by `threads`: the tile's iterations become
    thread x (consecutive threads touch consecutive elements, running on
    into the next row when the last dim is shorter than a block: coalesced
    loads and stores in blocks of `threads` however short that dim), the
    tile index block x. Parallel loops nested in it run sequentially inside
    a thread, as `scf.for` (also when under a sequential loop, which
    `convert-parallel-loops-to-gpu` cannot map), and host copies between
    strided buffers become such loops first (a device memcpy copies
    contiguous bytes only). The mapping attributes
    are those of `gpu-map-parallel-loops`, so `convert-parallel-loops-to-gpu`
    turns the loops into `gpu.launch` next.
  }];
  let options = [
    Option<"threads", "threads", "int64_t", "256",
           "Threads per block along the last dim (fewer when that dim is "
           "statically shorter)">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::arith::ArithDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::scf::SCFDialect",
  ];
}

def PosencCheckGpuMappingPass
    : Pass<"posenc-check-gpu-mapping", "::mlir::func::FuncOp"> {
  let summary = "Reject host code that reads or writes buffers after the GPU mapping";
  let description = [{
    On a device every buffer of a function that launches kernels is device
    memory (`posenc-allocate-on-gpu`), so after `convert-parallel-loops-to-gpu`
    the host part of such a function may allocate, free and copy contiguous
    buffers, and launch kernels, but not read or write elements: a loop nest
    that was not mapped to a kernel would run on the host against device
    pointers (a crash or a silently wrong result on the GPU, while the
    emulated pipeline, whose buffers are host memory, computes the right
    answer). Each such op is an error naming it: an `scf.parallel` left
    unmapped, a load or store, a strided `memref.copy`. Functions without
    kernels are left alone. With `emulated` (the pipeline's `emulate=true`,
    where the attention kernel itself is host loops over host buffers),
    host loads and stores are allowed; unmapped parallel loops and strided
    copies are still errors, so the emulated pipeline maps what the device
    pipeline maps.
  }];
  let options = [
    Option<"emulated", "emulated", "bool", "false",
           "Kernels are emulated on the host: allow host loads and stores">,
  ];
}

def PosencSpecializeSaturatedClampPass
    : Pass<"posenc-specialize-saturated-clamp"> {
  let summary = "Version a linalg.generic on whether a clamped difference "
                "saturates over its whole iteration space";
  let description = [{
    T5's relative-position bias (Raffel et al. 2020; Hugging Face
    `T5Attention._relative_position_bucket`) and Shaw et al.'s relative
    keys read a table at `clamp(pos[j] - pos[i], lo, hi)`: every key more
    than max_distance away shares one entry. Fused into attention's score
    step, that is a table read at a computed index (a gather) per score,
    although in most key tiles of a long sequence every score of the tile
    reads the same entry.

    For every `linalg.generic` whose body clamps a difference `a - b` to
    constant bounds (`arith.maxsi(arith.minsi(a - b, hi), lo)` or the other
    order), where `a` is computed from one loop dim alone and `b` from
    another (values defined in the body from `linalg.index` and values from
    above, no block arguments, no side effects) and both are `arith.extsi`
    of narrower integers (so `a - b` cannot wrap), this pass computes the
    range of `a` and of `b` over the iteration space (two loops, one per
    dim) before the op and replaces it with
    `scf.if (max a - min b <= lo)` → a copy with the clamp folded to `lo`,
    `else scf.if (min a - max b >= hi)` → a copy with `hi`, `else` the op
    unchanged. The copies compute the same values; their table read no
    longer depends on the dims, so it is hoisted and the rest vectorizes
    without a gather. An empty iteration space takes no bounds (the loops
    run 0 times).

    posenc-lower-to-cpu runs it after convert-posenc-to-linalg, on the
    score step of every attention tile.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::scf::SCFDialect"];
}

def PosencReadOnlyArgumentsPass
    : Pass<"posenc-read-only-arguments", "::mlir::ModuleOp"> {
  let summary = "Mark tensor arguments of functions bufferization.writable = false";
  let description = [{
    One-shot bufferization with function boundaries treats a tensor argument
    as a writable buffer by default, and may then compute a result in place
    in the caller's input (RoPE with `rotary_dim` < D writes its rotated part
    into the input's buffer and returns a copy of it). posenc's functions
    take their inputs read-only, as callers from C, mlir-runner, AOT
    executables and the Python binding expect: this pass sets
    `bufferization.writable = false` on every tensor argument of every
    function with a body that does not already say, so bufferization copies
    instead.
  }];
  let dependentDialects = ["::mlir::bufferization::BufferizationDialect"];
}

def PosencVectorizeMatmulPass : Pass<"posenc-vectorize-matmul"> {
  let summary = "Register-blocked vector code for f32 linalg.matmul on buffers";
  let description = [{
    The tiled attention lowering multiplies small tiles (scale·Q by Kᵀ, then
    P by V) with `linalg.matmul` on buffers; as plain loops they run at a
    fraction of the FMA peak, because the backend neither keeps a block of
    C in registers across the reduction nor reuses one row of B for several
    rows of A. This pass rewrites each f32 `linalg.matmul` whose B and C
    rows are contiguous (unit inner stride; A may be any strided view) into

    - blocks of `rows` x (`vectors`·`vector-width`) of C held in vector
      registers over the whole reduction: per k, `vectors` loads of B's row,
      one broadcast of A per row and rows·vectors `vector.fma`;
    - the same with one vector per row for the columns that remain, then
      the same with one row for the rows that remain;
    - a `linalg.matmul` on subviews for the last columns narrower than a
      vector (lowered to scalar loops later).

    C with a static number of rows at most `rows` and a static width of at
    least 2·`vectors` vectors (decode's P·V: a group of query rows against
    a block of V) takes blocks up to 4·`vectors` vectors wide with as many
    accumulators as the dot-product form's (2·`rows`·`vectors`), so each
    pass over B reads long stretches of its rows rather than one cache
    line of each (a 16-bit B: half as wide, twice the rows, so each
    extended vector of B serves twice the FMAs); when B's rows lie a static
    stride apart with a gap after each (one kv head's values of a
    [keys, heads, D] cache), every k also prefetches the block's columns of
    the row 16 ahead (each line and the last element, for rows that do not
    start on a line).

    `vector-width` 0 (the default) takes the host's widest f32 vectors: 16
    lanes with AVX-512, 8 with AVX (2), else 4.

    Each C element is still the sum over k in increasing order, with one
    rounding per FMA.

    A `linalg.matmul` with the maps (m, k), (n, k), (m, n) — C += A·Bᵀ,
    B stored [N, K], as the projections of a model whose weights are
    [out, in] — takes the dot-product form instead: blocks of `rows` x
    2·`vectors` elements of C (single rows: rows·2·`vectors` columns) whose
    accumulators are vectors along k, loads of A's and B's rows, one FMA
    per pair, a horizontal sum and a scalar tail over k; B's rows are the
    outer loop, so a block of them stays in cache across A's rows. Here C
    is the sum of `vector-width` interleaved partial sums over k. When B's
    rows have a static length K and lie a static stride apart with a gap
    after each (one kv head's keys of a [keys, heads, D] cache, which the
    hardware prefetchers miss), each block of B's rows first issues
    `memref.prefetch` for every cache line of the rows 16 ahead and for
    their last element (clamped to the last row).

    When such a B, with rows of at least a cache line, is a view (through
    `memref.subview`s) of a contiguous buffer, and its stride is a whole
    number S/L of rows of length L, it is
    taken as one kv head's block of rows of a [keys, heads, D] cache, read
    head after head (decode's key blocks): each row j then also prefetches
    into L2 (locality 2) L elements of the next block's stretch, at
    (start of this block) + rows·S + head·rows·L + j·L (clamped to the
    buffer's last element), so the heads of one block together prefetch
    the next block front to back. A one-thread read of a cache head after
    head runs at about 60% of a sequential read; this stream brings it
    close to it (bf16 decode at 32K keys: 14.1 -> 11.5 ms median here).

    When A and B are both bf16 and 16-lane vectors are used, `bf16-dot`
    (`host`: when the host has AVX512-BF16; `on`; `off`) makes each step
    along k one `x86vector.avx512.dot` (vdpbf16ps) of 32 elements of a row
    of A and one of B as stored, instead of extending them and issuing
    two FMAs: products of bf16 are exact in f32, so only the order of the
    sum changes (inputs and results below f32's normal range are flushed
    to zero, as the instruction does). Otherwise a 16-bit A is extended to
    f32 once, into a buffer, before the blocks.

    Other matmuls (other element types, other maps, tensors, strided rows)
    are left alone.
  }];
  let options = [
    Option<"rows", "rows", "int64_t", "4",
           "Rows of C per register block">,
    Option<"vectors", "vectors", "int64_t", "2",
           "Vectors of C per row of a register block">,
    Option<"vectorWidth", "vector-width", "int64_t", "0",
           "f32 lanes per vector (0: the host's widest: 16 with AVX-512, "
           "8 with AVX2, else 4)">,
    Option<"bf16Dot", "bf16-dot", "std::string", "\"host\"",
           "bf16 dot products (vdpbf16ps) for C += A·Bᵀ of bf16 A and B: "
           "host (when the host has AVX512-BF16), on or off">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::vector::VectorDialect",
    "::mlir::x86vector::X86VectorDialect",
  ];
}

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_PASSES_TD
