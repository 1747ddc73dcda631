//===- PosencOps.h - posenc operations --------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCOPS_H
#define POSENC_DIALECT_POSENC_IR_POSENCOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"

namespace mlir::posenc {
namespace detail {
LogicalResult verifyBoundedTensorSizes(Operation *op);
} // namespace detail

/// Rejects static shapes whose size in bytes does not fit in 63 bits.
template <typename ConcreteType>
class BoundedTensorSizes
    : public OpTrait::TraitBase<ConcreteType, BoundedTensorSizes> {
public:
  static LogicalResult verifyTrait(Operation *op) {
    return detail::verifyBoundedTensorSizes(op);
  }
};
} // namespace mlir::posenc

#define GET_OP_CLASSES
#include "posenc/Dialect/Posenc/IR/PosencOps.h.inc"

#endif // POSENC_DIALECT_POSENC_IR_POSENCOPS_H
