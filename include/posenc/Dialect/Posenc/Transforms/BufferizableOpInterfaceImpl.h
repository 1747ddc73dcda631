//===- BufferizableOpInterfaceImpl.h - attention on buffers -----*- C++ -*-===//
//
// posenc.attention has a tensor form and a buffer form (memref operands,
// writes its init). One-shot bufferization turns the first into the second
// through BufferizableOpInterface; the lowerings, which work on tensors,
// turn the second back with convertToTensorForm.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H

#include "posenc/Dialect/Posenc/IR/PosencOps.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/PatternMatch.h"

namespace mlir::posenc {

/// bufferization::BufferizableOpInterface for attention: init is written
/// and not read, the result is init's buffer, q/k/v/bias are read.
void registerBufferizableOpInterfaceExternalModels(DialectRegistry &registry);

/// A copy of `op` (attributes, score_mod) on `operands`, in `op`'s operand
/// order; tensor form when init is a tensor, buffer form otherwise.
AttentionOp cloneWithOperands(OpBuilder &b, AttentionOp op,
                              ValueRange operands);

/// The operands of the tensor form of buffer-form `op`: each distinct
/// memref read through one `bufferization.to_tensor restrict`, init
/// replaced by a `tensor.empty` of its shape.
SmallVector<Value> tensorFormOperands(OpBuilder &b, AttentionOp op);

/// Writes `result` (the tensor form's) into buffer-form `op`'s init.
void materializeIntoInit(OpBuilder &b, AttentionOp op, Value result);

/// Replaces buffer-form `op` by its tensor form: each distinct memref
/// operand read through one `bufferization.to_tensor restrict`, the
/// result written into init with `bufferization.materialize_in_destination`.
/// Returns the tensor-form op (`op` itself when it already is one).
AttentionOp convertToTensorForm(RewriterBase &rewriter, AttentionOp op);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_BUFFERIZABLEOPINTERFACEIMPL_H
