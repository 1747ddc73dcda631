//===- Pipelines.h - posenc lowering pipelines ------------------*- C++ -*-===//

#ifndef POSENC_PIPELINES_PIPELINES_H
#define POSENC_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassOptions.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"

namespace mlir {
class OpPassManager;
namespace posenc {

/// Options of `posenc-lower-to-cpu`.
struct PosencToCPUPipelineOptions
    : public PassPipelineOptions<PosencToCPUPipelineOptions> {
  PassOptions::Option<bool> fuseElementwise{
      *this, "fuse-elementwise",
      llvm::cl::desc("Fuse producer/consumer elementwise linalg ops before "
                     "bufferization (off: measured no gain on posenc's "
                     "lowerings, and it can fuse a transpose into a "
                     "contraction's inner loop)"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> fuseBias{
      *this, "fuse-bias",
      llvm::cl::desc("Compute position biases inside attention (never build "
                     "the [H, Sq, Sk] bias)"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> attentionTileQ{
      *this, "attention-tile-q",
      llvm::cl::desc("Rows per attention tile: (query, head) pairs, so a "
                     "tile holds tile-q / G queries of the G query heads of "
                     "a kv head (>= 1)"),
      llvm::cl::init(64)};
  // 256 keys: the per-block work on [tile-q, Dv] (the α rescale of the
  // accumulator, the finite check of P·V) and the accumulator's loads and
  // stores around P·V's reduction are shared by 4x the keys of 64; causal
  // prefill S = 2048 and 8192 ran ~20% faster (bench/attention.py).
  PassOptions::Option<int64_t> attentionTileK{
      *this, "attention-tile-k", llvm::cl::desc("Keys per attention tile"),
      llvm::cl::init(256)};
  PassOptions::Option<int64_t> attentionDecodeQueries{
      *this, "attention-decode-queries",
      llvm::cl::desc("Attention with a static query length of at most this "
                     "(decode) is tiled with attention-decode-key-tile keys "
                     "per block; 0: every attention takes the prefill "
                     "tiles (attention-tile-q, attention-tile-k)"),
      llvm::cl::init(4)};
  PassOptions::Option<int64_t> attentionDecodeKeyTile{
      *this, "attention-decode-key-tile",
      llvm::cl::desc("Keys per block of the decode loop"), llvm::cl::init(256)};
  PassOptions::Option<bool> vectorizeMatmul{
      *this, "vectorize-matmul",
      llvm::cl::desc("Register-blocked vector code for f32 matmuls on "
                     "buffers (the attention tiles); off: scalar loops that "
                     "the backend vectorizes as it can"),
      llvm::cl::init(true)};
  PassOptions::Option<int64_t> matmulRows{
      *this, "matmul-rows",
      llvm::cl::desc("Rows of C per register block of vectorize-matmul"),
      llvm::cl::init(4)};
  PassOptions::Option<int64_t> matmulVectors{
      *this, "matmul-vectors",
      llvm::cl::desc("Vectors per row of a register block of "
                     "vectorize-matmul"),
      llvm::cl::init(2)};
  PassOptions::Option<int64_t> vectorWidth{
      *this, "vector-width",
      llvm::cl::desc("f32 lanes per vector of vectorize-matmul (0: the "
                     "host's widest: 16 with AVX-512, 8 with AVX2, else 4)"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> bf16Dot{
      *this, "bf16-dot",
      llvm::cl::desc("bf16 dot products (vdpbf16ps) in vectorize-matmul for "
                     "bf16 queries and keys in decode: host (when the host "
                     "has AVX512-BF16), on or off"),
      llvm::cl::init("host")};
  PassOptions::Option<int64_t> foldMaxElements{
      *this, "fold-max-elements",
      llvm::cl::desc("Largest posenc result folded when its operands are "
                     "constants (0: never)"),
      llvm::cl::init(4096)};
  PassOptions::Option<MlaDecomposition> mla{
      *this, "mla", llvm::cl::desc("Form of posenc.mla_absorb"),
      llvm::cl::init(MlaDecomposition::automatic),
      llvm::cl::values(
          clEnumValN(MlaDecomposition::automatic, "auto",
                     "absorbed for short queries, naive otherwise"),
          clEnumValN(MlaDecomposition::naive, "naive",
                     "decompress keys and values per head"),
          clEnumValN(MlaDecomposition::absorbed, "absorbed",
                     "multi-query attention over the latent cache"))};
  PassOptions::Option<int64_t> mlaAbsorbThreshold{
      *this, "mla-absorb-threshold",
      llvm::cl::desc("With mla=auto, absorb when the query length is <= this"),
      llvm::cl::init(16)};
  PassOptions::Option<int64_t> numThreads{
      *this, "num-threads",
      llvm::cl::desc("Threads of the compiled code (LLVM's OpenMP runtime): "
                     "1 runs on the calling thread with no runtime calls; 0 "
                     "takes POSENC_NUM_THREADS, else every core"),
      llvm::cl::init(1)};
};

/// Options of `posenc-lower-to-nvvm`.
struct PosencToNVVMPipelineOptions
    : public PassPipelineOptions<PosencToNVVMPipelineOptions> {
  PassOptions::Option<std::string> chip{
      *this, "chip", llvm::cl::desc("GPU architecture (sm_80, sm_90, ...)"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<std::string> features{
      *this, "features", llvm::cl::desc("PTX features (+ptx80, ...)"),
      llvm::cl::init("+ptx80")};
  PassOptions::Option<std::string> format{
      *this, "format",
      llvm::cl::desc("Kernel binary: isa (PTX text), bin (cubin), fatbin"),
      llvm::cl::init("fatbin")};
  PassOptions::Option<int> optLevel{
      *this, "opt-level", llvm::cl::desc("Device code optimization level"),
      llvm::cl::init(3)};
  PassOptions::Option<std::string> toolkit{
      *this, "toolkit",
      llvm::cl::desc("CUDA toolkit (libdevice, ptxas, fatbinary); default: "
                     "$CUDA_ROOT, $CUDA_HOME, $CUDA_PATH or /usr/local/cuda"),
      llvm::cl::init("")};
  PassOptions::Option<int64_t> threads{
      *this, "threads",
      llvm::cl::desc("Threads per block along the contiguous dim"),
      llvm::cl::init(256)};
  PassOptions::Option<bool> emulate{
      *this, "emulate",
      llvm::cl::desc("Run the kernels' threads one after another on the "
                     "host instead of lowering to NVVM (checks the GPU "
                     "pipeline's kernels without a GPU)"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> attentionTileQ{
      *this, "attention-tile-q",
      llvm::cl::desc("Query rows per attention block (0: the largest that "
                     "fits in 48 KiB of shared memory)"),
      llvm::cl::init(0)};
  PassOptions::Option<int64_t> attentionTileK{
      *this, "attention-tile-k",
      llvm::cl::desc("Keys per shared-memory tile of attention"),
      llvm::cl::init(32)};
  PassOptions::Option<int64_t> attentionThreads{
      *this, "attention-threads", llvm::cl::desc("Threads per attention block"),
      llvm::cl::init(128)};
  PassOptions::Option<int64_t> attentionSplitK{
      *this, "attention-split-k",
      llvm::cl::desc("Key chunks per attention tile run by separate blocks "
                     "and merged (flash-decoding; 0: chosen from the grid "
                     "size, 1: none)"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> attentionPrecision{
      *this, "attention-precision",
      llvm::cl::desc("Attention's Q·Kᵀ and P·V on f32 FMAs (ieee) or on "
                     "tensor cores (tf32: mma.sync on f16 or tf32 operands; "
                     "sm_80 and later)"),
      llvm::cl::init("ieee")};
  PassOptions::Option<int64_t> foldMaxElements{
      *this, "fold-max-elements",
      llvm::cl::desc("Largest posenc result folded when its operands are "
                     "constants (0: never)"),
      llvm::cl::init(4096)};
};

/// posenc ops on tensors to the LLVM dialect for the host CPU: posenc to
/// linalg, bufferization with deallocation, loops, LLVM.
void buildPosencToCPUPipeline(OpPassManager &pm,
                              const PosencToCPUPipelineOptions &options);

/// posenc ops to GPU kernels for NVIDIA GPUs: attention (and MLA through
/// it) as one fused kernel each, the other ops through posenc to linalg,
/// bufferization, parallel loops mapped to blocks and threads,
/// device buffers, then upstream's NVVM pipeline (kernels serialized with
/// the CUDA toolkit's ptxas; host code calls the mgpu* runtime).
void buildPosencToNVVMPipeline(OpPassManager &pm,
                               const PosencToNVVMPipelineOptions &options);

/// Why `options` cannot build a pipeline (an option outside its range,
/// named with its value), or an empty string. Checked when the registered
/// pipelines parse their options, before any pass runs.
std::string
checkPosencToCPUPipelineOptions(const PosencToCPUPipelineOptions &options);
std::string
checkPosencToNVVMPipelineOptions(const PosencToNVVMPipelineOptions &options);

/// Registers `posenc-lower-to-cpu` and `posenc-lower-to-nvvm`; their
/// options are checked as they are parsed.
void registerPosencPipelines();

} // namespace posenc
} // namespace mlir

#endif // POSENC_PIPELINES_PIPELINES_H
