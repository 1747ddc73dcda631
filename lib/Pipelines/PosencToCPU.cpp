//===- PosencToCPU.cpp - posenc-lower-to-cpu pipeline ---------------------===//

#include "posenc/Pipelines/Pipelines.h"

#include "Stages.h"

#include "posenc/Conversion/Passes.h"

#include "mlir/Conversion/AffineToStandard/AffineToStandard.h"
#include "mlir/Conversion/BufferizationToMemRef/BufferizationToMemRef.h"
#include "mlir/Conversion/ConvertToLLVM/ToLLVMPass.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Conversion/SCFToOpenMP/SCFToOpenMP.h"
#include "mlir/Conversion/UBToLLVM/UBToLLVM.h"
#include "mlir/Conversion/VectorToLLVM/ConvertVectorToLLVMPass.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Dialect/SCF/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::posenc;

/// Shape checks and constant folds, before any posenc rewrite: fusion and
/// decomposition drop the ops whose relations the checks come from.
void mlir::posenc::stages::addChecksAndFolds(OpPassManager &pm,
                                             int64_t foldMaxElements) {
  pm.addPass(createPosencInsertShapeChecksPass());
  pm.addPass(createCanonicalizerPass());
  PosencFoldConstantsPassOptions fold;
  fold.maxElements = foldMaxElements;
  pm.addPass(createPosencFoldConstantsPass(fold));
}

