//===- PosencOps.h - posenc operations --------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCOPS_H
#define POSENC_DIALECT_POSENC_IR_POSENCOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/DestinationStyleOpInterface.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "posenc/Dialect/Posenc/IR/PosencAttrs.h"
#include "posenc/Dialect/Posenc/IR/PosencDialect.h"

namespace mlir::posenc {
/// A relation between dimensions that an op's verifier checks where the
/// sizes are static. Lowerings check the dynamic ones at run time, so that a
/// call with disagreeing shapes fails instead of reading out of bounds.
struct DimConstraint {
  struct Ref {
    StringRef name;
    Value value;
    unsigned index;
  };
  enum class Kind {
    /// Every ref has the same size, and `constant` when set.
    equal,
    /// refs[0] is a positive multiple of refs[1].
    multiple,
    /// refs[0] is at least `constant`.
    atLeast,
  };
  Kind kind = Kind::equal;
  /// What the dims are, for messages: "sequence length".
  std::string what;
  SmallVector<Ref> refs;
  std::optional<int64_t> constant;
};

/// The dimension relations of a posenc op (any other op has none).
SmallVector<DimConstraint> getDimConstraints(Operation *op);

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
