// REQUIRES: fuzzer
// The fuzz target survives every lit test file it is seeded with (each
// input runs every posenc pass, posenc-lower-to-cpu and the translation to
// LLVM IR under ASan and UBSan). Only sanitizer builds have posenc-fuzz:
// scripts/test.sh --sanitize.
// RUN: posenc-fuzz %S/../Dialect/Posenc/*.mlir %S/../Conversion/PosencToLinalg/*.mlir %S/../Pipelines/*.mlir %S/../Examples/*.mlir 2>&1 | FileCheck %s
// CHECK: posenc-fuzz: {{[1-9][0-9]*}} inputs, {{[1-9][0-9]*}} parsed and verified ({{.*}}%), {{[1-9][0-9]*}} lowered to LLVM IR
