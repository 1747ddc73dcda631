//===- BufferizableOpInterfaceImpl.cpp - attention on buffers -------------===//

#include "posenc/Dialect/Posenc/Transforms/BufferizableOpInterfaceImpl.h"

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"

#include "mlir/Dialect/Bufferization/IR/BufferizableOpInterface.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::posenc;
using namespace mlir::bufferization;

AttentionOp mlir::posenc::cloneWithOperands(OpBuilder &rewriter, AttentionOp op,
                                            ValueRange operands) {
  OperationState state(op.getLoc(), op->getName());
  state.addOperands(operands);
  // Properties carry the operand segments, scale and causal.
  state.propertiesAttr = op->getPropertiesAsAttribute();
  state.addAttributes(llvm::to_vector(op->getDiscardableAttrs()));
  // The result count follows the form: one for tensors, none for buffers.
  Type initTy =
      operands[op.getDpsInitsMutable()[0].getOperandNumber()].getType();
  if (isa<RankedTensorType>(initTy))
    state.addTypes(initTy);
  state.addRegion();
  auto result = cast<AttentionOp>(rewriter.create(state));
  if (!op.getScoreMod().empty())
    rewriter.cloneRegionBefore(op.getScoreMod(), result.getScoreMod(),
                               result.getScoreMod().end());
  return result;
}

namespace {
struct AttentionBufferizableOpInterface
    : BufferizableOpInterface::ExternalModel<AttentionBufferizableOpInterface,
                                             AttentionOp> {
  bool bufferizesToMemoryRead(Operation *op, OpOperand &operand,
                              const AnalysisState &) const {
    // init is only a destination: its values are never read.
    return !cast<AttentionOp>(op).isDpsInit(&operand);
  }

  bool bufferizesToMemoryWrite(Operation *op, OpOperand &operand,
                               const AnalysisState &) const {
    return cast<AttentionOp>(op).isDpsInit(&operand);
  }

  AliasingValueList getAliasingValues(Operation *op, OpOperand &operand,
                                      const AnalysisState &) const {
    auto attn = cast<AttentionOp>(op);
    if (!attn.isDpsInit(&operand))
      return {};
    return {{attn.getTiedOpResult(&operand), BufferRelation::Equivalent}};
  }

  LogicalResult bufferize(Operation *op, RewriterBase &rewriter,
                          const BufferizationOptions &options,
                          BufferizationState &state) const {
    auto attn = cast<AttentionOp>(op);
    if (attn.hasBufferSemantics())
      return success();
    SmallVector<Value> operands;
    for (Value v : op->getOperands()) {
      if (!isa<TensorType>(v.getType())) {
        operands.push_back(v);
        continue;
      }
      FailureOr<Value> buffer = getBuffer(rewriter, v, options, state);
      if (failed(buffer))
        return failure();
      operands.push_back(*buffer);
    }
    rewriter.setInsertionPoint(op);
    AttentionOp bufferized = cloneWithOperands(rewriter, attn, operands);
    replaceOpWithBufferizedValues(rewriter, op, bufferized.getInit());
    return success();
  }
};
} // namespace

SmallVector<Value> mlir::posenc::tensorFormOperands(OpBuilder &b,
                                                    AttentionOp op) {
  Location loc = op.getLoc();
  Value init = op.getInit();
  // One to_tensor per distinct buffer: `restrict` promises that no other
  // to_tensor reads the same memref (q and k may be one buffer).
  DenseMap<Value, Value> tensors;
  SmallVector<Value> operands;
  for (Value v : op->getOperands()) {
    auto memTy = dyn_cast<MemRefType>(v.getType());
    if (!memTy || v == init) {
      operands.push_back(v);
      continue;
    }
    Value &t = tensors[v];
    if (!t)
      t = ToTensorOp::create(
          b, loc,
          RankedTensorType::get(memTy.getShape(), memTy.getElementType()), v,
          /*restrict=*/true);
    operands.push_back(t);
  }
  auto initTy = cast<MemRefType>(init.getType());
  SmallVector<Value> dynSizes;
  for (int64_t d = 0; d < initTy.getRank(); ++d)
    if (initTy.isDynamicDim(d))
      dynSizes.push_back(memref::DimOp::create(b, loc, init, d));
  operands[op.getDpsInitsMutable()[0].getOperandNumber()] =
      tensor::EmptyOp::create(b, loc, initTy.getShape(),
                              initTy.getElementType(), dynSizes);
  return operands;
}

void mlir::posenc::materializeIntoInit(OpBuilder &b, AttentionOp op,
                                       Value result) {
  MaterializeInDestinationOp::create(b, op.getLoc(), TypeRange{}, result,
                                     op.getInit(), /*restrict=*/false,
                                     /*writable=*/true);
}

AttentionOp mlir::posenc::convertToTensorForm(RewriterBase &rewriter,
                                              AttentionOp op) {
  if (!op.hasBufferSemantics())
    return op;
  OpBuilder::InsertionGuard guard(rewriter);
  rewriter.setInsertionPoint(op);
  AttentionOp tensorOp =
      cloneWithOperands(rewriter, op, tensorFormOperands(rewriter, op));
  materializeIntoInit(rewriter, op, tensorOp.getResult());
  rewriter.eraseOp(op);
  return tensorOp;
}

void mlir::posenc::registerBufferizableOpInterfaceExternalModels(
    DialectRegistry &registry) {
  registry.addExtension(+[](MLIRContext *ctx, PosencDialect *) {
    ctx->loadDialect<bufferization::BufferizationDialect, memref::MemRefDialect,
                     tensor::TensorDialect>();
    AttentionOp::attachInterface<AttentionBufferizableOpInterface>(*ctx);
  });
}
