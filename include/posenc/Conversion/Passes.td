//===- Passes.td - posenc conversion passes ----------------*- tablegen -*-===//

#ifndef POSENC_CONVERSION_PASSES_TD
#define POSENC_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertPosencToLinalgPass : Pass<"convert-posenc-to-linalg"> {
  let summary = "Lower posenc ops to linalg, tensor, arith and math";
  let description = [{
    Rewrites every posenc op into upstream ops on tensors:

    - `posenc.rope`: frequencies are computed in float64 at compile time
      (`dynamic` scaling: at run time from max(pos)+1; `longrope`: both
      tables, selected at run time). Angles are formed and evaluated in
      float64 once per (position, pair) into cos/sin tables, which the
      rotation of every head and batch row reads.
    - `posenc.sinusoidal`, `posenc.alibi_bias`, `posenc.rel_bias`,
      `posenc.rel_key_bias`: one linalg.generic per result (T5 buckets come
      from a compile-time table of the log-spaced buckets).
    - `posenc.attention`: tiled through its `TilingInterface` into tiles
      of one batch, the G = Hq / Hkv query heads of one kv head and
      max(1, attention-tile-q / G) queries (a causal tile reads only the
      keys its queries see), each tile `posenc.online_attention` over
      blocks of attention-tile-k keys (the FlashAttention loop, the
      state carried through the loop, `acc / sum` after it), exactly as
      `posenc-tile-attention{tile-rows key-tile}` does. Each block is the
      op's decomposition: one online-softmax step on 2-D tiles whose
      rows are the (query, head) pairs, with scale·QKᵀ and P·V as
      `linalg.matmul` (key-major Sᵀ = K·(scale·Q)ᵀ for many rows,
      row-major S = (scale·Q)·Kᵀ for decode's few), which
      `posenc-vectorize-matmul` blocks for registers after
      bufferization; K and V are read in place, in their stored dtype.
      Ops the tiling cannot take (a static empty dim) lower as their
      decomposition. With `materialize-attention`, no query or key tiles:
      one step per batch and kv head over all queries and keys, as a
      reference form.
    - `posenc.mla_absorb`: its naive form (decompressed keys and values)
      as a `posenc.attention`, lowered in turn (posenc-decompose-mla picks
      the absorbed form earlier in the CPU pipeline).
    - `linalg.softmax` (importers' attention that `posenc-raise` did not
      take) becomes its upstream decomposition (`decomposeOperation`), so
      the pipelines after this pass lower it.
  }];
  let options = [
    Option<"attentionTileQ", "attention-tile-q", "int64_t", "64",
           "Rows per attention tile: (query, head) pairs, so a tile holds "
           "tile-q / G queries of the G query heads of a kv head (>= 1)">,
    Option<"attentionTileK", "attention-tile-k", "int64_t", "256",
           "Keys per attention tile">,
    Option<"materializeAttention", "materialize-attention", "bool", "false",
           "Build whole score matrices instead of tiling">,
    Option<"attentionParallel", "attention-parallel", "bool", "false",
           "Tile attention's outermost loop (per batch and kv head) as "
           "scf.forall, whose iterations may run on different threads">,
  ];
  let dependentDialects = [
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::linalg::LinalgDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
  ];
}

