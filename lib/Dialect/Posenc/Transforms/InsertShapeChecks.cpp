//===- InsertShapeChecks.cpp - posenc-insert-shape-checks -----------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/ControlFlow/IR/ControlFlowOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCINSERTSHAPECHECKSPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;
using namespace mlir::posenc;

namespace {
using Ref = DimConstraint::Ref;

int64_t staticSize(const Ref &r) {
  return cast<ShapedType>(r.value.getType()).getDimSize(r.index);
}

/// "file:line:col: " of the op, so the run-time message points at the IR.
std::string locationPrefix(Operation *op) {
  if (auto loc = op->getLoc()->findInstanceOf<FileLineColLoc>())
    return (loc.getFilename().str() + ":" + std::to_string(loc.getLine()) +
            ":" + std::to_string(loc.getColumn()) + ": ");
  return "";
}

struct Checker {
  OpBuilder &b;
  Operation *op;

  /// The size of `r` as an index value; null for a result (its dims are
  /// made from the operands by the lowering, so they cannot disagree).
  Value size(const Ref &r) {
    int64_t s = staticSize(r);
    if (!ShapedType::isDynamic(s))
      return arith::ConstantIndexOp::create(b, op->getLoc(), s);
    if (llvm::is_contained(op->getResults(), r.value))
      return nullptr;
    if (isa<MemRefType>(r.value.getType()))
      return memref::DimOp::create(b, op->getLoc(), r.value, r.index);
    return tensor::DimOp::create(b, op->getLoc(), r.value, r.index);
  }

  void check(Value cond, const Twine &relation) {
    std::string msg = locationPrefix(op) + "'" +
                      op->getName().getStringRef().str() + "' op " +
                      relation.str() + " (checked at run time)";
    cf::AssertOp::create(b, op->getLoc(), cond, msg);
  }

  Value cmp(arith::CmpIPredicate p, Value x, Value y) {
    return arith::CmpIOp::create(b, op->getLoc(), p, x, y);
  }

  void emit(const DimConstraint &c) {
    auto isDynamic = [](const Ref &r) {
      return ShapedType::isDynamic(staticSize(r));
    };
    if (llvm::none_of(c.refs, isDynamic))
      return;
    switch (c.kind) {
    case DimConstraint::Kind::equal:
      return emitEqual(c, isDynamic);
    case DimConstraint::Kind::multiple: {
      Value x = size(c.refs[0]), y = size(c.refs[1]);
      if (!x || !y)
        return;
      Location loc = op->getLoc();
      Value zero = arith::ConstantIndexOp::create(b, loc, 0);
      Value positive = cmp(arith::CmpIPredicate::sgt, y, zero);
      // Divide by max(y, 1) so the check itself never divides by zero.
      Value one = arith::ConstantIndexOp::create(b, loc, 1);
      Value safe = arith::MaxSIOp::create(b, loc, y, one);
      Value rem = arith::RemSIOp::create(b, loc, x, safe);
      Value divides = cmp(arith::CmpIPredicate::eq, rem, zero);
      check(arith::AndIOp::create(b, loc, positive, divides),
            c.what + " of " + c.refs[0].name + " must be a multiple of " +
                c.what + " of " + c.refs[1].name);
      return;
    }
    case DimConstraint::Kind::atLeast: {
      Value x = size(c.refs[0]);
      if (!x)
        return;
      Value bound =
          arith::ConstantIndexOp::create(b, op->getLoc(), *c.constant);
      check(cmp(arith::CmpIPredicate::sge, x, bound),
            c.what + " of " + c.refs[0].name + " must be at least " +
                Twine(*c.constant));
      return;
    }
    }
  }

  template <typename Pred>
  void emitEqual(const DimConstraint &c, Pred isDynamic) {
    // Dynamic operand dims (results are made from the operands).
    SmallVector<const Ref *> dynamic;
    for (const Ref &r : c.refs)
      if (isDynamic(r) && !llvm::is_contained(op->getResults(), r.value))
        dynamic.push_back(&r);
    // Compare each with one reference: the constant, else the first static
    // dim, else the first dynamic one.
    const Ref *firstStatic = nullptr;
    for (const Ref &r : c.refs)
      if (!isDynamic(r) && !firstStatic)
        firstStatic = &r;
    if (dynamic.empty() || (!c.constant && !firstStatic && dynamic.size() < 2))
      return;
    Value ref;
    std::string refName;
    if (c.constant) {
      ref = arith::ConstantIndexOp::create(b, op->getLoc(), *c.constant);
      refName = std::to_string(*c.constant);
    } else if (firstStatic) {
      ref = size(*firstStatic);
      refName = c.what + " of " + firstStatic->name.str() + " (" +
                std::to_string(staticSize(*firstStatic)) + ")";
    } else {
      ref = size(*dynamic.front());
      refName = c.what + " of " + dynamic.front()->name.str();
      dynamic.erase(dynamic.begin());
    }
    for (const Ref *r : dynamic)
      check(cmp(arith::CmpIPredicate::eq, size(*r), ref),
            c.what + " of " + r->name + " must equal " + refName);
  }
};

struct PosencInsertShapeChecksPass
    : posenc::impl::PosencInsertShapeChecksPassBase<
          PosencInsertShapeChecksPass> {
  void runOnOperation() override {
    SmallVector<Operation *> ops;
    getOperation()->walk([&](Operation *op) {
      if (isa<PosencDialect>(op->getDialect()))
        ops.push_back(op);
    });
    for (Operation *op : ops) {
      OpBuilder b(op);
      Checker checker{b, op};
      for (const DimConstraint &c : getDimConstraints(op))
        checker.emit(c);
    }
  }
};
} // namespace
