//===- AttentionSemantics.h - scalar math of attention ----------*- C++ -*-===//
//
// The score step, the mask rule and the online-softmax step of
// posenc.attention as scalar arithmetic in the compute type (f32, or f64
// for f64 operands; each function works in the type of its float operands).
// This is the one statement of that math: the whole-tensor form, the CPU tiles
// and the GPU kernel (and its emulation) all build their bodies from these
// functions, so they agree on every input, NaN and Inf included.
//
// The mask rule: a key whose final score is -inf is masked. Its weight is
// -0.0 (exp never returns -0.0, so the sign marks it), and a masked weight
// contributes nothing to P·V, not even 0·v: a NaN or Inf stored in a
// masked key's v never reaches the row.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_IR_ATTENTIONSEMANTICS_H
#define POSENC_DIALECT_POSENC_IR_ATTENTIONSEMANTICS_H

#include "mlir/IR/Builders.h"

namespace mlir::posenc::attention {

/// The type attention computes in for q's element type: f64 for f64, else
/// f32 (16-bit elements are extended as they are read).
FloatType computeTypeFor(Type elementType);

/// s + bias, where a -inf bias masks the key whatever s is (s may be NaN
/// when a masked key's k holds NaN or Inf).
Value addBias(OpBuilder &b, Location loc, Value score, Value bias);

/// -inf where `masked` (i1), else `score`.
Value applyMask(OpBuilder &b, Location loc, Value masked, Value score);

/// The causal rule, bottom-right aligned: key j is masked for query i when
/// j > i + offset, with offset = Sk - Sq (global indices). i1.
Value isCausallyMasked(OpBuilder &b, Location loc, Value i, Value j,
                       Value offset);

/// The sliding-window rule: key j is outside query i's window of `window`
/// keys when j <= i + offset - window (global indices, offset as above). i1.
Value isOutsideWindow(OpBuilder &b, Location loc, Value i, Value j,
                      Value offset, int64_t window);

/// The chunked-attention rule: key j is outside query i's chunk of `chunk`
/// keys when j + s < floor((i + offset + s) / chunk)·chunk, with s the
/// position of key 0 in the larger op the keys are a block of (chunk
/// boundaries are absolute positions; s matters modulo `chunk`). i1.
Value isOutsideChunk(OpBuilder &b, Location loc, Value i, Value j, Value offset,
                     Value keyShift, int64_t chunk);

/// The softmax sum a row's state starts from when its max starts at an
/// attention sink's logit: exp(sink - sink) = 1, or 0 for a -inf sink (no
/// sink).
Value sinkSum(OpBuilder &b, Location loc, Value sink);

/// Running row max: NaN scores are skipped (maxnumf, which vectorizes);
/// their weights are NaN anyway, and so is their row.
Value combineMax(OpBuilder &b, Location loc, Value x, Value y);

/// The amount a row's scores are shifted by before exp: its max, or 0 while
/// the max is -inf (no key seen yet), so that exp gives 0 and not NaN.
Value softmaxShift(OpBuilder &b, Location loc, Value rowMax);

/// exp(oldMax - softmaxShift(newMax)): the factor that rescales a state
/// (acc, sum) kept relative to `oldMax` to one relative to `newMax`; 0 for
/// a state that has seen no key (oldMax = -inf).
Value rescaleFactor(OpBuilder &b, Location loc, Value oldMax, Value newMax);

/// exp(score - shift), or -0.0 when the key is masked (score = -inf).
Value softmaxWeight(OpBuilder &b, Location loc, Value score, Value shift);

/// True for the weight of a masked key (-0.0 exactly).
Value isMaskedWeight(OpBuilder &b, Location loc, Value weight);

/// acc + weight·value, or acc unchanged when the weight is masked.
Value accumulateWeighted(OpBuilder &b, Location loc, Value weight, Value value,
                         Value acc);

/// acc / sum, or 0 when sum = 0: a row that sees no key is 0.
Value normalize(OpBuilder &b, Location loc, Value acc, Value sum);

} // namespace mlir::posenc::attention

#endif // POSENC_DIALECT_POSENC_IR_ATTENTIONSEMANTICS_H
