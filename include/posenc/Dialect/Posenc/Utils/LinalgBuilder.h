//===- LinalgBuilder.h - terse construction of linalg on tensors -*- C++
//-*-===//
//
// The lowerings and rewrites of posenc build many small linalg.generic ops
// on tensors; this bundles a builder and a location with the pieces they
// all need (constants, empty/filled tensors, generics, casts, contractions).
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_UTILS_LINALGBUILDER_H
#define POSENC_DIALECT_POSENC_UTILS_LINALGBUILDER_H

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Utils/StructuredOpsUtils.h"
#include "mlir/IR/Builders.h"

namespace mlir::posenc {

/// Body of a linalg.generic: (builder, location, block arguments).
using GenericBodyFn = function_ref<void(OpBuilder &, Location, ValueRange)>;

/// Yields `values` from a linalg.generic body.
void yieldValues(OpBuilder &b, Location loc, ValueRange values);
void yieldValues(OpBuilder &b, Location loc, Value value);

/// The type `op` computes in: f64 when any of its float tensors or
/// buffers is f64, else f32.
Type floatComputeType(Operation *op);

struct LinalgBuilder {
  OpBuilder &b;
  Location loc;
  /// The float type an op computes in: f64 for ops on f64 tensors, else
  /// f32 (null means f32). Nested builders of a body take it over.
  Type compute = {};

  /// `compute`, or f32 when unset.
  Type computeType() { return compute ? compute : b.getF32Type(); }
  /// A constant of the compute type.
  Value cCompute(double v);
  /// Any float value converted to the compute type.
  Value toCompute(Value v);
  /// A builder at `nb`/`nl` (a region body) with this one's compute type.
  LinalgBuilder nested(OpBuilder &nb, Location nl) { return {nb, nl, compute}; }

  Value cIndex(int64_t v);
  Value cI64(int64_t v);
  Value cF64(double v);
  Value cF32(float v);

  /// `arith.constant dense<values> : tensor<N x f64|i64>`.
  Value constTensor(ArrayRef<double> values);
  Value constTensor(ArrayRef<int64_t> values);

  /// Size of dim `i` of tensor `t` (static attribute or tensor.dim).
  OpFoldResult dim(Value t, int64_t i);
  /// All sizes of tensor `t`.
  SmallVector<OpFoldResult> sizes(Value t);

  Value empty(ArrayRef<OpFoldResult> sizes, Type elemTy);
  /// `t` as `type` (same rank and elements, dims more or less static): ops
  /// may declare static dims that lowerings compute from dynamic operands.
  Value castTo(Value t, Type type);
  /// A tensor of `sizes` filled with `value`.
  Value filled(ArrayRef<OpFoldResult> sizes, Value value);

  /// A single-result linalg.generic.
  Value generic(Type resultType, ValueRange inputs, Value init,
                ArrayRef<AffineMap> maps,
                ArrayRef<utils::IteratorType> iterators, GenericBodyFn body);

  /// out = Σ lhs·rhs over the dims of `numDims` that `outMap` omits, in f32
  /// (operands of any float type are extended).
  Value contract(Value lhs, Value rhs, AffineMap lhsMap, AffineMap rhsMap,
                 AffineMap outMap, ArrayRef<OpFoldResult> outSizes);

  /// init + Σ lhs·rhs: like `contract` but accumulating into `init` (f32).
  Value contractInto(Value lhs, Value rhs, AffineMap lhsMap, AffineMap rhsMap,
                     AffineMap outMap, Value init);

  /// Concatenation of two 4-D tensors along their last dim, as one generic
  /// that reads either side (no strided copies); result element type f32.
  Value concatLastDim(Value a, Value b);

  Value toI64(Value v);
  Value i64ToF64(Value v);
  /// Any float to f32 (f64 rounds).
  Value toF32(Value v);
  /// f32 or f64 to `elemTy`.
  Value fromFloat(Value v, Type elemTy);

  Value index(int64_t d);
  Value select(Value c, Value t, Value f);
  Value cmpI(arith::CmpIPredicate p, Value x, Value y);
  Value extract(Value t, ValueRange idx);

  /// Elementwise conversion of a whole tensor to `elemTy`.
  Value castTensor(Value t, Type elemTy);
};

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_UTILS_LINALGBUILDER_H
