//===- EmulateGpuLaunch.cpp - posenc-emulate-gpu-launch -------------------===//
//
// gpu.launch blocks(bx, by, bz) threads(tx, ty, tz) { body }
//   -> for bz, by, bx: the body, its threads in lockstep
//
// The body is cut at every synchronization point (gpu.barrier and the warp
// collectives gpu.shuffle, nvgpu.mma.sync, nvgpu.ldmatrix) into segments.
// A segment is one loop over the block's threads (tz, ty, tx): all threads
// reach the next point before any passes it, which is what a barrier asks
// and a legal schedule for warps that sync more often. A value one segment
// defines and a later one reads lives per thread in a host buffer
// [threads]; view ops (subview, view, dim, ...) and constants are
// recomputed instead. An scf.for or scf.if that holds a synchronization
// point must have the same bounds or condition in every thread of the
// block (as on the GPU, where every thread must reach a barrier): it runs
// once per block, reading thread 0's values, and its body is cut the same
// way; its iteration arguments and results live per thread.
//
// A warp collective gathers the operands of a warp's 32 lanes and computes
// what the PTX ISA specifies for them: shfl.sync as upstream lowers
// gpu.shuffle, mma.sync with its fragments laid out as the ISA's figures
// for m16n8k8/m16n8k16 (f16, bf16) and m16n8k4/m16n8k8 (tf32) show,
// ldmatrix's 8x8 tiles with the lanes that address their rows. Shared
// memory is one host buffer per launch.
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/EmulateGpuLaunch.h"
#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/Utils/GPUUtils.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Utils/StaticValueUtils.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/CallInterfaces.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "mlir/Transforms/RegionUtils.h"
#include "llvm/ADT/TypeSwitch.h"

#include <map>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCEMULATEGPULAUNCHPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
constexpr int64_t kWarp = 32;

bool isWarpCollective(Operation *op) {
  return isa<gpu::ShuffleOp, gpu::SubgroupReduceOp, nvgpu::MmaSyncOp,
             nvgpu::LdMatrixOp>(op);
}
bool isSyncPoint(Operation *op) {
  return isa<gpu::BarrierOp>(op) || isWarpCollective(op);
}
bool isIdOp(Operation *op) {
  return isa<gpu::ThreadIdOp, gpu::BlockIdOp, gpu::BlockDimOp, gpu::GridDimOp,
             gpu::LaneIdOp>(op);
}
/// Async copies run as plain copies where they are issued; their groups
/// and waits have nothing left to do.
bool isAsyncCopyOp(Operation *op) {
  return isa<nvgpu::DeviceAsyncCopyOp, nvgpu::DeviceAsyncCreateGroupOp,
             nvgpu::DeviceAsyncWaitOp>(op);
}
/// gpu and nvgpu ops the emulation models; any other is refused.
bool isModelled(Operation *op) {
  return isSyncPoint(op) || isIdOp(op) || isAsyncCopyOp(op) ||
         isa<gpu::TerminatorOp, gpu::DynamicSharedMemoryOp>(op);
}
/// Shared and private memory: host memory when emulated.
bool isKernelMemorySpace(Attribute space) {
  if (auto gpuSpace = dyn_cast_or_null<gpu::AddressSpaceAttr>(space))
    return gpuSpace.getValue() != gpu::AddressSpace::Global;
  if (auto n = dyn_cast_or_null<IntegerAttr>(space))
    return n.getInt() == 3 || n.getInt() == 5;
  return false;
}
/// Shared memory declared as a global (get_global of a workgroup global):
/// only attributions and dynamic shared memory become host buffers.
bool isKernelGlobal(Operation *op) {
  auto global = dyn_cast<memref::GetGlobalOp>(op);
  return global && isKernelMemorySpace(global.getType().getMemorySpace());
}

/// Types a per-thread host buffer can hold.
bool isStorable(Type t) {
  if (auto v = dyn_cast<VectorType>(t)) {
    // A buffer of 0-D vectors has no LLVM lowering.
    if (v.getRank() == 0)
      return false;
    t = v.getElementType();
  }
  return isa<IntegerType, IndexType, FloatType>(t);
}
/// Recomputed where it is used instead of kept per thread: constants, and
/// side-effect-free ops with a result no buffer can hold (memref views).
bool isRecomputed(Operation *op) {
  if (!op || op->getNumRegions() || !isMemoryEffectFree(op) || isIdOp(op))
    return false;
  return op->hasTrait<OpTrait::ConstantLike>() ||
         llvm::any_of(op->getResultTypes(),
                      [](Type t) { return !isStorable(t); });
}
Type hostType(Type t) {
  auto m = dyn_cast<MemRefType>(t);
  if (!m || !isKernelMemorySpace(m.getMemorySpace()))
    return t;
  return MemRefType::get(m.getShape(), m.getElementType(), m.getLayout());
}

/// mma.sync operand fragments (PTX ISA, "Matrix Fragments for mma.m16n8k*"):
/// lane l, group g = l / 4, t = l mod 4; `epr` elements of the operand per
/// 32-bit register (2 for f16/bf16, 1 for tf32).
///   A [16, k], register r, element e: row g + 8 (r mod 2),
///                                     col t·epr + e + 4·epr·(r / 2)
///   B [k, 8],  register r, element e: row t·epr + e + 4·epr·r, col g
///   C, D [16, 8], register r, element e: row g + 8 r, col 2 t + e
enum class Fragment { A, B, C };

struct Emulator {
  gpu::LaunchOp launch;
  bool deallocate;
  Location loc;
  Block *body;

  // Analysis.
  DenseMap<Operation *, unsigned> segmentOf;
  DenseSet<Value> escaping;
  DenseMap<Value, bool> varyingResult;
  bool hasWarpOps = false;
  // Sync points and the ops that hold one (filled once, before the rest of
  // the analysis asks).
  DenseSet<Operation *> syncHolders;

  // Emission.
  OpBuilder top; // before the grid loops: scratch buffers
  Value blockSize[3], threads;
  std::optional<int64_t> staticThreads;
  IRMapping uniform; // body values that are the same host value everywhere
  DenseMap<Value, Value> slots;
  SmallVector<Value> scratch;
  std::map<std::tuple<int, int64_t, int64_t>, Value> mmaTiles;

