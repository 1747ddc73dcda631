//===- TilingInterfaceImpl.h - attention as a tileable op -------*- C++ -*-===//
//
// External models that make posenc.attention a structured op for upstream
// MLIR: TilingInterface and ReifyRankedShapedTypeOpInterface (tiled through
// scf::tileUsingSCF and the transform dialect's tile_using_for/forall), and
// linalg::AggregatedOpInterface (decomposeOperation: the whole-tensor form
// on linalg). Registered by registerPosencDialects.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_DIALECT_POSENC_TRANSFORMS_TILINGINTERFACEIMPL_H
#define POSENC_DIALECT_POSENC_TRANSFORMS_TILINGINTERFACEIMPL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::posenc {

/// TilingInterface and ReifyRankedShapedTypeOpInterface for attention.
void registerTilingInterfaceExternalModels(DialectRegistry &registry);

/// linalg::AggregatedOpInterface for attention (AggregatedOpInterfaceImpl.cpp).
void registerAggregatedOpInterfaceExternalModels(DialectRegistry &registry);

} // namespace mlir::posenc

#endif // POSENC_DIALECT_POSENC_TRANSFORMS_TILINGINTERFACEIMPL_H