/// posenc -> linalg on tensors, with elementwise arith/math on whole
/// tensors (common in model IR) as linalg too, cleaned up.
void mlir::posenc::stages::addLinalgStage(
    OpPassManager &pm, const ConvertPosencToLinalgPassOptions &lowering) {
  pm.addPass(createConvertPosencToLinalgPass(lowering));
  pm.addNestedPass<func::FuncOp>(createConvertElementwiseToLinalgPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

/// posenc-level rewrites: checks, folds, then the MLA form.
static void addPosencStage(OpPassManager &pm,
                           const PosencToCPUPipelineOptions &options) {
  pm.addPass(createPosencCheckCPUInputPass());
  stages::addChecksAndFolds(pm, options.foldMaxElements);
  PosencDecomposeMlaPassOptions mla;
  mla.mode = options.mla;
  mla.absorbThreshold = options.mlaAbsorbThreshold;
  pm.addPass(createPosencDecomposeMlaPass(mla));
  if (options.fuseBias)
    pm.addPass(createPosencFuseBiasIntoAttentionPass());
}

/// Chunks of decode's keys with several threads.
static constexpr int64_t kDecodeKeyChunk = 2048;

/// posenc -> linalg on tensors, optionally fused. Attention is tiled
/// through its interfaces (one kv head and a block of queries per tile, a
/// loop over key blocks inside; decode-shaped attention with longer key
/// blocks) and each step decomposed; the parts of a step that read no key
/// (scale·Q) are then hoisted out of the key loop.
static void addTensorStage(OpPassManager &pm,
                           const PosencToCPUPipelineOptions &options) {
  if (options.attentionDecodeQueries != 0) {
    PosencTileAttentionPassOptions decode;
    decode.tileRows = options.attentionTileQ;
    decode.maxQueries = options.attentionDecodeQueries;
    decode.keyTile = options.attentionDecodeKeyTile;
    decode.parallel = options.numThreads != 1;
    // Decode of one sequence is one tile: its threads split the keys, in
    // a chunk count that does not depend on the thread count (the merge,
    // and so the rounding, is the same for every count but 1).
    if (options.numThreads != 1)
      decode.keyChunk = kDecodeKeyChunk;
    pm.addPass(createPosencTileAttentionPass(decode));
  }
  ConvertPosencToLinalgPassOptions lowering;
  lowering.attentionTileQ = options.attentionTileQ;
  lowering.attentionTileK = options.attentionTileK;
  lowering.attentionParallel = options.numThreads != 1;
  stages::addLinalgStage(pm, lowering);
  // Key tiles beyond a clamped bias's max_distance read one table entry.
  pm.addPass(createPosencSpecializeSaturatedClampPass());
  pm.addPass(createLoopInvariantCodeMotionPass());
  if (options.fuseElementwise)
    pm.addPass(createLinalgElementwiseOpFusionPass());
  // The ops outside attention in chunks for the threads: 4 per thread
  // (16 when the count is the runtime's) balance uneven chunks.
  if (options.numThreads != 1) {
    PosencTileForThreadsPassOptions chunks;
    chunks.chunks = options.numThreads == 0 ? 16 : 4 * options.numThreads;
    pm.addNestedPass<func::FuncOp>(createPosencTileForThreadsPass(chunks));
    pm.addPass(createCanonicalizerPass());
  }
}

/// Tensors -> buffers. Function boundaries use identity layouts so that
/// callers (posenc-run, mlir-runner, Python) pass plain dense buffers,
/// which are read-only inputs.
void mlir::posenc::stages::addBufferStage(OpPassManager &pm) {
  pm.addPass(createPosencReadOnlyArgumentsPass());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addPass(createCanonicalizerPass());
  // Returned arguments become bufferization.clone.
  pm.addPass(createConvertBufferizationToMemRefPass());
}

/// Buffers -> loops -> LLVM.
void mlir::posenc::stages::addHostLLVMStage(
    OpPassManager &pm, const PosencToCPUPipelineOptions &options) {
  if (options.vectorizeMatmul) {
    PosencVectorizeMatmulPassOptions matmul;
    matmul.rows = options.matmulRows;
    matmul.vectors = options.matmulVectors;
    matmul.vectorWidth = options.vectorWidth;
    matmul.bf16Dot = options.bf16Dot;
    pm.addNestedPass<func::FuncOp>(createPosencVectorizeMatmulPass(matmul));
  }
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  pm.addPass(createPosencApproximateMathPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  // LLVM 22's expand-strided-metadata cannot take them (llvm-project #186830).
  pm.addPass(createPosencExpandShapeToReinterpretCastPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  // Like arith-expand (bf16 conversions as integer ops: the host's libgcc
  // may lack __truncsfbf2), but min/max stay intrinsics that vectorize.
  pm.addPass(createPosencExpandArithPass());
  // aligned_alloc keeps pointer provenance (no ptrtoint/inttoptr alignment
  // arithmetic), so LLVM knows fresh buffers alias nothing and can keep
  // reduction accumulators in registers and vectorize.
  FinalizeMemRefToLLVMConversionPassOptions memrefOptions;
  memrefOptions.useAlignedAlloc = true;
  pm.addPass(createFinalizeMemRefToLLVMConversionPass(memrefOptions));
  pm.addPass(createConvertToLLVMPass());
  // x86vector ops (posenc-vectorize-matmul's bf16 dot products) have no
  // convert-to-llvm interface; their vector operands are LLVM types
  // already, so this only turns them into intrinsic calls.
  ConvertVectorToLLVMPassOptions vectorOptions;
  vectorOptions.x86Vector = true;
  pm.addPass(createConvertVectorToLLVMPass(vectorOptions));
  // Vector lowering builds vectors from ub.poison (vector.from_elements).
  pm.addPass(createUBToLLVMConversionPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

/// The parallel loops (scf.forall from tiling) on OpenMP threads: one
/// omp.parallel + omp.wsloop each. An alloca scope around a body without
/// allocas is folded away (multi-block bodies cannot keep one).
static void addThreadStage(OpPassManager &pm,
                           const PosencToCPUPipelineOptions &options) {
  if (options.numThreads == 1)
    return;
  pm.addNestedPass<func::FuncOp>(createForallToParallelLoopPass());
  ConvertSCFToOpenMPPassOptions omp;
  omp.numThreads = options.numThreads;
  pm.addPass(createConvertSCFToOpenMPPass(omp));
  pm.addPass(createCanonicalizerPass());
}

void mlir::posenc::buildPosencToCPUPipeline(
    OpPassManager &pm, const PosencToCPUPipelineOptions &options) {
  addPosencStage(pm, options);
  addTensorStage(pm, options);
  stages::addBufferStage(pm);
  addThreadStage(pm, options);
  stages::addHostLLVMStage(pm, options);
}

/// "name = value must be <rule>" for the first option outside its range.
namespace {
struct OptionChecker {
  std::string error;
  void check(bool ok, StringRef name, int64_t value, StringRef rule) {
    if (error.empty() && !ok)
      error = (name + " = " + Twine(value) + " must be " + rule).str();
  }
};
} // namespace

std::string mlir::posenc::checkPosencToCPUPipelineOptions(
    const PosencToCPUPipelineOptions &o) {
  OptionChecker c;
  c.check(o.attentionTileQ >= 1, "attention-tile-q", o.attentionTileQ, ">= 1");
  c.check(o.attentionTileK >= 1, "attention-tile-k", o.attentionTileK, ">= 1");
  c.check(o.attentionDecodeQueries >= 0, "attention-decode-queries",
          o.attentionDecodeQueries, ">= 0 (0: no decode tiling)");
  c.check(o.attentionDecodeKeyTile >= 1, "attention-decode-key-tile",
          o.attentionDecodeKeyTile, ">= 1");
  c.check(o.matmulRows >= 1 && o.matmulRows <= 64, "matmul-rows", o.matmulRows,
          "in [1, 64]");
  c.check(o.matmulVectors >= 1 && o.matmulVectors <= 64, "matmul-vectors",
          o.matmulVectors, "in [1, 64]");
  c.check(o.vectorWidth >= 0 && o.vectorWidth <= 1024, "vector-width",
          o.vectorWidth, "in [0, 1024] (0: the host's widest)");
  if (c.error.empty() && o.bf16Dot != "host" && o.bf16Dot != "on" &&
      o.bf16Dot != "off")
    c.error = "bf16-dot = '" + o.bf16Dot + "' must be host, on or off";
  c.check(o.foldMaxElements >= 0, "fold-max-elements", o.foldMaxElements,
          ">= 0 (0: never fold)");
  c.check(o.mlaAbsorbThreshold >= 0, "mla-absorb-threshold",
          o.mlaAbsorbThreshold, ">= 0");
  c.check(o.numThreads >= 0 && o.numThreads <= 4096, "num-threads",
          o.numThreads, "in [0, 4096] (0: every core, 1: no threads)");
  return c.error;
}

std::string mlir::posenc::checkPosencToNVVMPipelineOptions(
    const PosencToNVVMPipelineOptions &o) {
  OptionChecker c;
  c.check(o.threads >= 1 && o.threads <= 1024, "threads", o.threads,
          "in [1, 1024]");
  c.check(o.attentionThreads >= 32 && o.attentionThreads <= 1024 &&
              o.attentionThreads % 32 == 0,
          "attention-threads", o.attentionThreads,
          "a multiple of 32 in [32, 1024]");
  c.check(o.attentionTileQ >= 0 && o.attentionTileQ <= o.attentionThreads,
          "attention-tile-q", o.attentionTileQ,
          "in [0, attention-threads] (0: the largest tile that fits)");
  c.check(o.attentionTileK >= 1 && o.attentionTileK <= o.attentionThreads,
          "attention-tile-k", o.attentionTileK, "in [1, attention-threads]");
  c.check(o.attentionSplitK >= 0 && o.attentionSplitK <= 4096,
          "attention-split-k", o.attentionSplitK,
          "in [0, 4096] (0: chosen from the grid size, 1: no split)");
  c.check(o.foldMaxElements >= 0, "fold-max-elements", o.foldMaxElements,
          ">= 0 (0: never fold)");
  c.check(o.optLevel >= 0 && o.optLevel <= 3, "opt-level", o.optLevel,
          "in [0, 3]");
  if (c.error.empty() && o.attentionPrecision != "ieee" &&
      o.attentionPrecision != "tf32")
    c.error = "attention-precision = '" + o.attentionPrecision +
              "' must be ieee or tf32";
  return c.error;
}

/// Like PassPipelineRegistration, with the options checked as they are
/// parsed: a bad value fails the pipeline's parse with its message.
template <typename Options>
static void registerChecked(StringRef arg, StringRef description,
                            void (*build)(OpPassManager &, const Options &),
                            std::string (*check)(const Options &)) {
  registerPassPipeline(
      arg, description,
      [=](OpPassManager &pm, StringRef text,
          function_ref<LogicalResult(const Twine &)> errorHandler) {
        Options options;
        if (failed(options.parseFromString(text)))
          return failure();
        std::string error = check(options);
        if (!error.empty())
          return errorHandler(arg + ": " + error);
        build(pm, options);
        return success();
      },
      [](function_ref<void(const mlir::detail::PassOptions &)> handler) {
        handler(Options());
      });
}

void mlir::posenc::registerPosencPipelines() {
  registerChecked<PosencToCPUPipelineOptions>(
      "posenc-lower-to-cpu",
      "Lower posenc ops on tensors to the LLVM dialect for the host CPU",
      buildPosencToCPUPipeline, checkPosencToCPUPipelineOptions);
  registerChecked<PosencToNVVMPipelineOptions>(
      "posenc-lower-to-nvvm",
      "Lower posenc ops on tensors to NVIDIA GPU kernels (NVVM) and host "
      "code that launches them",
      buildPosencToNVVMPipeline, checkPosencToNVVMPipelineOptions);
}