  Emulator(gpu::LaunchOp launch, bool deallocate)
      : launch(launch), deallocate(deallocate), loc(launch.getLoc()),
        body(&launch.getBody().front()), top(launch) {}

  //===--------------------------------------------------------------------===//
  // Analysis: what can be emulated, which values cross a sync point.
  //===--------------------------------------------------------------------===//

  bool holdsSync(Operation *op) const { return syncHolders.contains(op); }

  InFlightDiagnostic refuse() {
    return launch.emitOpError()
           << "posenc-emulate-gpu-launch: cannot run on the host: ";
  }

  bool isThreadId(Value v) {
    auto arg = dyn_cast<BlockArgument>(v);
    if (!arg || arg.getOwner() != body)
      return false;
    gpu::KernelDim3 ids = launch.getThreadIds();
    return v == ids.x || v == ids.y || v == ids.z;
  }

  /// Whether `v` may differ between the threads of a block (conservative).
  bool varying(Value v) {
    if (!launch.getBody().isAncestor(v.getParentRegion()))
      return false;
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      if (arg.getOwner() == body)
        return isThreadId(v);
      // A synchronized loop's induction variable is the same in every
      // thread; its other arguments, and those of other blocks, may not be.
      auto loop = dyn_cast<scf::ForOp>(arg.getOwner()->getParentOp());
      return !(loop && holdsSync(loop) && v == loop.getInductionVar());
    }
    auto it = varyingResult.find(v);
    return it == varyingResult.end() || it->second;
  }

  void computeVarying() {
    DenseMap<Operation *, bool> opVarying;
    launch.getBody().walk<WalkOrder::PostOrder>([&](Operation *op) {
      bool v = isWarpCollective(op) || isa<gpu::ThreadIdOp, gpu::LaneIdOp>(op);
      // What an op writes or allocates may differ per thread (atomics).
      if (!v && !isMemoryEffectFree(op)) {
        auto effects = dyn_cast<MemoryEffectOpInterface>(op);
        v = !effects || effects.hasEffect<MemoryEffects::Write>() ||
            effects.hasEffect<MemoryEffects::Allocate>();
      }
      for (Value operand : op->getOperands())
        v = v || varying(operand);
      for (Region &r : op->getRegions())
        r.walk([&](Operation *inner) {
          v = v || opVarying.lookup(inner);
          for (Value operand : inner->getOperands())
            v = v ||
                (!op->isAncestor(operand.getParentRegion()->getParentOp()) &&
                 varying(operand));
        });
      opVarying[op] = v;
      for (Value result : op->getResults())
        varyingResult[result] = v;
    });
  }

  /// Cuts `block` into segments and checks what crosses their ends.
  LogicalResult analyzeBlock(Block &block, unsigned &nextSegment) {
    bool open = false;
    for (Operation &op : block.without_terminator()) {
      if (!holdsSync(&op)) {
        if (!open)
          ++nextSegment;
        open = true;
        segmentOf[&op] = nextSegment;
        continue;
      }
      open = false;
      if (isSyncPoint(&op)) {
        if (failed(checkCollective(&op)))
          return failure();
        continue;
      }
      // A structured op holding a sync point runs once per block.
      Operation *sync = nullptr;
      op.walk([&](Operation *inner) {
        if (!sync && isSyncPoint(inner))
          sync = inner;
      });
      auto describe = [&]() {
        InFlightDiagnostic diag = refuse();
        diag << "'" << op.getName() << "' holds '" << sync->getName() << "'";
        return diag;
      };
      if (!isa<scf::ForOp, scf::IfOp>(op)) {
        describe() << "; only scf.for and scf.if may hold a barrier or a warp "
                      "collective";
        return failure();
      }
      SmallVector<Value> mustAgree;
      if (auto loop = dyn_cast<scf::ForOp>(op)) {
        mustAgree = {loop.getLowerBound(), loop.getUpperBound(),
                     loop.getStep()};
        for (BlockArgument arg : loop.getRegionIterArgs())
          if (!isStorable(arg.getType())) {
            describe() << " and carries a " << arg.getType()
                       << " value, which cannot be kept per thread";
            return failure();
          }
      } else {
        mustAgree = {cast<scf::IfOp>(op).getCondition()};
      }
      for (Type t : op.getResultTypes())
        if (!isStorable(t)) {
          describe() << " and yields a " << t
                     << " value, which cannot be kept per thread";
          return failure();
        }
      if (llvm::any_of(mustAgree, [&](Value v) { return varying(v); })) {
        describe()
            << (isa<scf::ForOp>(op) ? " and its bounds" : " and its condition")
            << " may differ between the threads of a block; every thread "
               "must reach a barrier or warp collective together";
        return failure();
      }
      for (Region &r : op.getRegions())
        for (Block &inner : r)
          if (failed(analyzeBlock(inner, nextSegment)))
            return failure();
    }
    return success();
  }

  LogicalResult checkCollective(Operation *op) {
    if (auto ld = dyn_cast<nvgpu::LdMatrixOp>(op)) {
      if (varying(ld.getSrcMemref())) {
        refuse() << "the memref of '" << op->getName()
                 << "' may differ between lanes";
        return failure();
      }
      return success();
    }
    if (auto reduce = dyn_cast<gpu::SubgroupReduceOp>(op)) {
      int64_t span =
          reduce.getClusterSize().value_or(kWarp) * reduce.getClusterStride();
      if (span <= kWarp)
        return success();
      refuse() << "'" << op->getName() << "' has clusters of "
               << reduce.getClusterSize().value_or(kWarp) << " lanes "
               << reduce.getClusterStride() << " apart, beyond a warp of "
               << kWarp;
      return failure();
    }
    auto mma = dyn_cast<nvgpu::MmaSyncOp>(op);
    if (!mma || mmaElementsPerRegister(mma))
      return success();
    refuse()
        << "'" << op->getName() << "' with shape " << mma.getMmaShapeAttr()
        << " on " << mma.getMatrixA().getType() << " x "
        << mma.getMatrixB().getType() << " + " << mma.getMatrixC().getType()
        << " is not modelled (m16n8k8 and m16n8k16 on f16 or bf16, "
           "m16n8k4 and m16n8k8 on tf32, f32 accumulators or f16 ones for f16)";
    return failure();
  }

  /// f16/bf16: 2, tf32: 1, or 0 for shapes and types not modelled.
  static int64_t mmaElementsPerRegister(nvgpu::MmaSyncOp mma) {
    std::array<int64_t, 3> mnk = mma.getMmaShapeAsArray();
    Type a = mma.getMatrixA().getType().getElementType();
    Type c = mma.getMatrixC().getType().getElementType();
    int64_t epr = 0, k = mnk[2];
    if ((a.isF16() || a.isBF16()) && (k == 8 || k == 16))
      epr = 2;
    else if (a.isF32() && mma.getTf32Enabled() && (k == 4 || k == 8))
      epr = 1;
    // PTX has f16 accumulators for f16 operands only.
    if (!epr || mnk[0] != 16 || mnk[1] != 8 ||
        !(c.isF32() || (c.isF16() && a.isF16())))
      return 0;
    auto shaped = [](VectorType t, int64_t regs, int64_t perReg) {
      return t.getShape() == ArrayRef<int64_t>{regs, perReg};
    };
    if (!shaped(mma.getMatrixA().getType(), 16 * k / (kWarp * epr), epr) ||
        !shaped(mma.getMatrixB().getType(), 8 * k / (kWarp * epr), epr) ||
        !shaped(mma.getMatrixC().getType(), 2, 2))
      return 0;
    return epr;
  }

  LogicalResult analyze() {
    if (!launch.getBody().hasOneBlock()) {
      refuse() << "its body has more than one block";
      return failure();
    }
    if (launch.getAsyncToken() || !launch.getAsyncDependencies().empty()) {
      refuse() << "it is asynchronous";
      return failure();
    }
    if (launch.hasClusterSize()) {
      refuse() << "it has thread block clusters";
      return failure();
    }
    if (!launch.getPrivateAttributions().empty()) {
      refuse() << "it has private memory attributions";
      return failure();
    }
    Operation *unknown = nullptr;
    launch.getBody().walk([&](Operation *op) {
      if (!unknown && ((isa_and_nonnull<gpu::GPUDialect, nvgpu::NVGPUDialect,
                                        NVVM::NVVMDialect>(op->getDialect()) &&
                        !isModelled(op)) ||
                       isa<CallOpInterface>(op) || isKernelGlobal(op)))
        unknown = op;
    });
    if (unknown) {
      refuse() << "it uses '" << unknown->getName()
               << "', which the emulation does not model";
      return failure();
    }
    Operation *tokenUser = nullptr;
    launch.getBody().walk([&](Operation *op) {
      if (!isa<nvgpu::DeviceAsyncCopyOp, nvgpu::DeviceAsyncCreateGroupOp>(op))
        return;
      for (Operation *user : op->getResult(0).getUsers())
        if (!tokenUser &&
            !isa<nvgpu::DeviceAsyncCreateGroupOp, nvgpu::DeviceAsyncWaitOp>(
                user))
          tokenUser = user;
    });
    if (tokenUser) {
      refuse() << "an async copy token reaches '" << tokenUser->getName()
               << "'; only nvgpu.device_async_create_group and "
                  "nvgpu.device_async_wait may take one";
      return failure();
    }
    launch.getBody().walk([&](Operation *op) {
      if (!isSyncPoint(op))
        return;
      hasWarpOps |= isWarpCollective(op);
      for (Operation *at = op; at != launch && syncHolders.insert(at).second;)
        at = at->getParentOp();
    });
    computeVarying();
    unsigned segments = 0;
    if (failed(analyzeBlock(*body, segments)))
      return failure();

    // Values read outside the segment that defines them, then (through
    // recomputed ops) the values those are recomputed from.
    SmallVector<Value> worklist;
    auto mark = [&](Value v) {
      if (escaping.insert(v).second)
        worklist.push_back(v);
    };
    for (auto [op, segment] : segmentOf)
      for (Value result : op->getResults())
        for (Operation *user : result.getUsers()) {
          Operation *at = op->getBlock()->findAncestorOpInBlock(*user);
          if (!at || segmentOf.lookup(at) != segment)
            mark(result);
        }
    while (!worklist.empty()) {
      Value v = worklist.pop_back_val();
      Operation *def = v.getDefiningOp();
      // Shared memory is one buffer for all threads; async tokens only
      // order copies that have already happened.
      if (!def || !segmentOf.contains(def) ||
          isa<gpu::DynamicSharedMemoryOp>(def) || isAsyncCopyOp(def))
        continue;
      if (!isRecomputed(def)) {
        if (!isStorable(v.getType())) {
          refuse() << "a " << v.getType() << " value of '" << def->getName()
                   << "' is live across a barrier or warp collective; only "
                      "scalars, vectors and side-effect-free views can be";
          return failure();
        }
        continue;
      }
      for (Value operand : def->getOperands())
        mark(operand);
    }

    // Warp collectives need whole warps.
    if (hasWarpOps) {
      gpu::KernelDim3 sizes = launch.getBlockSizeOperandValues();
      int64_t n = 1;
      for (Value s : {sizes.x, sizes.y, sizes.z}) {
        std::optional<int64_t> c = getConstantIntValue(s);
        n = c ? n * *c : -1;
        if (n < 0)
          break;
      }
      if (n <= 0 || n % kWarp) {
        refuse() << "a warp collective needs a static block of whole warps "
                    "(a multiple of 32 threads)";
        return failure();
      }
    }
    return success();
  }

  //===--------------------------------------------------------------------===//
  // Emission.
  //===--------------------------------------------------------------------===//

  /// Where per-thread code is built: a builder, the body values already
  /// available there, and the thread's ids (computed on first use).
  struct Ctx {
    OpBuilder b;
    IRMapping local;
    Value linear;
    std::array<Value, 3> ids;
  };

  Value cst(OpBuilder &b, int64_t v) {
    return arith::ConstantIndexOp::create(b, loc, v);
  }

  Value linearId(Ctx &ctx) {
    if (!ctx.linear) {
      // tx + bx·(ty + by·tz)
      Value yz = arith::AddIOp::create(
          ctx.b, loc, ctx.ids[1],
          arith::MulIOp::create(ctx.b, loc, blockSize[1], ctx.ids[2]));
      ctx.linear = arith::AddIOp::create(
          ctx.b, loc, ctx.ids[0],
          arith::MulIOp::create(ctx.b, loc, blockSize[0], yz));
    }
    return ctx.linear;
  }

  /// The thread's id along `dim`, from its linear id when not given.
  Value threadId(Ctx &ctx, unsigned dim) {
    if (!ctx.ids[dim]) {
      Value t = ctx.linear;
      for (unsigned d = 0; d < dim; ++d)
        t = arith::DivUIOp::create(ctx.b, loc, t, blockSize[d]);
      ctx.ids[dim] = arith::RemUIOp::create(ctx.b, loc, t, blockSize[dim]);
    }
    return ctx.ids[dim];
  }

  Value slotFor(Value v) {
    Value &slot = slots[v];
    if (!slot) {
      auto ty = MemRefType::get(
          {staticThreads ? *staticThreads : ShapedType::kDynamic}, v.getType());
      slot = memref::AllocOp::create(
          top, loc, ty, staticThreads ? ValueRange{} : ValueRange{threads});
      scratch.push_back(slot);
    }
    return slot;
  }

  /// `v` as the thread of `ctx` sees it.
  Value get(Ctx &ctx, Value v) {
    if (Value m = ctx.local.lookupOrNull(v))
      return m;
    if (!launch.getBody().isAncestor(v.getParentRegion()))
      return v;
    // Cloned ops read their operands through ctx.local.
    Value result;
    if (Value m = uniform.lookupOrNull(v)) {
      result = m;
    } else if (isThreadId(v)) {
      gpu::KernelDim3 ids = launch.getThreadIds();
      result = threadId(ctx, v == ids.x ? 0 : v == ids.y ? 1 : 2);
    } else if (auto it = slots.find(v); it != slots.end()) {
      result = memref::LoadOp::create(ctx.b, loc, it->second,
                                      ValueRange{linearId(ctx)});
    } else {
      Operation *def = v.getDefiningOp();
      assert(def && isRecomputed(def) && "analysis missed a crossing value");
      for (Value operand : def->getOperands())
        get(ctx, operand);
      Operation *copy = ctx.b.clone(*def, ctx.local);
      fixTypes(copy);
      return ctx.local.lookup(v);
    }
    ctx.local.map(v, result);
    return result;
  }

  /// `v` as thread `t` (a linear id) sees it: per-thread values from their
  /// buffer, others are the same in every thread.
  Value getAt(Ctx &ctx, Value v, Value t) {
    if (isThreadId(v)) {
      Ctx other{OpBuilder(ctx.b), {}, t, {}};
      return get(other, v);
    }
    auto it = slots.find(v);
    if (it == slots.end())
      return get(ctx, v);
    return memref::LoadOp::create(ctx.b, loc, it->second, ValueRange{t});
  }

  void store(Ctx &ctx, Value value, Value of) {
    memref::StoreOp::create(ctx.b, loc, value, slotFor(of),
                            ValueRange{linearId(ctx)});
  }

  /// Kernel memory is host memory: drop shared/private address spaces from
  /// what `op` (and its regions) define.
  static void fixTypes(Operation *op) {
    op->walk([](Operation *inner) {
      for (Value r : inner->getResults())
        r.setType(hostType(r.getType()));
      for (Region &region : inner->getRegions())
        for (Block &block : region)
          for (BlockArgument arg : block.getArguments())
            arg.setType(hostType(arg.getType()));
    });
  }

  /// for tz, ty, tx in the block: body(ctx).
  void threadLoop(OpBuilder &hb, function_ref<void(Ctx &)> bodyFn) {
    OpBuilder::InsertionGuard guard(hb);
    std::array<Value, 3> ids;
    for (int d = 2; d >= 0; --d) {
      auto loop =
          scf::ForOp::create(hb, loc, cst(hb, 0), blockSize[d], cst(hb, 1));
      ids[d] = loop.getInductionVar();
      hb.setInsertionPoint(loop.getBody()->getTerminator());
    }
    Ctx ctx{OpBuilder(hb), {}, Value(), ids};
    bodyFn(ctx);
  }

  /// Values of the block as thread 0 sees them, at `hb`: the bounds and
  /// conditions the analysis proved the same in every thread.
  Ctx hostCtx(OpBuilder &hb) {
    Value zero = cst(hb, 0);
    return Ctx{OpBuilder(hb), {}, zero, {zero, zero, zero}};
  }

  void cloneInThread(Ctx &ctx, Operation &op) {
    if (auto copy = dyn_cast<nvgpu::DeviceAsyncCopyOp>(op))
      return emitAsyncCopy(ctx, copy);
    if (isAsyncCopyOp(&op))
      return;
    if (auto alloca = dyn_cast<memref::AllocaOp>(op);
        alloca && alloca.getType().hasStaticShape()) {
      // A thread's private buffer lives within its iteration of the
      // segment (one crossing a sync point is refused), so one host buffer
      // serves every thread, and the host stack does not grow with the
      // number of threads.
      auto ty = cast<MemRefType>(hostType(alloca.getType()));
      Value mem =
          memref::AllocOp::create(top, loc, ty, alloca.getAlignmentAttr());
      scratch.push_back(mem);
      ctx.local.map(alloca.getResult(), mem);
      return;
    }
    if (isIdOp(&op)) {
      ctx.local.map(op.getResult(0), idValue(ctx, &op));
    } else if (op.getNumResults() &&
               llvm::all_of(op.getResults(),
                            [&](Value r) { return uniform.contains(r); })) {
      return;
    } else {
      SetVector<Value> used(op.operand_begin(), op.operand_end());
      getUsedValuesDefinedAbove(op.getRegions(), used);
      for (Value v : used)
        get(ctx, v);
      Operation *clone = ctx.b.clone(op, ctx.local);
      fixTypes(clone);
      lowerNestedAsyncCopies(clone);
    }
    if (isRecomputed(&op))
      return;
    for (Value r : op.getResults())
      if (escaping.contains(r))
        store(ctx, ctx.local.lookup(r), r);
  }

  /// dst[.., j + i] = i < srcElements ? src[.., k + i] : 0 for i below
  /// dstElements (the zero fill of cp.async's src-size).
  void emitAsyncCopy(Ctx &ctx, nvgpu::DeviceAsyncCopyOp copy) {
    SmallVector<Value> from, to;
    for (Value v : copy.getSrcIndices())
      from.push_back(get(ctx, v));
    for (Value v : copy.getDstIndices())
      to.push_back(get(ctx, v));
    Value valid =
        copy.getSrcElements() ? get(ctx, copy.getSrcElements()) : Value();
    emitCopyLoop(ctx.b, copy, get(ctx, copy.getSrc()), from,
                 get(ctx, copy.getDst()), to, valid);
  }

  /// The async copy ops inside `root`, a region op cloned into a thread
  /// (their operands are the thread's already): copies become copy loops,
  /// groups and waits go.
  void lowerNestedAsyncCopies(Operation *root) {
    SmallVector<Operation *> ops;
    root->walk([&](Operation *op) {
      if (op != root && isAsyncCopyOp(op))
        ops.push_back(op);
    });
    for (Operation *op : ops)
      if (auto copy = dyn_cast<nvgpu::DeviceAsyncCopyOp>(op)) {
        OpBuilder b(copy);
        emitCopyLoop(b, copy, copy.getSrc(), copy.getSrcIndices(),
                     copy.getDst(), copy.getDstIndices(),
                     copy.getSrcElements());
      }
    // Token users (groups, then waits) before the tokens' definitions.
    for (Operation *op : llvm::reverse(ops)) {
      for (Value r : op->getResults())
        for (OpOperand &use : llvm::make_early_inc_range(r.getUses()))
          use.getOwner()->eraseOperand(use.getOperandNumber());
      op->erase();
    }
  }

  void emitCopyLoop(OpBuilder &b, nvgpu::DeviceAsyncCopyOp copy, Value src,
                    ValueRange fromIdx, Value dst, ValueRange toIdx,
                    Value valid) {
    SmallVector<Value> from(fromIdx), to(toIdx);
    int64_t n = copy.getDstElements().getZExtValue();
    if (!valid)
      valid = cst(b, n);
    Type elemTy = copy.getDst().getType().getElementType();
    Value lastFrom = from.back(), lastTo = to.back();
    scf::ForOp::create(
        b, loc, cst(b, 0), cst(b, n), cst(b, 1), ValueRange{},
        [&](OpBuilder &lb, Location, Value i, ValueRange) {
          Value inSrc = arith::CmpIOp::create(
              lb, loc, arith::CmpIPredicate::ult, i, valid);
          auto read = scf::IfOp::create(
              lb, loc, inSrc,
              [&](OpBuilder &tb, Location) {
                from.back() = arith::AddIOp::create(tb, loc, lastFrom, i);
                scf::YieldOp::create(
                    tb, loc,
                    ValueRange{memref::LoadOp::create(tb, loc, src, from)});
              },
              [&](OpBuilder &eb, Location) {
                scf::YieldOp::create(eb, loc,
                                     ValueRange{arith::ConstantOp::create(
                                         eb, loc, eb.getZeroAttr(elemTy))});
              });
          to.back() = arith::AddIOp::create(lb, loc, lastTo, i);
          memref::StoreOp::create(lb, loc, read.getResult(0), dst, to);
          scf::YieldOp::create(lb, loc);
        });
  }

  Value idValue(Ctx &ctx, Operation *op) {
    auto dimOf = [](gpu::Dimension d) { return unsigned(d); };
    if (auto id = dyn_cast<gpu::ThreadIdOp>(op))
      return threadId(ctx, dimOf(id.getDimension()));
    if (isa<gpu::LaneIdOp>(op))
      return arith::RemUIOp::create(ctx.b, loc, linearId(ctx),
                                    cst(ctx.b, kWarp));
    gpu::KernelDim3 dims[3] = {launch.getBlockIds(), launch.getBlockSize(),
                               launch.getGridSize()};
    unsigned which = isa<gpu::BlockIdOp>(op)    ? 0
                     : isa<gpu::BlockDimOp>(op) ? 1
                                                : 2;
    gpu::Dimension d =
        TypeSwitch<Operation *, gpu::Dimension>(op)
            .Case<gpu::BlockIdOp, gpu::BlockDimOp, gpu::GridDimOp>(
                [](auto o) { return o.getDimension(); });
    Value arg = d == gpu::Dimension::x   ? dims[which].x
                : d == gpu::Dimension::y ? dims[which].y
                                         : dims[which].z;
    return uniform.lookup(arg);
  }

  /// Emits `block` at `hb`; its terminator's operands go to `yieldSlots`.
  void emitBlock(Block &block, OpBuilder &hb, ArrayRef<Value> yieldSlots) {
    SmallVector<Operation *> segment;
    auto flush = [&]() {
      if (segment.empty())
        return;
      threadLoop(hb, [&](Ctx &ctx) {
        for (Operation *op : segment)
          cloneInThread(ctx, *op);
      });
      segment.clear();
    };
    for (Operation &op : block.without_terminator()) {
      if (segmentOf.contains(&op)) {
        segment.push_back(&op);
        continue;
      }
      flush();
      if (auto loop = dyn_cast<scf::ForOp>(op))
        emitFor(hb, loop);
      else if (auto branch = dyn_cast<scf::IfOp>(op))
        emitIf(hb, branch);
      else if (auto shuffle = dyn_cast<gpu::ShuffleOp>(op))
        emitShuffle(hb, shuffle);
      else if (auto reduce = dyn_cast<gpu::SubgroupReduceOp>(op))
        emitSubgroupReduce(hb, reduce);
      else if (auto mma = dyn_cast<nvgpu::MmaSyncOp>(op))
        emitMma(hb, mma);
      else if (auto ld = dyn_cast<nvgpu::LdMatrixOp>(op))
        emitLdMatrix(hb, ld);
      // gpu.barrier: the end of the segment is all it takes.
    }
    flush();
    if (yieldSlots.empty())
      return;
    threadLoop(hb, [&](Ctx &ctx) {
      // Read every yielded value before writing any: a loop may yield its
      // arguments swapped.
      SmallVector<Value> values;
      for (Value v : block.getTerminator()->getOperands())
        values.push_back(get(ctx, v));
      for (auto [v, slot] : llvm::zip(values, yieldSlots))
        memref::StoreOp::create(ctx.b, loc, v, slot, ValueRange{linearId(ctx)});
    });
  }

  void emitFor(OpBuilder &hb, scf::ForOp loop) {
    SmallVector<Value> carried;
    for (auto [arg, result] :
         llvm::zip(loop.getRegionIterArgs(), loop.getResults())) {
      carried.push_back(slotFor(arg));
      slots[result] = carried.back();
    }
    if (!carried.empty())
      threadLoop(hb, [&](Ctx &ctx) {
        for (auto [init, slot] : llvm::zip(loop.getInitArgs(), carried))
          memref::StoreOp::create(ctx.b, loc, get(ctx, init), slot,
                                  ValueRange{linearId(ctx)});
      });
    Ctx host = hostCtx(hb);
    auto hostLoop = scf::ForOp::create(hb, loc, get(host, loop.getLowerBound()),
                                       get(host, loop.getUpperBound()),
                                       get(host, loop.getStep()));
    hostLoop.setUnsignedCmp(loop.getUnsignedCmp());
    uniform.map(loop.getInductionVar(), hostLoop.getInductionVar());
    OpBuilder inner(hostLoop.getBody()->getTerminator());
    emitBlock(*loop.getBody(), inner, carried);
  }

  void emitIf(OpBuilder &hb, scf::IfOp branch) {
    SmallVector<Value> results;
    for (Value r : branch.getResults())
      results.push_back(slotFor(r));
    Ctx host = hostCtx(hb);
    bool hasElse = !branch.getElseRegion().empty();
    auto hostIf = scf::IfOp::create(hb, loc, TypeRange{},
                                    get(host, branch.getCondition()), hasElse);
    OpBuilder thenB(hostIf.thenBlock()->getTerminator());
    emitBlock(*branch.thenBlock(), thenB, results);
    if (hasElse) {
      OpBuilder elseB(hostIf.elseBlock()->getTerminator());
      emitBlock(*branch.elseBlock(), elseB, results);
    }
  }

  /// gpu.shuffle as upstream lowers it to shfl.sync (membermask: the first
  /// `width` lanes; clamp `width - 1`, or `32 - width` for up):
  ///   xor: j = l ^ off, down: j = l + off, idx: j = off, valid: j < width
  ///   up: j = l - off, valid: j >= 32 - width
  /// with off the offset's low 5 bits; an invalid j reads the lane itself.
  void emitShuffle(OpBuilder &hb, gpu::ShuffleOp op) {
    threadLoop(hb, [&](Ctx &ctx) {
      OpBuilder &b = ctx.b;
      Type i32 = b.getI32Type();
      auto c32 = [&](int32_t v) {
        return arith::ConstantOp::create(b, loc, b.getI32IntegerAttr(v));
      };
      Value t = linearId(ctx);
      Value lane = arith::IndexCastOp::create(
          b, loc, i32, arith::RemUIOp::create(b, loc, t, cst(b, kWarp)));
      Value off = arith::AndIOp::create(b, loc, get(ctx, op.getOffset()),
                                        c32(kWarp - 1));
      Value width = get(ctx, op.getWidth());
      Value j, valid;
      using P = arith::CmpIPredicate;
      switch (op.getMode()) {
      case gpu::ShuffleMode::XOR:
        j = arith::XOrIOp::create(b, loc, lane, off);
        break;
      case gpu::ShuffleMode::DOWN:
        j = arith::AddIOp::create(b, loc, lane, off);
        break;
      case gpu::ShuffleMode::IDX:
        j = off;
        break;
      case gpu::ShuffleMode::UP:
        j = arith::SubIOp::create(b, loc, lane, off);
        valid = arith::CmpIOp::create(
            b, loc, P::sge, j, arith::SubIOp::create(b, loc, c32(32), width));
        break;
      }
      if (!valid)
        valid = arith::CmpIOp::create(b, loc, P::slt, j, width);
      Value src = arith::SelectOp::create(b, loc, valid, j, lane);
      Value srcT = arith::AddIOp::create(
          b, loc,
          arith::SubIOp::create(
              b, loc, t,
              arith::IndexCastOp::create(b, loc, b.getIndexType(), lane)),
          arith::IndexCastOp::create(b, loc, b.getIndexType(), src));
      Value value = getAt(ctx, op.getValue(), srcT);
      if (!op.getShuffleResult().use_empty())
        store(ctx, value, op.getShuffleResult());
      if (!op.getValid().use_empty())
        store(ctx, valid, op.getValid());
    });
  }

  /// gpu.subgroup_reduce: lane l reduces the `size` lanes of its cluster,
  /// first + i·stride with first = l's lane with its cluster index cleared,
  /// as a pairwise tree.
  void emitSubgroupReduce(OpBuilder &hb, gpu::SubgroupReduceOp op) {
    int64_t size = op.getClusterSize().value_or(kWarp);
    int64_t stride = op.getClusterStride();
    vector::CombiningKind kind = gpu::convertReductionKind(op.getOp());
    threadLoop(hb, [&](Ctx &ctx) {
      OpBuilder &b = ctx.b;
      Value t = linearId(ctx);
      Value lane = arith::RemUIOp::create(b, loc, t, cst(b, kWarp));
      Value span = cst(b, size * stride);
      Value first = arith::AddIOp::create(
          b, loc, arith::SubIOp::create(b, loc, t, lane),
          arith::AddIOp::create(
              b, loc,
              arith::MulIOp::create(
                  b, loc, arith::DivUIOp::create(b, loc, lane, span), span),
              arith::RemUIOp::create(b, loc, lane, cst(b, stride))));
      SmallVector<Value> values;
      for (int64_t i = 0; i < size; ++i)
        values.push_back(
            getAt(ctx, op.getValue(),
                  arith::AddIOp::create(b, loc, first, cst(b, i * stride))));
      // Pairs of neighbours first, as the xor butterfly upstream lowers
      // the op to combines them (offsets stride, 2 stride, ...).
      while (values.size() > 1) {
        SmallVector<Value> next;
        for (size_t i = 0; i + 1 < values.size(); i += 2)
          next.push_back(vector::makeArithReduction(b, loc, kind, values[i],
                                                    values[i + 1]));
        values = std::move(next);
      }
      store(ctx, values.front(), op.getResult());
    });
  }

  /// (row, col) of element (r, e) of lane `lane`'s fragment.
  std::pair<Value, Value> fragmentAt(OpBuilder &b, Fragment f, Value lane,
                                     int64_t r, int64_t e, int64_t epr) {
    auto add = [&](Value x, int64_t c) {
      return arith::AddIOp::create(b, loc, x, cst(b, c)).getResult();
    };
    Value g = arith::DivUIOp::create(b, loc, lane, cst(b, 4));
    Value t = arith::RemUIOp::create(b, loc, lane, cst(b, 4));
    switch (f) {
    case Fragment::A: {
      Value col = arith::MulIOp::create(b, loc, t, cst(b, epr));
      return {add(g, 8 * (r % 2)), add(col, e + 4 * epr * (r / 2))};
    }
    case Fragment::B: {
      Value row = arith::MulIOp::create(b, loc, t, cst(b, epr));
      return {add(row, e + 4 * epr * r), g};
    }
    case Fragment::C: {
      Value col = arith::MulIOp::create(b, loc, t, cst(b, 2));
      return {add(g, 8 * r), add(col, e)};
    }
    }
    llvm_unreachable("fragment");
  }

  /// The f32 [rows, cols] host tile of operand `f` of a warp's mma.
  Value tile(Fragment f, int64_t rows, int64_t cols) {
    Value &m = mmaTiles[{int(f), rows, cols}];
    if (!m) {
      m = memref::AllocOp::create(
          top, loc, MemRefType::get({rows, cols}, top.getF32Type()));
      scratch.push_back(m);
    }
    return m;
  }

  /// Lane loop of warp `w`: body(ctx, lane) with ctx's thread w·32 + lane.
  void laneLoop(OpBuilder &hb, Value w,
                function_ref<void(Ctx &, Value lane)> bodyFn) {
    OpBuilder::InsertionGuard guard(hb);
    auto loop =
        scf::ForOp::create(hb, loc, cst(hb, 0), cst(hb, kWarp), cst(hb, 1));
    hb.setInsertionPoint(loop.getBody()->getTerminator());
    Value lane = loop.getInductionVar();
    Value t = arith::AddIOp::create(
        hb, loc, arith::MulIOp::create(hb, loc, w, cst(hb, kWarp)), lane);
    Ctx ctx{OpBuilder(hb), {}, t, {}};
    bodyFn(ctx, lane);
  }

  /// for each warp w of the block: body(builder, w).
  void warpLoop(OpBuilder &hb, function_ref<void(OpBuilder &, Value)> bodyFn) {
    OpBuilder::InsertionGuard guard(hb);
    auto loop = scf::ForOp::create(hb, loc, cst(hb, 0),
                                   cst(hb, *staticThreads / kWarp), cst(hb, 1));
    hb.setInsertionPoint(loop.getBody()->getTerminator());
    bodyFn(hb, loop.getInductionVar());
  }

  /// Scatters each lane's fragment of `v` into `tileMem` (as f32; tf32
  /// keeps the 10 mantissa bits the tensor cores read).
  void scatter(OpBuilder &hb, Value w, Value v, Fragment f, int64_t epr,
               bool tf32, Value tileMem) {
    laneLoop(hb, w, [&](Ctx &ctx, Value lane) {
      OpBuilder &b = ctx.b;
      Value frag = getAt(ctx, v, ctx.linear);
      auto ty = cast<VectorType>(v.getType());
      for (int64_t r = 0; r < ty.getDimSize(0); ++r)
        for (int64_t e = 0; e < ty.getDimSize(1); ++e) {
          Value x =
              vector::ExtractOp::create(b, loc, frag, ArrayRef<int64_t>{r, e});
          if (tf32) {
            Type i32 = b.getI32Type();
            Value bits = arith::BitcastOp::create(b, loc, i32, x);
            bits = arith::AndIOp::create(
                b, loc, bits,
                arith::ConstantOp::create(
                    b, loc, b.getI32IntegerAttr(int32_t(0xffffe000u))));
            x = arith::BitcastOp::create(b, loc, b.getF32Type(), bits);
          } else if (!x.getType().isF32()) {
            x = arith::ExtFOp::create(b, loc, b.getF32Type(), x);
          }
          auto [row, col] = fragmentAt(b, f, lane, r, e, epr);
          memref::StoreOp::create(b, loc, x, tileMem, ValueRange{row, col});
        }
    });
  }

  /// D = A·B + C for each warp, f32 products summed in k order.
  void emitMma(OpBuilder &hb, nvgpu::MmaSyncOp op) {
    int64_t epr = mmaElementsPerRegister(op);
    int64_t k = op.getMmaShapeAsArray()[2];
    bool tf32 = epr == 1;
    Value a = tile(Fragment::A, 16, k), b = tile(Fragment::B, k, 8),
          c = tile(Fragment::C, 16, 8);
    warpLoop(hb, [&](OpBuilder &wb, Value w) {
      scatter(wb, w, op.getMatrixA(), Fragment::A, epr, tf32, a);
      scatter(wb, w, op.getMatrixB(), Fragment::B, epr, tf32, b);
      scatter(wb, w, op.getMatrixC(), Fragment::C, 2, false, c);
      laneLoop(wb, w, [&](Ctx &ctx, Value lane) {
        OpBuilder &lb = ctx.b;
        VectorType resTy = op.getRes().getType();
        Value d = arith::ConstantOp::create(lb, loc, lb.getZeroAttr(resTy));
        for (int64_t r = 0; r < 2; ++r)
          for (int64_t e = 0; e < 2; ++e) {
            Value row, col;
            std::tie(row, col) = fragmentAt(lb, Fragment::C, lane, r, e, 2);
            Value init =
                memref::LoadOp::create(lb, loc, c, ValueRange{row, col});
            auto dot = scf::ForOp::create(
                lb, loc, cst(lb, 0), cst(lb, k), cst(lb, 1), ValueRange{init},
                [&](OpBuilder &fb, Location, Value kk, ValueRange acc) {
                  Value x =
                      memref::LoadOp::create(fb, loc, a, ValueRange{row, kk});
                  Value y =
                      memref::LoadOp::create(fb, loc, b, ValueRange{kk, col});
                  Value s = math::FmaOp::create(fb, loc, x, y, acc[0]);
                  scf::YieldOp::create(fb, loc, s);
                });
            Value sum = dot.getResult(0);
            if (!resTy.getElementType().isF32())
              sum =
                  arith::TruncFOp::create(lb, loc, resTy.getElementType(), sum);
            d = vector::InsertOp::create(lb, loc, sum, d,
                                         ArrayRef<int64_t>{r, e});
          }
        store(ctx, d, op.getRes());
      });
    });
  }

  /// ldmatrix: tile i's row r is addressed by lane 8 i + r; lane l gets
  /// of each tile the 32 bits at row l / 4, bytes 4 (l mod 4) on; with
  /// transpose (16-bit elements), those of the transposed tile.
  void emitLdMatrix(OpBuilder &hb, nvgpu::LdMatrixOp op) {
    auto resTy = cast<VectorType>(op.getRes().getType());
    int64_t perLane = resTy.getDimSize(1);
    bool transpose = op.getTranspose();
    threadLoop(hb, [&](Ctx &ctx) {
      OpBuilder &b = ctx.b;
      Value t = linearId(ctx);
      Value lane = arith::RemUIOp::create(b, loc, t, cst(b, kWarp));
      Value base = arith::SubIOp::create(b, loc, t, lane);
      Value rowOfLane = arith::DivUIOp::create(b, loc, lane, cst(b, 4));
      Value quad = arith::RemUIOp::create(b, loc, lane, cst(b, 4));
      Value mem = get(ctx, op.getSrcMemref());
      Value result = arith::ConstantOp::create(b, loc, b.getZeroAttr(resTy));
      for (int64_t i = 0; i < resTy.getDimSize(0); ++i)
        for (int64_t e = 0; e < perLane; ++e) {
          // The addressing lane (its row) and the column within the row.
          Value row, col;
          Value inQuad = arith::AddIOp::create(
              b, loc, arith::MulIOp::create(b, loc, quad, cst(b, perLane)),
              cst(b, e));
          if (transpose) {
            row = inQuad;
            col = rowOfLane;
          } else {
            row = rowOfLane;
            col = inQuad;
          }
          Value src = arith::AddIOp::create(
              b, loc, base, arith::AddIOp::create(b, loc, cst(b, 8 * i), row));
          SmallVector<Value> idx;
          for (Value index : op.getIndices())
            idx.push_back(getAt(ctx, index, src));
          idx.back() = arith::AddIOp::create(b, loc, idx.back(), col);
          Value x = memref::LoadOp::create(b, loc, mem, idx);
          result = vector::InsertOp::create(b, loc, x, result,
                                            ArrayRef<int64_t>{i, e});
        }
      store(ctx, result, op.getRes());
    });
  }

  void run() {
    OpBuilder b(launch);
    gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
    gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
    blockSize[0] = block.x;
    blockSize[1] = block.y;
    blockSize[2] = block.z;
    threads = arith::MulIOp::create(
        b, loc, arith::MulIOp::create(b, loc, block.x, block.y), block.z);
    std::optional<int64_t> x = getConstantIntValue(block.x),
                           y = getConstantIntValue(block.y),
                           z = getConstantIntValue(block.z);
    if (x && y && z)
      staticThreads = *x * *y * *z;

    gpu::KernelDim3 gridArgs = launch.getGridSize(),
                    blockArgs = launch.getBlockSize();
    uniform.map(gridArgs.x, grid.x);
    uniform.map(gridArgs.y, grid.y);
    uniform.map(gridArgs.z, grid.z);
    uniform.map(blockArgs.x, block.x);
    uniform.map(blockArgs.y, block.y);
    uniform.map(blockArgs.z, block.z);

    // Shared memory: one host buffer each, reused by every block (shared
    // memory starts undefined in a block).
    for (BlockArgument arg : launch.getWorkgroupAttributions()) {
      auto ty = cast<MemRefType>(hostType(arg.getType()));
      Value mem = memref::AllocOp::create(b, loc, ty);
      scratch.push_back(mem);
      uniform.map(arg, mem);
    }
    Value dynamicShared;
    launch.getBody().walk([&](gpu::DynamicSharedMemoryOp op) {
      if (!dynamicShared) {
        Value bytes = cst(b, 0);
        if (Value size = launch.getDynamicSharedMemorySize())
          bytes = arith::IndexCastOp::create(b, loc, b.getIndexType(), size);
        dynamicShared = memref::AllocOp::create(
            b, loc, MemRefType::get({ShapedType::kDynamic}, b.getI8Type()),
            ValueRange{bytes}, b.getI64IntegerAttr(64));
        scratch.push_back(dynamicShared);
      }
      uniform.map(op.getResult(), dynamicShared);
    });

    // The grid, z outermost; scratch buffers go before it.
    SmallVector<Value> blockIvs;
    Operation *outer = nullptr;
    for (Value bound : {grid.z, grid.y, grid.x}) {
      auto loop = scf::ForOp::create(b, loc, cst(b, 0), bound, cst(b, 1));
      outer = outer ? outer : loop.getOperation();
      blockIvs.push_back(loop.getInductionVar());
      b.setInsertionPoint(loop.getBody()->getTerminator());
    }
    top.setInsertionPoint(outer);
    gpu::KernelDim3 blockIds = launch.getBlockIds();
    uniform.map(blockIds.z, blockIvs[0]);
    uniform.map(blockIds.y, blockIvs[1]);
    uniform.map(blockIds.x, blockIvs[2]);
    // A block of no threads runs nothing (and has no thread 0 whose
    // values synchronized loops would read).
    if (!staticThreads) {
      Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ne,
                                        threads, cst(b, 0));
      auto guard = scf::IfOp::create(b, loc, any, /*withElseRegion=*/false);
      b.setInsertionPoint(guard.thenBlock()->getTerminator());
    }
    if (staticThreads != 0)
      emitBlock(*body, b, {});

    if (deallocate) {
      OpBuilder after(outer->getBlock(), std::next(outer->getIterator()));
      for (Value mem : scratch)
        memref::DeallocOp::create(after, loc, mem);
    }
    launch.erase();
  }
};

struct PosencEmulateGpuLaunchPass
    : posenc::impl::PosencEmulateGpuLaunchPassBase<PosencEmulateGpuLaunchPass> {
  using Base::Base;
  void runOnOperation() override {
    SmallVector<gpu::LaunchOp> launches;
    getOperation().walk([&](gpu::LaunchOp op) { launches.push_back(op); });
    for (gpu::LaunchOp launch : launches)
      if (failed(posenc::emulateGpuLaunch(launch, deallocate)))
        return signalPassFailure();
  }
};
} // namespace

LogicalResult mlir::posenc::emulateGpuLaunch(gpu::LaunchOp launch,
                                             bool deallocate) {
  Emulator emulator(launch, deallocate);
  if (failed(emulator.analyze()))
    return failure();
  emulator.run();
  return success();
}
