//===- PosencDialect.h - posenc dialect -------------------------*- C++ -*-===//

#ifndef POSENC_DIALECT_POSENC_IR_POSENCDIALECT_H
#define POSENC_DIALECT_POSENC_IR_POSENCDIALECT_H

#include "mlir/IR/Dialect.h"

#include "posenc/Dialect/Posenc/IR/PosencOpsDialect.h.inc"

#endif // POSENC_DIALECT_POSENC_IR_POSENCDIALECT_H
