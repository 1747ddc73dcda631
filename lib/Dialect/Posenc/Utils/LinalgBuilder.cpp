//===- LinalgBuilder.cpp - terse construction of linalg on tensors --------===//

#include "posenc/Dialect/Posenc/Utils/LinalgBuilder.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::posenc;

void mlir::posenc::yieldValues(OpBuilder &b, Location loc, ValueRange values) {
  linalg::YieldOp::create(b, loc, values);
}

void mlir::posenc::yieldValues(OpBuilder &b, Location loc, Value value) {
  linalg::YieldOp::create(b, loc, ValueRange{value});
}

Value LinalgBuilder::cIndex(int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}
Value LinalgBuilder::cI64(int64_t v) {
  return arith::ConstantIntOp::create(b, loc, b.getI64Type(), v);
}
Value LinalgBuilder::cF64(double v) {
  return arith::ConstantFloatOp::create(b, loc, b.getF64Type(), APFloat(v));
}
Value LinalgBuilder::cF32(float v) {
  return arith::ConstantFloatOp::create(b, loc, b.getF32Type(), APFloat(v));
}

Value LinalgBuilder::constTensor(ArrayRef<double> values) {
  auto type = RankedTensorType::get({int64_t(values.size())}, b.getF64Type());
  return arith::ConstantOp::create(b, loc,
                                   DenseElementsAttr::get(type, values));
}
Value LinalgBuilder::constTensor(ArrayRef<int64_t> values) {
  auto type = RankedTensorType::get({int64_t(values.size())}, b.getI64Type());
  return arith::ConstantOp::create(b, loc,
                                   DenseElementsAttr::get(type, values));
}

OpFoldResult LinalgBuilder::dim(Value t, int64_t i) {
  return tensor::getMixedSize(b, loc, t, i);
}

SmallVector<OpFoldResult> LinalgBuilder::sizes(Value t) {
  return tensor::getMixedSizes(b, loc, t);
}

Value LinalgBuilder::empty(ArrayRef<OpFoldResult> sizes, Type elemTy) {
  return tensor::EmptyOp::create(b, loc, sizes, elemTy);
}

Value LinalgBuilder::castTo(Value t, Type type) {
  if (t.getType() == type)
    return t;
  return tensor::CastOp::create(b, loc, type, t);
}

Value LinalgBuilder::filled(ArrayRef<OpFoldResult> sizes, Value value) {
  Value e = empty(sizes, value.getType());
  return linalg::FillOp::create(b, loc, value, e).getResult(0);
}

Value LinalgBuilder::generic(Type resultType, ValueRange inputs, Value init,
                             ArrayRef<AffineMap> maps,
                             ArrayRef<utils::IteratorType> iterators,
                             GenericBodyFn body) {
  return linalg::GenericOp::create(b, loc, TypeRange{resultType}, inputs,
                                   ValueRange{castTo(init, resultType)}, maps,
                                   iterators, body)
      .getResult(0);
}

Value LinalgBuilder::contract(Value lhs, Value rhs, AffineMap lhsMap,
                              AffineMap rhsMap, AffineMap outMap,
                              ArrayRef<OpFoldResult> outSizes) {
  return contractInto(lhs, rhs, lhsMap, rhsMap, outMap,
                      filled(outSizes, cCompute(0.0)));
}

Value LinalgBuilder::contractInto(Value lhs, Value rhs, AffineMap lhsMap,
                                  AffineMap rhsMap, AffineMap outMap,
                                  Value init) {
  unsigned numDims = outMap.getNumDims();
  SmallVector<utils::IteratorType> its(numDims, utils::IteratorType::reduction);
  for (AffineExpr e : outMap.getResults())
    its[cast<AffineDimExpr>(e).getPosition()] = utils::IteratorType::parallel;
  return generic(init.getType(), {lhs, rhs}, init, {lhsMap, rhsMap, outMap},
                 its, [&](OpBuilder &nb, Location nl, ValueRange args) {
                   LinalgBuilder n = nested(nb, nl);
                   // Reassociation lets the backend vectorize the sum.
                   auto fm = arith::FastMathFlags::reassoc |
                             arith::FastMathFlags::contract;
                   Value p = arith::MulFOp::create(nb, nl, n.toCompute(args[0]),
                                                   n.toCompute(args[1]), fm);
                   yieldValues(nb, nl,
                               arith::AddFOp::create(nb, nl, args[2], p, fm));
                 });
}

