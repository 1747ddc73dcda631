//===- Dialects.cpp - C API of the posenc dialect -------------------------===//

#include "posenc-c/Dialects.h"

#include "posenc/Dialect/Posenc/IR/PosencDialect.h"
#include "posenc/InitAll.h"

#include "mlir/CAPI/Registration.h"

MLIR_DEFINE_CAPI_DIALECT_REGISTRATION(Posenc, posenc,
                                      mlir::posenc::PosencDialect)

void posencRegisterPasses() { mlir::posenc::registerPosencPasses(); }
