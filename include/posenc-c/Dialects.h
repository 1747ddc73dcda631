/*===-- posenc-c/Dialects.h - C API of the posenc dialect ---------*- C -*-===*\
|*                                                                            *|
|* The posenc dialect and its passes for C clients and language bindings     *|
|* built on MLIR's C API (mlir-c/IR.h).                                       *|
|*                                                                            *|
\*===----------------------------------------------------------------------===*/

#ifndef POSENC_C_DIALECTS_H
#define POSENC_C_DIALECTS_H

#include "mlir-c/IR.h"

#ifdef __cplusplus
extern "C" {
#endif

/// mlirGetDialectHandle__posenc__(): register or load the dialect with
/// mlirDialectHandleRegisterDialect / mlirDialectHandleLoadDialect.
MLIR_DECLARE_CAPI_DIALECT_REGISTRATION(Posenc, posenc);

/// Registers every posenc pass and the posenc-lower-to-cpu and
/// posenc-lower-to-nvvm pipelines with the global registry, so that
/// mlirParsePassPipeline accepts them (docs/reference lists them all).
MLIR_CAPI_EXPORTED void posencRegisterPasses(void);

#ifdef __cplusplus
}
#endif

#endif // POSENC_C_DIALECTS_H