Value LinalgBuilder::concatLastDim(Value a, Value b2) {
  auto aTy = cast<RankedTensorType>(a.getType());
  auto bTy = cast<RankedTensorType>(b2.getType());
  int64_t rank = aTy.getRank();
  int64_t da = aTy.getDimSize(rank - 1), db = bTy.getDimSize(rank - 1);
  assert(!ShapedType::isDynamic(da) && !ShapedType::isDynamic(db) &&
         "concatenated dims must be static");
  SmallVector<OpFoldResult> outSizes = sizes(a);
  outSizes.back() = b.getIndexAttr(da + db);
  Value init = empty(outSizes, computeType());
  return generic(
      init.getType(), {}, init, {b.getMultiDimIdentityMap(rank)},
      SmallVector<utils::IteratorType>(rank, utils::IteratorType::parallel),
      [&](OpBuilder &nb, Location nl, ValueRange) {
        LinalgBuilder n = nested(nb, nl);
        SmallVector<Value> idx;
        for (int64_t d = 0; d < rank; ++d)
          idx.push_back(n.index(d));
        Value last = idx.back();
        Value inA = n.cmpI(arith::CmpIPredicate::ult, last, n.cIndex(da));
        SmallVector<Value> ia(idx), ib(idx);
        ia.back() = n.select(inA, last, n.cIndex(0));
        ib.back() = n.select(inA, n.cIndex(0),
                             arith::SubIOp::create(nb, nl, last, n.cIndex(da)));
        Value va = n.toCompute(n.extract(a, ia));
        Value vb = n.toCompute(n.extract(b2, ib));
        yieldValues(nb, nl, n.select(inA, va, vb));
      });
}

Value LinalgBuilder::toI64(Value v) {
  if (v.getType().isInteger(64))
    return v;
  return arith::ExtSIOp::create(b, loc, b.getI64Type(), v);
}

Value LinalgBuilder::i64ToF64(Value v) {
  return arith::SIToFPOp::create(b, loc, b.getF64Type(), v);
}

Type mlir::posenc::floatComputeType(Operation *op) {
  auto isF64 = [](Type t) {
    auto shaped = dyn_cast<ShapedType>(t);
    return shaped && shaped.getElementType().isF64();
  };
  Builder b(op->getContext());
  if (llvm::any_of(op->getOperandTypes(), isF64) ||
      llvm::any_of(op->getResultTypes(), isF64))
    return b.getF64Type();
  return b.getF32Type();
}

Value LinalgBuilder::cCompute(double v) {
  Type t = computeType();
  return arith::ConstantFloatOp::create(
      b, loc, cast<FloatType>(t),
      t.isF64() ? APFloat(v) : APFloat(static_cast<float>(v)));
}

Value LinalgBuilder::toCompute(Value v) {
  Type t = computeType();
  if (v.getType() == t)
    return v;
  return fromFloat(v, t);
}

Value LinalgBuilder::toF32(Value v) { return fromFloat(v, b.getF32Type()); }

Value LinalgBuilder::fromFloat(Value v, Type elemTy) {
  if (v.getType() == elemTy)
    return v;
  if (v.getType().getIntOrFloatBitWidth() > elemTy.getIntOrFloatBitWidth()) {
    // f64 -> 16-bit goes through f32: the CPU pipeline expands only
    // f32 -> bf16 truncation (no runtime library call).
    if (v.getType().isF64() && !elemTy.isF32())
      v = arith::TruncFOp::create(b, loc, b.getF32Type(), v);
    return arith::TruncFOp::create(b, loc, elemTy, v);
  }
  return arith::ExtFOp::create(b, loc, elemTy, v);
}

Value LinalgBuilder::index(int64_t d) {
  return linalg::IndexOp::create(b, loc, d);
}

Value LinalgBuilder::select(Value c, Value t, Value f) {
  return arith::SelectOp::create(b, loc, c, t, f);
}

Value LinalgBuilder::cmpI(arith::CmpIPredicate p, Value x, Value y) {
  return arith::CmpIOp::create(b, loc, p, x, y);
}

Value LinalgBuilder::extract(Value t, ValueRange idx) {
  return tensor::ExtractOp::create(b, loc, t, idx);
}

Value LinalgBuilder::castTensor(Value t, Type elemTy) {
  auto ty = cast<RankedTensorType>(t.getType());
  if (ty.getElementType() == elemTy)
    return t;
  int64_t rank = ty.getRank();
  AffineMap id = b.getMultiDimIdentityMap(rank);
  SmallVector<utils::IteratorType> its(rank, utils::IteratorType::parallel);
  return generic(ty.clone(elemTy), t, empty(sizes(t), elemTy), {id, id}, its,
                 [&](OpBuilder &nb, Location nl, ValueRange args) {
                   LinalgBuilder n{nb, nl};
                   // 16-bit to 16-bit (f16 <-> bf16) goes through f32.
                   Value x = args[0];
                   if (x.getType().getIntOrFloatBitWidth() == 16)
                     x = n.toF32(x);
                   yieldValues(nb, nl, n.fromFloat(x, elemTy));
                 });
}
