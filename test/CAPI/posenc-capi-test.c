/*===- posenc-capi-test.c - the posenc C API from C -----------------------===*\
|* Registers the dialect and passes through include/posenc-c, parses and     *|
|* verifies posenc IR, reports a verifier error through a diagnostic         *|
|* handler, and lowers a function with posenc-lower-to-cpu. Checked by       *|
|* test/CAPI/capi.test with FileCheck.                                       *|
\*===----------------------------------------------------------------------===*/

// RUN: posenc-capi-test 2>&1 | FileCheck %s

#include "posenc-c/Dialects.h"

#include "mlir-c/Diagnostics.h"
#include "mlir-c/Dialect/Func.h"
#include "mlir-c/IR.h"
#include "mlir-c/Pass.h"
#include "mlir-c/RegisterEverything.h"

#include <stdio.h>
#include <stdlib.h>

static void printToStdout(MlirStringRef s, void *user) {
  (void)user;
  fwrite(s.data, 1, s.length, stdout);
}

static MlirLogicalResult printDiagnostic(MlirDiagnostic d, void *user) {
  (void)user;
  printf("diagnostic: ");
  mlirDiagnosticPrint(d, printToStdout, NULL);
  printf("\n");
  return mlirLogicalResultSuccess();
}

static const char *kRope =
    "func.func @rope(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> "
    "tensor<1x4x2x8xf32> {\n"
    "  %y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, "
    "tensor<4xi32>\n"
    "  return %y : tensor<1x4x2x8xf32>\n"
    "}\n";

/* rotary_dim 3 is odd: the verifier rejects it. */
static const char *kBadRope =
    "func.func @bad(%x: tensor<1x4x2x8xf32>, %p: tensor<4xi32>) -> "
    "tensor<1x4x2x8xf32> {\n"
    "  %y = posenc.rope %x, %p layout half {rotary_dim = 3 : i64} : "
    "tensor<1x4x2x8xf32>, tensor<4xi32>\n"
    "  return %y : tensor<1x4x2x8xf32>\n"
    "}\n";

int main(void) {
  // Upstream dialects and their interface models (bufferization, LLVM
  // conversion) for posenc-lower-to-cpu, as MLIR's own bindings do.
  MlirDialectRegistry registry = mlirDialectRegistryCreate();
  mlirRegisterAllDialects(registry);
  MlirContext ctx = mlirContextCreate();
  mlirContextAppendDialectRegistry(ctx, registry);
  mlirDialectRegistryDestroy(registry);
  MlirDialectHandle posenc = mlirGetDialectHandle__posenc__();
  mlirDialectHandleRegisterDialect(posenc, ctx);
  mlirDialectHandleLoadDialect(posenc, ctx);
  MlirStringRef ns = mlirDialectHandleGetNamespace(posenc);
  // CHECK: dialect: posenc
  printf("dialect: %.*s\n", (int)ns.length, ns.data);
  mlirDialectHandleLoadDialect(mlirGetDialectHandle__func__(), ctx);
  mlirContextSetAllowUnregisteredDialects(ctx, false);
  mlirContextAttachDiagnosticHandler(ctx, printDiagnostic, NULL, NULL);

  MlirModule module =
      mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(kRope));
  if (mlirModuleIsNull(module)) {
    printf("parse failed\n");
    return 1;
  }
  MlirOperation op = mlirModuleGetOperation(module);
  // CHECK: verified: 1
  printf("verified: %d\n", mlirOperationVerify(op));
  // CHECK: posenc.rope %{{.*}}, %{{.*}} layout half : tensor<1x4x2x8xf32>,
  // tensor<4xi32>
  mlirOperationPrint(op, printToStdout, NULL);
  printf("\n");

  // CHECK: diagnostic: {{.*}}rotary_dim{{.*}}3
  // CHECK: bad module rejected: 1
  MlirModule bad =
      mlirModuleCreateParse(ctx, mlirStringRefCreateFromCString(kBadRope));
  printf("bad module rejected: %d\n", mlirModuleIsNull(bad));

  posencRegisterPasses();
  MlirPassManager pm = mlirPassManagerCreate(ctx);
  MlirOpPassManager opm = mlirPassManagerGetAsOpPassManager(pm);
  MlirLogicalResult parsed = mlirParsePassPipeline(
      opm,
      mlirStringRefCreateFromCString("builtin.module(posenc-lower-to-cpu)"),
      printToStdout, NULL);
  // CHECK: pipeline parsed: 1
  printf("pipeline parsed: %d\n", mlirLogicalResultIsSuccess(parsed));
  MlirLogicalResult ran = mlirPassManagerRunOnOp(pm, op);
  // CHECK: lowered: 1
  // CHECK: llvm.func @rope(
  // CHECK-NOT: posenc.
  printf("lowered: %d\n", mlirLogicalResultIsSuccess(ran));
  mlirOperationPrint(op, printToStdout, NULL);
  printf("\n");

  mlirPassManagerDestroy(pm);
  mlirModuleDestroy(module);
  mlirContextDestroy(ctx);
  return 0;
}
