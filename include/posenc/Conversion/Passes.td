//===- Passes.td - posenc conversion passes ----------------*- tablegen -*-===//

#ifndef POSENC_CONVERSION_PASSES_TD
#define POSENC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertPosencToLinalgPass : Pass<"convert-posenc-to-linalg"> {
  let summary = "Lower posenc ops to linalg, tensor, arith and math";
  let description = [{
    Rewrites every posenc op into upstream ops on tensors:

    - `posenc.rope`: frequencies are computed in float64 at compile time
      (`dynamic` scaling: at run time from max(pos)+1; `longrope`: both
      tables, selected at run time). Angles are formed and evaluated in
      float64 once per (position, pair) into cos/sin tables, which the
      rotation of every head and batch row reads.
    - `posenc.sinusoidal`, `posenc.alibi_bias`, `posenc.rel_bias`,
      `posenc.rel_key_bias`: one linalg.generic per result (T5 buckets come
      from a compile-time table of the log-spaced buckets).
    - `posenc.attention`: a tiled online-softmax loop nest (flash-style)
      with score_mod inlined, causal key tiles above the diagonal skipped,
      the query heads of a GQA group sharing each K/V tile, and 0 for rows
      that see no key. K and V of each kv head are packed once into f32
      key-tile blocks (Kᵀ as [tiles, Dk, tile-k], V as [tiles, tile-k, Dv]),
      and the (query, head) pairs of a query tile are the rows of 2-D
      tiles, so scale·Q·Kᵀ and P·V are `linalg.matmul` ops (which
      `posenc-vectorize-matmul` blocks for registers after bufferization).
      With `materialize-attention`, scores are built whole
      instead (QKᵀ, bias, score_mod, mask, softmax, PV) as a reference
      form.
    - `posenc.mla_absorb`: its naive form (decompressed keys and values)
      as a `posenc.attention`, lowered in turn.
  }];
  let options = [
    Option<"attentionTileQ", "attention-tile-q", "int64_t", "32",
           "Rows per attention tile: (query, head) pairs, so a tile holds "
           "tile-q / G queries of the G query heads of a kv head (>= 1)">,
    Option<"attentionTileK", "attention-tile-k", "int64_t", "64",
           "Keys per attention tile">,
    Option<"materializeAttention", "materialize-attention", "bool", "false",
           "Build whole score matrices instead of tiling">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

#endif // POSENC_CONVERSION_PASSES_TD