def ConvertPosencAttentionToGPUPass
    : Pass<"convert-posenc-attention-to-gpu", "::mlir::func::FuncOp"> {
  let summary = "Lower posenc.attention to a fused flash-style GPU kernel";
  let description = [{
    Rewrites each `posenc.attention` on tensors into a `gpu.launch` whose
    blocks are the tiles (one batch row, one query head, tile-q queries) of
    the op's iteration domain, reading its operands through
    `bufferization.to_buffer` and yielding a fresh buffer through
    `bufferization.to_tensor`. Each block runs the op as its
    `TilingInterface` tiles it: the tile's q, k, v and bias are subviews of
    the slices the interface chose (the GQA kv head, only the keys below
    the tile's causal limit, the broadcast bias), its causal diagonal and
    `score_mod` offsets are the tiled op's, and its score step is the op's
    own (`AttentionSemantics`). What the pass adds is how the block's
    threads run a tile: it stages scale·Q of the tile, then for each key
    tile K and V, in shared memory (f32, rows padded by one float against
    bank conflicts); scores go into a shared [tile-q, tile-k] tile; one
    thread per row keeps the running max and sum (online softmax); the
    `threads / tile-q` threads of a row each accumulate a strided part of
    its output row. A row that sees no key yields 0, as on the CPU.

    Phases are separated by `gpu.barrier` and keep all state in shared
    memory. With `emulate` the kernel is built the same way and then run on
    the host by `posenc-emulate-gpu-launch`'s emulation (blocks one after
    another, the threads of a block in lockstep between barriers, shared
    memory a host buffer): the kernel's arithmetic is checked against the
    float64 reference on a machine without a GPU.

    With `precision=tf32` the two products run on tensor cores (sm_80 and
    later) in the FlashAttention-2 layout (Dao 2023): warp w owns the
    16-row groups w, w + warps, ... of the tile, loads its Q fragments
    once, and keeps its scores, weights and output in registers as
    `nvgpu.mma.sync` fragments at the positions the PTX ISA's "Matrix
    Fragments for mma.m16n8k*" figures give. The block copies K and V
    tiles to shared memory as they are stored (`nvgpu.device_async_copy`,
    cp.async of 16, 8 or 4 bytes, whichever divides a row; loads and
    stores for rows of an odd number of 16-bit elements), the next tile
    while this one is used when two fit in shared memory (double
    buffering, `device_async_create_group`/`device_async_wait`); each warp
    computes S = Q·Kᵀ, applies the
    score step to each fragment element, reduces row max and sum over the
    4 lanes of a row with `gpu.shuffle`, rescales its output and adds P·V,
    P's A fragments taken from S's C fragments (directly for m16n8k16,
    by shuffles for m16n8k8). m16n8k16 on f16 q/k/v and m16n8k8 tf32
    otherwise (bf16 is exact in tf32; f32 operands are rounded to tf32's
    10 mantissa bits, to nearest as `cvt.rna.tf32.f32` does, so errors
    are near 2^-11 relative; q is staged times the scale's power of two,
    exactly, and the rest of the scale multiplies the scores, so q·k
    cannot overflow where scale·q·k does not). The score step, the online
    softmax and the mask rule are the FMA kernel's: a V tile holding NaN
    or Inf takes FMAs for P·V (its weights through shared memory), since
    a masked key's weight 0 times NaN would reach rows that must not see
    it. Tiles must then be multiples of 16 rows and 8 keys; `tile-q = 0`
    picks 16 rows per warp (fewer for a short Sq). A static Sk of 0 gives
    zero rows without a kernel (with either precision).

    Head dims and head counts must be static (the accumulators of a thread
    are unrolled); q, k, v may be f32, f16 or bf16 (f32 accumulation).
    With `tile-q = 0` the largest tile of at most 64 rows (for a static
    Sq, at most Sq rounded up to a power of two) whose shared memory fits
    in 48 KiB is chosen; when none does (MLA's absorbed form has Dk = 576),
    the largest within `max-shared-memory`, which the runtime opts into at
    launch.

    Split-K (flash-decoding, Dao et al. 2023): when the grid of (batch,
    head, query tile) blocks is small, as in decode, the keys of each tile
    are split into `split-k` chunks run by separate blocks. The op becomes
    its decomposition (`AggregatedOpInterface`: online_attention from the
    op's initial state, sinks included, then acc / sum); the kernel writes
    each chunk's unnormalized state (acc, max, sum) from (0, -inf, 0) into
    partial states laid out as online_attention's
    `PartialReductionOpInterface` defines them, whose `mergeReductions`
    combines them; the merge and the normalization are linalg ops that the
    pipeline maps to kernels like any other.
  }];
  let options = [
    Option<"tileQ", "tile-q", "int64_t", "0",
           "Query rows per block (0: the largest that fits in 48 KiB of "
           "shared memory; otherwise it must divide `threads`, or with "
           "precision=tf32 be a multiple of 16)">,
    Option<"tileK", "tile-k", "int64_t", "32",
           "Keys per shared-memory tile (must divide `threads`)">,
    Option<"threads", "threads", "int64_t", "128",
           "Threads per block (a multiple of 32, at most 1024)">,
    Option<"maxSharedMemory", "max-shared-memory", "int64_t", "49152",
           "Most shared memory per block, in bytes, that tiles may use when "
           "none fits in 48 KiB (sm_80: 166912, sm_90: 232448)">,
    Option<"emulate", "emulate", "bool", "false",
           "Run the kernel on the host (posenc-emulate-gpu-launch's "
           "emulation of the gpu.launch) instead of emitting the launch">,
    Option<"precision", "precision", "std::string", "\"ieee\"",
           "Q·Kᵀ and P·V on f32 FMAs (ieee), or on tensor cores (tf32: "
           "mma.sync m16n8k16 on f16, m16n8k8 on tf32 otherwise, which holds "
           "bf16 exactly; sm_80+)">,
    Option<"splitK", "split-k", "int64_t", "0",
           "Key chunks per (batch row, head, query tile), each run by its own "
           "blocks into a partial online-softmax state, merged after the "
           "kernel (flash-decoding); 0: as many as bring a static grid to "
           "about 2048 blocks with at least 4 key tiles per chunk, 1: none">,
  ];
  let dependentDialects = [
    "::mlir::affine::AffineDialect",
    "::mlir::arith::ArithDialect",
    "::mlir::bufferization::BufferizationDialect",
    "::mlir::gpu::GPUDialect",
    "::mlir::math::MathDialect",
    "::mlir::memref::MemRefDialect",
    "::mlir::scf::SCFDialect",
    "::mlir::tensor::TensorDialect",
    "::mlir::nvgpu::NVGPUDialect",
    "::mlir::vector::VectorDialect",
  ];
}

#endif // POSENC_CONVERSION_PASSES_TD
