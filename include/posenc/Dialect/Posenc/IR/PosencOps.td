//===- PosencOps.td - posenc operations --------------------*- tablegen -*-===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCOPS_TD
#define POSENC_DIALECT_POSENC_IR_POSENCOPS_TD

include "posenc/Dialect/Posenc/IR/PosencAttrs.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/ControlFlowInterfaces.td"
include "mlir/Interfaces/DestinationStyleOpInterface.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

//===----------------------------------------------------------------------===//
// Type constraints
//===----------------------------------------------------------------------===//

// Ops compute in f32 (16-bit elements are extended as read), or in f64
// throughout for f64 operands.
def Posenc_FloatTensor : RankedTensorOf<[F32, F16, BF16, F64]>;
// An operand of an op with tensor and buffer forms (attention).
def Posenc_FloatShaped : Type<
    Or<[Posenc_FloatTensor.predicate,
        MemRefOf<[F32, F16, BF16, F64]>.predicate]>,
    "ranked tensor or memref of f32, f16, bf16 or f64 values",
    "::mlir::ShapedType">;
def Posenc_PosTensor : RankedTensorOf<[I32, I64]>;

//===----------------------------------------------------------------------===//
// RopeOp
//===----------------------------------------------------------------------===//

def Posenc_RopeOp : Posenc_Op<"rope", [Pure, AllTypesMatch<["x", "result"]>]> {
  let summary = "Rotary position embedding";
  let description = [{
    Rotates pairs of dimensions of `x: [B, S, H, D]` by angles proportional
    to the positions `pos: [B, S]` or `[S]`.

    With R = `rotary_dim` (even, <= D, default D) and i < R/2, the angle of
    pair i at position p is θ_i = p·ω_i. The frequencies ω come from `base`
    (default 10000) and `scaling` (default `none`):

    - `none`: ω_i = base^(-2i/R)
    - `linear{factor f}`: ω_i / f
    - `ntk{alpha a}`: base' = base·a^(R/(R-2)), ω from base'
    - `dynamic{factor f, original L0}`: s = max(max(pos)+1, L0);
      base' = base·((f·s/L0) - (f-1))^(R/(R-2)); ω from base'
    - `yarn{factor f, original L0, beta_fast, beta_slow, mscale,
      mscale_all_dim, truncate}`: cd(r) = R·ln(L0/(2πr)) / (2·ln base);
      low = cd(beta_fast), high = cd(beta_slow) (floor/ceil when truncate),
      clamped to [0, R-1]; if low = high then high += 0.001;
      ramp_i = clamp((i-low)/(high-low), 0, 1);
      ω_i' = ω_i·(ramp_i/f + 1 - ramp_i). Default attention factor:
      g(f, mscale)/g(f, mscale_all_dim) when both are non-zero, else
      g(f, 1), with g(s, m) = 1 if s <= 1 else 0.1·m·ln s + 1.
    - `llama3{factor f, low_freq_factor, high_freq_factor, original L0}`:
      λ = 2π/ω; λ < L0/high → ω; λ > L0/low → ω/f; otherwise, with
      t = (L0/λ - low)/(high - low): (1-t)·ω/f + t·ω (low <= high; equal
      factors, as Llama 4 Scout's, leave no band: λ <= L0/low → ω)
    - `longrope{short_factor, long_factor, original L0, max_positions}`:
      ω_i = 1/(ext_i·base^(2i/R)), ext = long_factor if max(pos)+1 > L0
      else short_factor; attention factor sqrt(1 + ln(max_positions/L0) /
      ln L0).

    `layout` selects the pairs (u, v): `half` pairs (i, i + R/2),
    `interleaved` pairs (2i, 2i + 1). With a = `attention_factor` (when
    given; else the scaling's default, else 1):

    ```
    y_u = a·(x_u·cos θ - x_v·sin θ)
    y_v = a·(x_v·cos θ + x_u·sin θ)
    ```

    Dimensions >= R are copied unchanged. Frequencies are computed in
    float64 at compile time; angles are range-reduced so that cos/sin stay
    within 1e-6 of a float64 evaluation for every position below 2^24.

    Tileable (TilingInterface): the domain (b, s, h, d) is parallel; a tile
    keeps D whole and slices `pos` with it. The `dynamic` and (with two
    different tables) `longrope` scalings cannot be tiled along B or S.

    Multimodal RoPE (M-RoPE; Qwen2-VL, Wang et al. 2024, and transformers'
    `apply_multimodal_rotary_pos_emb`): with `mrope_section = array<i64:
    n_0, ..., n_{A-1}>` (A >= 1 sections of frequency pairs, summing to
    R/2) the positions are `pos: [A, S]` or `[A, B, S]` — one position per
    axis (Qwen2-VL: temporal, height, width) — and pair i reads the axis of
    its section: pairs [0, n_0) axis 0, the next n_1 pairs axis 1, and so
    on. With `mrope_interleaved` (Qwen3-VL's `apply_interleaved_mrope`,
    A = 3) the axes alternate instead: pair i reads axis 1 when i mod 3 = 1
    and i < 3·n_1, axis 2 when i mod 3 = 2 and i < 3·n_2, else axis 0.
    The frequencies ω_i and everything else are as above (the dynamic and
    longrope scalings take max(pos) over every axis); equal axes give
    plain RoPE.

    Example:

    ```mlir
    %y = posenc.rope %x, %pos layout half {base = 500000.0 : f64,
           scaling = #posenc.rope_scaling<llama3, factor = 8.0,
             low_freq_factor = 1.0, high_freq_factor = 4.0, original = 8192>}
         : tensor<1x16x32x128xf32>, tensor<16xi32>
    ```
  }];
  let arguments = (ins
    Posenc_FloatTensor:$x,
    Posenc_PosTensor:$pos,
    Posenc_RopeLayoutAttr:$layout,
    DefaultValuedAttr<F64Attr, "10000.0">:$base,
    OptionalAttr<I64Attr>:$rotary_dim,
    OptionalAttr<Posenc_RopeScalingAttr>:$scaling,
    OptionalAttr<F64Attr>:$attention_factor,
    OptionalAttr<DenseI64ArrayAttr>:$mrope_section,
    UnitAttr:$mrope_interleaved
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $x `,` $pos `layout` `` $layout attr-dict `:` type($x) `,` type($pos)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = [{
    /// The attention factor in effect: `attention_factor` when given, else
    /// the scaling's default (YaRN, LongRoPE), else 1.
    double getEffectiveAttentionFactor();
    /// The number of rotated dimensions R; std::nullopt only when the head
    /// dim is dynamic and `rotary_dim` is absent (rejected by the verifier).
    std::optional<int64_t> getRotaryDimOrHeadDim();
    /// The scaling attribute, `none` when absent.
    RopeScalingAttr getScalingOrNone();
    /// With `mrope_section`: the axis of `pos` that each of the R/2 pairs
    /// reads; empty without it.
    SmallVector<int64_t> getPairAxes();
  }];
}

//===----------------------------------------------------------------------===//
// SinusoidalOp
//===----------------------------------------------------------------------===//

def Posenc_SinusoidalOp : Posenc_Op<"sinusoidal", [Pure]> {
  let summary = "Absolute sinusoidal position encoding (Vaswani et al.)";
  let description = [{
    Builds the encoding table of the positions `pos: [..., S]` as a tensor
    `[..., S, D]`, D = `dim`, in one of three published conventions
    (`convention`, default `vaswani`), which differ in the frequencies, the
    column order and odd D. Positions are values, not row indices: row s
    is the encoding of the position `pos[..., s]`.

    - `vaswani` (Vaswani et al. 2017; tensor2tensor, Hugging Face
      Transformer-XL/XLNet): ω_i = base^(-2i/D) for i < D/2, D even.
      `interleaved`: PE[2i] = sin(p·ω_i), PE[2i+1] = cos(p·ω_i);
      `half`: PE[i] = sin(p·ω_i), PE[D/2 + i] = cos(p·ω_i).
    - `fairseq` (fairseq's `SinusoidalPositionalEmbedding.get_embedding`,
      also M2M-100, NLLB, XGLM, Speech2Text): h = floor(D/2),
      ω_i = base^(-i/(h-1)) for i < h, PE[i] = sin(p·ω_i),
      PE[h + i] = cos(p·ω_i); odd D has a last column of zeros. D >= 4,
      layout `half`.
    - `marian` (Hugging Face `MarianSinusoidalPositionalEmbedding`, also
      Pegasus): ω_j = base^(-2·floor(j/2)/D) over the D columns j; the
      first ceil(D/2) columns are sin(p·ω_{2i}), the remaining floor(D/2)
      are cos(p·ω_{2i+1}). For even D this is `vaswani` with layout
      `half`; odd D is allowed. Layout `half`.

    `padding_idx` (any convention): a row whose position equals it is all
    zeros (fairseq zeroes row `padding_idx` of its table and counts real
    positions from `padding_idx + 1`).

    The accuracy contract of `posenc.rope` applies. Errors: an odd D
    (vaswani) or D < 4 (fairseq), D <= 0, `interleaved` with fairseq or
    marian, frequencies that are not finite and positive.

    Example:

    ```mlir
    %pe = posenc.sinusoidal %pos layout interleaved {dim = 512 : i64}
          : tensor<128xi64> -> tensor<128x512xf32>
    // fairseq's table for a model with padding index 1 (positions from 2).
    %fs = posenc.sinusoidal %pos layout half convention fairseq
          {dim = 1024 : i64, padding_idx = 1 : i64}
          : tensor<128xi64> -> tensor<128x1024xf32>
    ```
  }];
  let arguments = (ins
    Posenc_PosTensor:$pos,
    Posenc_RopeLayoutAttr:$layout,
    I64Attr:$dim,
    DefaultValuedAttr<F64Attr, "10000.0">:$base,
    DefaultValuedAttr<Posenc_SinusoidalConventionAttr,
                      "::mlir::posenc::SinusoidalConvention::vaswani">:$convention,
    OptionalAttr<I64Attr>:$padding_idx
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $pos `layout` `` $layout (`convention` `` $convention^)? attr-dict `:`
    type($pos) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// AlibiBiasOp
//===----------------------------------------------------------------------===//

def Posenc_AlibiBiasOp : Posenc_Op<"alibi_bias", [Pure]> {
  let summary = "ALiBi attention bias (Press et al.)";
  let description = [{
    Builds the additive attention bias of ALiBi for query positions
    `q_pos: [Sq]` or `[B, Sq]` and key positions `k_pos: [Sk]` or
    `[B, Sk]`. The result is `[H, Sq, Sk]` when both position tensors are
    1-D and `[B, H, Sq, Sk]` otherwise, H = `num_heads`. Without
    `num_heads`, H is the result type's head dim (which must then be
    static).

    - `causal`: bias[h, i, j] = m_h·(k_pos_j - q_pos_i)
    - `symmetric`: bias[h, i, j] = -m_h·|k_pos_j - q_pos_i|

    The slopes m are `slopes` when given, else the rule of the ALiBi paper
    (as in BLOOM) with B = `max_bias` (default 8): P = 2^floor(log2 n);
    m_h = 2^(-B·h/P) for h = 1..P; if n > P, append 2^(-B·(2k-1)/(2P)) for
    k = 1..n-P.

    Example:

    ```mlir
    %bias = posenc.alibi_bias %qp, %kp mode causal {num_heads = 16 : i64}
            : tensor<128xi32>, tensor<128xi32> -> tensor<16x128x128xf32>
    // The same: 16 heads from the result type.
    %same = posenc.alibi_bias %qp, %kp mode causal
            : tensor<128xi32>, tensor<128xi32> -> tensor<16x128x128xf32>
    ```
  }];
  let arguments = (ins
    Posenc_PosTensor:$q_pos,
    Posenc_PosTensor:$k_pos,
    Posenc_AlibiModeAttr:$mode,
    OptionalAttr<I64Attr>:$num_heads,
    DefaultValuedAttr<F64Attr, "8.0">:$max_bias,
    OptionalAttr<DenseF64ArrayAttr>:$slopes
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $q_pos `,` $k_pos `mode` `` $mode attr-dict `:` type($q_pos) `,`
    type($k_pos) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The per-head slopes: `slopes` if given, else the default rule.
    SmallVector<double> getSlopesOrDefault();
    /// H: `num_heads`, else the result's (static) head dim.
    int64_t getHeadCount();
  }];
}

//===----------------------------------------------------------------------===//
// RelBiasOp
//===----------------------------------------------------------------------===//

def Posenc_RelBiasOp : Posenc_Op<"rel_bias", [Pure]> {
  let summary = "Learned scalar relative-position bias (T5, clipped)";
  let description = [{
    Looks up a learned per-head bias by relative distance:
    bias[h, i, j] = table[bucket(k_pos_j - q_pos_i), h] with
    `table: [NB, H]`. Positions and result shapes follow
    `posenc.alibi_bias`.

    `kind = t5` (N = `num_buckets`, M = `max_distance`): with rel = k - q;
    if `bidirectional`: N <- N/2, b0 = N·[rel > 0], n = |rel|; else b0 = 0,
    n = -min(rel, 0); e = N/2; bucket = b0 + (n if n < e else
    min(e + floor(ln(n/e)/ln(M/e)·(N-e)), N-1)). The table has N rows.

    `kind = clip`: bucket = clamp(rel, -M, M) + M with 2M+1 rows; when not
    `bidirectional`, bucket = clamp(-rel, 0, M) with M+1 rows.

    Example:

    ```mlir
    %bias = posenc.rel_bias %table, %qp, %kp kind t5
              {num_buckets = 32 : i64, max_distance = 128 : i64}
            : tensor<32x12xf32>, tensor<64xi32>, tensor<64xi32>
              -> tensor<12x64x64xf32>
    ```
  }];
  let arguments = (ins
    Posenc_FloatTensor:$table,
    Posenc_PosTensor:$q_pos,
    Posenc_PosTensor:$k_pos,
    Posenc_RelBiasKindAttr:$kind,
    OptionalAttr<I64Attr>:$num_buckets,
    I64Attr:$max_distance,
    DefaultValuedAttr<BoolAttr, "true">:$bidirectional
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $table `,` $q_pos `,` $k_pos `kind` `` $kind attr-dict `:` type($table) `,`
    type($q_pos) `,` type($k_pos) `->` type($result)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The number of table rows the attributes call for.
    int64_t getExpectedTableRows();
    /// kind t5: the bucket of every distance n in [0, max_distance] on one
    /// side (every n >= max_distance shares the last entry's bucket).
    SmallVector<int64_t> getT5DistanceBuckets();
    /// The table row of relative position rel = k - q.
    int64_t getBucket(int64_t rel);
  }];
}

//===----------------------------------------------------------------------===//
// RelKeyBiasOp
//===----------------------------------------------------------------------===//

def Posenc_RelKeyBiasOp : Posenc_Op<"rel_key_bias", [Pure]> {
  let summary = "Shaw / BERT relative-key attention term";
  let description = [{
    bias[b, h, i, j] = q[b, i, h, :] · emb[clamp(k_pos_j - q_pos_i, -M, M) + M, :]
    with `q: [B, Sq, H, D]`, `emb: [2M+1, D]` (one table for every head) or
    `[2M+1, H, D]` (a table per head: emb[r, h, :]), M = `max_distance`, and
    positions as in `posenc.alibi_bias`. The result is `[B, H, Sq, Sk]`.
    BERT's `relative_key` indexes its table by q - k: pass it reversed.
    Transformer-XL's position terms (Dai et al. 2019, (b) + (d)) are
    (q + v)·(W_R·R_{i-j}): q + v with a per-head table of W_R·R by distance.

    Example:

    ```mlir
    %bias = posenc.rel_key_bias %q, %emb, %qp, %kp {max_distance = 16 : i64}
            : tensor<2x64x12x64xf32>, tensor<33x64xf32>, tensor<64xi32>,
              tensor<64xi32> -> tensor<2x12x64x64xf32>
    ```

    BERT's `relative_key_query` (Hugging Face `BertSelfAttention`) adds
    q_i·E[i - j + M] + k_j·E[i - j + M], E = `distance_embedding` with
    2M + 1 rows (M = max_position_embeddings - 1). The first term is this
    op on q with E reversed along its rows (E_rev[r] = E[2M - r]); the
    second is this op with the roles of queries and keys swapped (k as
    `q`, key positions first), [B, H, Sk, Sq], transposed:

    ```mlir
    %tq = posenc.rel_key_bias %q, %emb_rev, %qp, %kp {max_distance = 511 : i64}
          : tensor<1x64x12x64xf32>, tensor<1023x64xf32>, tensor<64xi32>,
            tensor<64xi32> -> tensor<1x12x64x64xf32>
    %tk = posenc.rel_key_bias %k, %emb, %kp, %qp {max_distance = 511 : i64}
          : tensor<1x64x12x64xf32>, tensor<1023x64xf32>, tensor<64xi32>,
            tensor<64xi32> -> tensor<1x12x64x64xf32>
    %e = tensor.empty() : tensor<1x12x64x64xf32>
    %tkt = linalg.transpose ins(%tk : tensor<1x12x64x64xf32>)
           outs(%e : tensor<1x12x64x64xf32>) permutation = [0, 1, 3, 2]
    %bias = linalg.add ins(%tq, %tkt : tensor<1x12x64x64xf32>, tensor<1x12x64x64xf32>)
            outs(%e : tensor<1x12x64x64xf32>) -> tensor<1x12x64x64xf32>
    ```

    (`test_bias.py::test_bert_relative_key_query` checks this against
    BERT's formula.)
  }];
  let arguments = (ins
    Posenc_FloatTensor:$q,
    Posenc_FloatTensor:$emb,
    Posenc_PosTensor:$q_pos,
    Posenc_PosTensor:$k_pos,
    I64Attr:$max_distance
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $q `,` $emb `,` $q_pos `,` $k_pos attr-dict `:` type($q) `,` type($emb)
    `,` type($q_pos) `,` type($k_pos) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// AttentionOp
//===----------------------------------------------------------------------===//

// The score step shared by attention and online_attention (defined in
// AttentionSemantics.cpp for both).
defvar AttentionScoreMethods = [{
    /// `scale` when given, else 1/sqrt(Dk); std::nullopt when Dk is
    /// dynamic and no scale is given.
    std::optional<double> getScaleOrDefault();
    /// The score_mod block, or null when the region is empty.
    Block *getScoreModBlock();
    /// Clones the score_mod body at `builder`'s insertion point with the
    /// block arguments bound to `score` and `indices` (b, h, i, j); returns
    /// the modified score (`score` itself when there is no score_mod).
    Value inlineScoreMod(OpBuilder &builder, Value score, ValueRange indices);
    /// The float type the op computes in: f64 when q is f64, else f32.
    FloatType getComputeType();
    /// The score step at global `indices` (b, h, i, j): `scaledDot` =
    /// scale·(q_i·k_j) in the compute type, plus `bias` (compute type at
    /// those indices, or null), then score_mod, then the causal mask with `causalOffset` =
    /// Sk - Sq (null when not causal). -inf marks a masked key
    /// (AttentionSemantics.h).
    Value buildScore(OpBuilder &builder, Location loc, Value scaledDot,
                     Value bias, ValueRange indices, Value causalOffset);
    /// The causal diagonal as an index value: `diagonal` when given, else
    /// Sk - Sq, built at `builder`'s insertion point.
    Value buildDiagonal(OpBuilder &builder, Location loc);
    /// `indices` (b, h, i, j) of this op shifted by `offsets` to the
    /// indices score_mod sees.
    SmallVector<Value> buildGlobalIndices(OpBuilder &builder, Location loc,
                                          ValueRange indices);
  }];

def Posenc_AttentionOp : Posenc_Op<"attention", [
    RecursiveMemoryEffects, RecursivelySpeculatable, AttrSizedOperandSegments,
    DeclareOpInterfaceMethods<MemoryEffectsOpInterface>,
    DestinationStyleOpInterface, InferTypeOpAdaptor]> {
  let summary = "Scaled dot-product attention with a score modifier";
  let description = [{
    `q: [B, Sq, Hq, Dk]`, `k: [B, Sk, Hkv, Dk]`, `v: [B, Sk, Hkv, Dv]`,
    `outs(%init)`: `[B, Sq, Hq, Dv]`, of q's element type (f32, f16, bf16 or
    f64; k and v share it). Hq must be a multiple of Hkv; query head h
    reads kv head h / (Hq / Hkv) (GQA, MQA).

    The compute type is f32 (16-bit operands are extended as they are
    read), or f64 throughout when q is f64 (for checking numerics against
    float64 reference code). Scores, the softmax state, `sinks` and
    `score_mod`'s score are of the compute type; `bias` may be of any of
    the four element types and is converted to it.

    The op is destination-style, like `linalg.softmax`. Tensor form: all
    operands are tensors and the result, of init's type, holds the output;
    init's values are not read (a `tensor.empty` is the usual init).
    Buffer form: all operands are memrefs, there is no result and the
    output is written into init, which must not alias q, k, v or bias.
    One-shot bufferization turns the tensor form into the buffer form; the
    lowerings take either.

    s_ij = scale·(q_i · k_j) + bias_ij, with `scale` defaulting to
    1/sqrt(Dk) and the optional `bias` broadcast (numpy rules) to
    `[B, Hq, Sq, Sk]`. With `softcap(c)` (logit soft-capping, c > 0:
    Gemma 2's `attn_logit_softcapping`, Grok-1) the scaled product is
    capped before the bias: s_ij = c·tanh(scale·(q_i · k_j) / c) + bias_ij
    (Gemma 2 applies it after its `query_pre_attn_scalar` scaling and before
    the mask, as here; an infinite product becomes ±c). The optional `score_mod` region then maps each score:
    its block takes (score: C, b, h, i, j: index) and yields the new
    score of the compute type C; it may use values defined above. With `causal`, key j is masked
    for query i when j > i + Sk - Sq (bottom-right aligned, as in
    FlashAttention); `diagonal(%c)` replaces Sk - Sq by the index value c.
    With `causal window(W)` (sliding-window attention, W >= 1 keys:
    Mistral's `sliding_window`, Gemma 2/3, gpt-oss) key j is also masked
    when j <= i + Sk - Sq - W: query i sees the W keys i + Sk - Sq - W < j
    <= i + Sk - Sq, itself included (Mistral's and FlashAttention's
    `window_size = (W - 1, 0)` convention; Hugging Face's Mistral mask keeps
    the same W keys). Tiles of queries read only the keys of their band,
    so compute and traffic grow with Sq·W, not Sq·Sk. With `causal
    chunk(C)` (chunked attention, Llama 4's local layers: `attention_chunk_size`)
    the keys are cut into chunks of C and a query sees only the keys of its
    own chunk up to itself: key j is masked when j < floor((i + Sk - Sq) /
    C)·C; tiles skip the other chunks likewise. Both may be given (the
    query then sees the intersection).
    out_i = sum_j softmax(s_i)_j·v_j.

    `sinks(%s : [Hq] C)` (attention sinks, gpt-oss: a learned logit per
    query head) join every row's softmax denominator and contribute no
    value: out_i = sum_j exp(s_ij - m)·v_j / (exp(sink_h - m) +
    sum_j exp(s_ij - m)), m = max(sink_h, max_j s_ij) (Hugging Face's
    gpt-oss eager attention). The online form starts its state from
    (acc, max, sum) = (0, sink_h, 1) instead of (0, -inf, 0). A row that
    sees no key is 0; a -inf sink is no sink.

    The mask rule: a key whose final score is -inf (causal, a -inf bias
    whatever q·k is, a score_mod that yields -inf) is masked and never
    influences its row, even when its k or v holds NaN or Inf; an unmasked
    NaN or Inf reaches exactly the rows that see it; a row that sees no
    key is 0. The result does not depend on tile sizes or the target.

    `offsets(%b0, %h0, %i0)` (index values) say that this op computes the
    tile of a larger attention whose first (batch, query head, query) is
    (b0, h0, i0): score_mod sees the larger op's indices (b0 + b, h0 + h,
    i0 + i, j), while q, k, v, bias and the result are this tile's.
    Tiling through `TilingInterface` (iteration domain: batch, query
    heads, queries, keys, key head dim, value head dim; the first three
    and the value head dim parallel) produces such tiles; the head tile
    must divide or be a multiple of the GQA group Hq / Hkv.
    `AggregatedOpInterface::decomposeOperation` gives the whole-tensor
    form on linalg.

    Example:

    ```mlir
    %init = tensor.empty() : tensor<1x128x32x64xf32>
    %o = posenc.attention %q, %k, %v causal outs(%init)
           : tensor<1x128x32x64xf32>, tensor<1x128x8x64xf32>,
             tensor<1x128x8x64xf32>, tensor<1x128x32x64xf32>
    %o2 = posenc.attention %q2, %k2, %v2 outs(%init2) : tensor<1x8x4x16xf32>,
            tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>, tensor<1x8x4x16xf32>
          score_mod {
          ^bb0(%s: f32, %b: index, %h: index, %i: index, %j: index):
            posenc.yield %s : f32
          }
    // Buffer form: writes %out.
    posenc.attention %qb, %kb, %vb causal outs(%out) : memref<1x64x8x64xf32>,
        memref<1x64x8x64xf32>, memref<1x64x8x64xf32>, memref<1x64x8x64xf32>
    ```
  }];
  let arguments = (ins
    Posenc_FloatShaped:$q,
    Posenc_FloatShaped:$k,
    Posenc_FloatShaped:$v,
    Optional<Posenc_FloatShaped>:$bias,
    Optional<Posenc_FloatShaped>:$sinks,
    Optional<Index>:$diagonal,
    Variadic<Index>:$offsets,
    Posenc_FloatShaped:$init,
    OptionalAttr<F64Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<I64Attr>:$window,
    OptionalAttr<I64Attr>:$chunk,
    OptionalAttr<F64Attr>:$softcap
  );
  let results = (outs Optional<Posenc_FloatTensor>:$result);
  let regions = (region MaxSizedRegion<1>:$score_mod);
  let assemblyFormat = [{
    $q `,` $k `,` $v (`bias` `(` $bias^ `:` type($bias) `)`)?
    (`sinks` `(` $sinks^ `:` type($sinks) `)`)?
    (`softcap` `(` $softcap^ `)`)? (`causal` $causal^)?
    (`window` `(` $window^ `)`)? (`chunk` `(` $chunk^ `)`)?
    (`diagonal` `(` $diagonal^ `)`)?
    (`offsets` `(` $offsets^ `)`)? `outs` `(` $init `)` attr-dict `:`
    type($q) `,` type($k) `,` type($v) `,` type($init)
    (`score_mod` $score_mod^)?
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = AttentionScoreMethods # [{
    MutableOperandRange getDpsInitsMutable() { return getInitMutable(); }
    /// True for the buffer form (memref operands, no result).
    bool hasBufferSemantics() { return isa<MemRefType>(getInit().getType()); }
  }];
}

//===----------------------------------------------------------------------===//
// OnlineAttentionOp
//===----------------------------------------------------------------------===//

// The running state of online_attention: the compute type (f32, or f64
// for f64 operands).
def Posenc_StateTensor : RankedTensorOf<[F32, F64]>;

def Posenc_OnlineAttentionOp : Posenc_Op<"online_attention", [
    RecursiveMemoryEffects, RecursivelySpeculatable, AttrSizedOperandSegments,
    DestinationStyleOpInterface, InferTypeOpAdaptor]> {
  let summary = "One online-softmax step of attention over a block of keys";
  let description = [{
    The flash-attention recurrence as an op: `q`, `k`, `v`, `bias`,
    `scale`, `softcap`, `causal`, `window`, `chunk`, `diagonal` and
    `score_mod` as in `posenc.attention`
    (scores s_ij from the same score step and mask rule), and the running
    state of every (b, i, h) row in `outs`: `acc: [B, Sq, Hq, Dv]`,
    `max: [B, Sq, Hq]`, `sum: [B, Sq, Hq]`, all of the compute type (f32,
    or f64 when q is f64). With
    shift(m) = m, or 0 while m = -inf:

        m'   = max(m, max_j s_ij)            (NaN scores skipped)
        α    = exp(m - shift(m'))
        p_ij = exp(s_ij - shift(m')), -0.0 for a masked key
        sum' = α·sum + Σ_j p_ij
        acc' = α·acc + Σ_j p_ij·v_j          (masked keys skipped)

    Starting from (0, -inf, 0), one op over all keys followed by
    acc / sum (0 where sum = 0) is `posenc.attention`; so is any split of
    the keys into consecutive ops, each taking the previous state (the
    FlashAttention loop, Dao et al. 2022, Algorithm 1). `offsets(%b0, %h0,
    %i0, %j0)` shift the indices score_mod sees, as for attention, with
    the first key j0 of the block; with `chunk(C)`, j0 also places the
    chunk boundaries (key j of the block is key j0 + j of the whole op).
    Tiling through `TilingInterface`
    (batch, query heads, queries parallel; keys a reduction that
    accumulates into `outs`) produces exactly such blocks; the key head dim
    and the value head dim are not tiled.

    Example:

    ```mlir
    %acc2, %max2, %sum2 = posenc.online_attention %q, %k, %v causal
        outs(%acc, %max, %sum) : tensor<1x64x8x64xf32>, tensor<1x32x8x64xf32>,
        tensor<1x32x8x64xf32>, tensor<1x64x8x64xf32>, tensor<1x64x8xf32>,
        tensor<1x64x8xf32>
    ```
  }];
  let arguments = (ins
    Posenc_FloatTensor:$q,
    Posenc_FloatTensor:$k,
    Posenc_FloatTensor:$v,
    Optional<Posenc_FloatTensor>:$bias,
    Optional<Index>:$diagonal,
    Variadic<Index>:$offsets,
    Posenc_StateTensor:$acc,
    Posenc_StateTensor:$max,
    Posenc_StateTensor:$sum,
    OptionalAttr<F64Attr>:$scale,
    UnitAttr:$causal,
    OptionalAttr<I64Attr>:$window,
    OptionalAttr<I64Attr>:$chunk,
    OptionalAttr<F64Attr>:$softcap
  );
  let results = (outs Posenc_StateTensor:$result_acc,
                      Posenc_StateTensor:$result_max,
                      Posenc_StateTensor:$result_sum);
  let regions = (region MaxSizedRegion<1>:$score_mod);
  let assemblyFormat = [{
    $q `,` $k `,` $v (`bias` `(` $bias^ `:` type($bias) `)`)?
    (`softcap` `(` $softcap^ `)`)? (`causal` $causal^)?
    (`window` `(` $window^ `)`)? (`chunk` `(` $chunk^ `)`)?
    (`diagonal` `(` $diagonal^ `)`)?
    (`offsets` `(` $offsets^ `)`)? `outs` `(` $acc `,` $max `,` $sum `)`
    attr-dict `:` type($q) `,` type($k) `,` type($v) `,` type($acc) `,`
    type($max) `,` type($sum) (`score_mod` $score_mod^)?
  }];
  let hasVerifier = 1;
  let hasRegionVerifier = 1;
  let hasCanonicalizer = 1;
  let extraClassDeclaration = AttentionScoreMethods # [{
    MutableOperandRange getDpsInitsMutable() {
      return MutableOperandRange(getOperation(),
                                 getODSOperandIndexAndLength(6).first, 3);
    }
  }];
}

def Posenc_YieldOp : Posenc_Op<"yield", [
    Pure, ReturnLike, Terminator, ParentOneOf<["AttentionOp", "OnlineAttentionOp"]>]> {
  let summary = "Yields the modified score of a score_mod region";
  let arguments = (ins AnyType:$value);
  let assemblyFormat = "$value attr-dict `:` type($value)";
}

//===----------------------------------------------------------------------===//
// MlaAbsorbOp
//===----------------------------------------------------------------------===//

def Posenc_MlaAbsorbOp : Posenc_Op<"mla_absorb", [Pure]> {
  let summary = "DeepSeek multi-head latent attention";
  let description = [{
    Attention over a compressed latent KV cache with decoupled RoPE.
    Operands: `q_nope: [B, Sq, H, Dn]`, `q_pe: [B, Sq, H, Dr]` (already
    rotated), `c_kv: [B, Sk, C]` (latent cache), `k_pe: [B, Sk, Dr]`
    (rotated, shared by all heads), `w_uk: [H, Dn, C]`, `w_uv: [H, Dv, C]`;
    result `[B, Sq, H, Dv]`. Elements f32, f16, bf16 or f64 (one type
    for all); the op computes in f32, or in f64 throughout for f64.

    Meaning: k_nope[b, j, h, :] = w_uk[h]·c_kv[b, j],
    v[b, j, h, :] = w_uv[h]·c_kv[b, j];
    s = scale·(q_nope·k_nope + q_pe·k_pe) (scale defaults to
    1/sqrt(Dn + Dr)); out = softmax(s)·v, with `causal` masking as in
    `posenc.attention`.

    The absorbed form computes the same as multi-query attention over the
    latent: q_lat = q_nope·w_uk per head (C wide), keys [c_kv | k_pe],
    values c_kv, then out = o_lat·w_uvᵀ; the cache holds C + Dr elements
    per token instead of H·(Dn + Dr + Dv).

    Example:

    ```mlir
    %o = posenc.mla_absorb %qn, %qr, %ckv, %kr, %wuk, %wuv causal
           : tensor<1x16x16x128xf32>, tensor<1x16x16x64xf32>,
             tensor<1x16x512xf32>, tensor<1x16x64xf32>,
             tensor<16x128x512xf32>, tensor<16x128x512xf32>
             -> tensor<1x16x16x128xf32>
    ```
  }];
  let arguments = (ins
    Posenc_FloatTensor:$q_nope,
    Posenc_FloatTensor:$q_pe,
    Posenc_FloatTensor:$c_kv,
    Posenc_FloatTensor:$k_pe,
    Posenc_FloatTensor:$w_uk,
    Posenc_FloatTensor:$w_uv,
    OptionalAttr<F64Attr>:$scale,
    UnitAttr:$causal
  );
  let results = (outs Posenc_FloatTensor:$result);
  let assemblyFormat = [{
    $q_nope `,` $q_pe `,` $c_kv `,` $k_pe `,` $w_uk `,` $w_uv
    (`causal` $causal^)? attr-dict `:` type($q_nope) `,` type($q_pe) `,`
    type($c_kv) `,` type($k_pe) `,` type($w_uk) `,` type($w_uv) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

#endif // POSENC_DIALECT_POSENC_IR_POSENCOPS_TD
