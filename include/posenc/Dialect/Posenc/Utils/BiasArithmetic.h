//===- BiasArithmetic.h - per-element math of the bias ops ------*- C++ -*-===//
//
// The scalar arithmetic of alibi_bias, rel_bias and rel_key_bias, shared by
// the lowering that materializes a bias tensor and the fusion that computes
// the bias inside attention's score_mod. `prepare` emits the small captured
// constants at the builder's insertion point; `at` emits the math for one
// element wherever the builder stands (a generic body, a score_mod block).
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_UTILS_BIASARITHMETIC_H
#define POSENC_DIALECT_POSENC_UTILS_BIASARITHMETIC_H

#include "posenc/Dialect/Posenc/IR/PosencOps.h"
#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

namespace mlir::posenc {

/// ALiBi: m_h·rel (causal) or −m_h·|rel| (symmetric), in f32.
struct AlibiArithmetic {
  Value slopes; // tensor<H x f32>, f64 when the builder computes in f64
  bool symmetric;

  static AlibiArithmetic prepare(LinalgBuilder &e, AlibiBiasOp op);
  /// `rel` = k − q as i64, `h` an index.
  Value at(LinalgBuilder &e, Value rel, Value h) const;
  /// The same element as a number (what posenc-fold-constants writes):
  /// `slope` of the head, `rel` = k − q, in f32 arithmetic or (`f64`) f64.
  static double value(double slope, int64_t rel, bool symmetric, bool f64);
};

/// T5 / clipped learned bias: table[bucket(rel), h], in f32.
struct RelBiasArithmetic {
  Value table;   // [rows, H]
  Value buckets; // tensor<(M+1) x i64> for t5, null for clip
  int64_t maxDistance, perSide;
  bool t5, bidirectional;

  static RelBiasArithmetic prepare(LinalgBuilder &e, RelBiasOp op, Value table);
  Value at(LinalgBuilder &e, Value rel, Value h) const;

  /// Every distance beyond ±max_distance has the value of ±max_distance, so
  /// the bias is a [H, 2M+1] table (compute type) indexed by the clamped
  /// distance
  /// (`clampedDistanceIndex`). Built once per op (H·(2M+1) evaluations of
  /// `at`); then each element is a clamp and one load from an L1-resident
  /// row instead of the bucket lookup and a strided table load.
  Value distanceTable(LinalgBuilder &e, OpFoldResult heads) const;
  /// Whether that table is small enough to be worth building.
  bool hasDistanceTable() const { return maxDistance <= 4096; }
};

/// clamp(rel, −M, M) + M as an index: the row of a Shaw embedding table.
Value clampedDistanceIndex(LinalgBuilder &e, Value rel, int64_t maxDistance);

/// The map of rel_key_bias's `emb` in the contraction qe[b, i, h, r] =
/// q[b, i, h, :]·emb over dims (b, i, h, r, d): (r, d) for one table,
/// (r, h, d) for a table per head.
AffineMap relKeyEmbMap(MLIRContext *ctx, Value emb);

/// The indices into an attention bias of shape `biasShape` (rank <= 4) of
/// the score at `bhij` = (b, h, i, j): numpy's right-aligned broadcast to
/// [B, Hq, Sq, Sk], a static unit dim read at 0.
SmallVector<Value> biasIndices(LinalgBuilder &e, ArrayRef<int64_t> biasShape,
                               ValueRange bhij);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_UTILS_BIASARITHMETIC_H
