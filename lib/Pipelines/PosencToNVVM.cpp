//===- PosencToNVVM.cpp - posenc-lower-to-nvvm pipeline -------------------===//

#include "posenc/Pipelines/Pipelines.h"

#include "Stages.h"

#include "posenc/Conversion/Passes.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/LLVMIR/Transforms/OptimizeForNVVM.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVM/NVVM/Utils.h"
#include "mlir/Transforms/Passes.h"

#include "llvm/Support/FileSystem.h"

using namespace mlir;
using namespace mlir::posenc;

/// The CUDA toolkit: the option, else $CUDA_ROOT/$CUDA_HOME/$CUDA_PATH,
/// else /usr/local/cuda when it exists. Serialization links its libdevice
/// (the __nv_* math of the kernels) and runs its ptxas and fatbinary.
static std::string toolkitPath(const PosencToNVVMPipelineOptions &options) {
  if (!options.toolkit.empty())
    return options.toolkit;
  std::string path = NVVM::getCUDAToolkitPath().str();
  if (path.empty() && llvm::sys::fs::is_directory("/usr/local/cuda"))
    path = "/usr/local/cuda";
  return path;
}

/// The opt-in shared memory per block of an sm_XY chip (CUDA programming
/// guide, compute capabilities): what large-head attention tiles may use.
static int64_t maxSharedMemoryPerBlock(StringRef chip) {
  unsigned cc = 0;
  if (!chip.consume_front("sm_") ||
      chip.take_while(llvm::isDigit).getAsInteger(10, cc))
    return 48 * 1024;
  if (cc == 80 || cc == 87)
    return 163 * 1024;
  if (cc == 86 || cc == 89 || cc == 120 || cc == 121)
    return 99 * 1024;
  if (cc >= 90)
    return 227 * 1024;
  if (cc >= 70)
    return 96 * 1024;
  return 48 * 1024;
}

/// Kernels outlined, lowered to NVVM and serialized; host code to LLVM with
/// mgpu* runtime calls (the composition of upstream's
/// gpu-lower-to-nvvm-pipeline, with the toolkit passed to serialization).
static void addNVVMStage(OpPassManager &pm,
                         const PosencToNVVMPipelineOptions &options) {
  // Constants and index math used by a kernel are recomputed inside it,
  // not passed as arguments (which the backend cannot fold).
  pm.addPass(createGpuLaunchSinkIndexComputationsPass());
  pm.addPass(createGpuKernelOutliningPass());
  // Launches, copies and allocations on one stream per call (gpu-to-llvm
  // lowers device allocations in their async form only).
  pm.addNestedPass<func::FuncOp>(createGpuAsyncRegionPass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertFuncToLLVMPass());
  // LLVM 22's expand-strided-metadata cannot take them (llvm-project #186830).
  pm.addPass(createPosencExpandShapeToReinterpretCastPass());
  pm.addPass(memref::createExpandStridedMetadataPass());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.chip;
  target.features = options.features;
  target.optLevel = options.optLevel;
  pm.addPass(createGpuNVVMAttachTarget(target));
  pm.addPass(createLowerAffinePass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());

  // nvgpu.mma.sync (attention's tensor-core products) to nvvm.mma.sync.
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertNVGPUToNVVMPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createConvertGpuOpsToNVVMOps());
  pm.addNestedPass<gpu::GPUModuleOp>(LLVM::createNVVMOptimizeForTargetPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCanonicalizerPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createCSEPass());
  pm.addNestedPass<gpu::GPUModuleOp>(createReconcileUnrealizedCastsPass());

  pm.addPass(createGpuToLLVMConversionPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = options.format;
  binary.toolkitPath = toolkitPath(options);
  pm.addPass(createGpuModuleToBinaryPass(binary));
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
}

void mlir::posenc::buildPosencToNVVMPipeline(
    OpPassManager &pm, const PosencToNVVMPipelineOptions &options) {
  PosencCheckCPUInputPassOptions input;
  input.pipeline = "posenc-lower-to-nvvm";
  input.f32Attention = true;
  pm.addPass(createPosencCheckCPUInputPass(input));
  stages::addChecksAndFolds(pm, options.foldMaxElements);
  // MLA as attention (plus projections), biases into score_mod, then every
  // attention as one fused kernel.
  pm.addPass(createPosencDecomposeMlaPass());
  pm.addPass(createPosencFuseBiasIntoAttentionPass());
  ConvertPosencAttentionToGPUPassOptions attention;
  attention.tileQ = options.attentionTileQ;
  attention.tileK = options.attentionTileK;
  attention.threads = options.attentionThreads;
  attention.splitK = options.attentionSplitK;
  attention.precision = options.attentionPrecision;
  attention.maxSharedMemory = maxSharedMemoryPerBlock(options.chip);
  attention.emulate = options.emulate;
  pm.addNestedPass<func::FuncOp>(
      createConvertPosencAttentionToGPUPass(attention));
  stages::addLinalgStage(pm, ConvertPosencToLinalgPassOptions());
  stages::addBufferStage(pm);

  // Loops -> kernels: coalesced threads along the contiguous dim.
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToParallelLoopsPass());
  PosencMapParallelLoopsToGpuPassOptions map;
  map.threads = options.threads;
  pm.addNestedPass<func::FuncOp>(createPosencMapParallelLoopsToGpuPass(map));
  pm.addNestedPass<func::FuncOp>(createConvertParallelLoopToGpuPass());
  PosencCheckGpuMappingPassOptions mapped;
  mapped.emulated = options.emulate;
  pm.addNestedPass<func::FuncOp>(createPosencCheckGpuMappingPass(mapped));
  if (options.emulate) {
    // Same kernels, run thread by thread on the host.
    pm.addNestedPass<func::FuncOp>(createPosencEmulateGpuLaunchPass());
    PosencToCPUPipelineOptions host;
    host.vectorizeMatmul = false;
    stages::addHostLLVMStage(pm, host);
    return;
  }
  pm.addNestedPass<func::FuncOp>(createPosencAllocateOnGpuPass());
  pm.addPass(createPosencExpandArithPass());
  pm.addPass(createCanonicalizerPass());

  addNVVMStage(pm, options);
}
