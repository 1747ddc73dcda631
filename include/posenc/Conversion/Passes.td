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
    - `posenc.attention`: scores are materialized (QKᵀ, bias, score_mod,
      causal mask, a softmax that gives 0 for fully masked rows, PV).
    - `posenc.mla_absorb`: its naive form (decompressed keys and values)
      as a `posenc.attention`, lowered in turn.
  }];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

#endif // POSENC_CONVERSION_PASSES_TD
