//===- VectorizeMatmul.cpp - posenc-vectorize-matmul ----------------------===//
//
// f32 linalg.matmul on buffers -> register-blocked vector loops:
//
//   for i0 in rows blocks, j0 in column blocks:
//     acc[r][c] = C[i0 + r, j0 + c·w : +w]              (rows x vectors)
//     for k: b[c] = B[k, j0 + c·w : +w]
//            acc[r][c] = fma(broadcast A[i0 + r, k], b[c], acc[r][c])
//     C[...] = acc
//
// then narrower blocks for the edges, and a linalg.matmul on subviews for
// the columns narrower than one vector.
//
// C += A·Bᵀ with B stored [N, K] (y = x·Wᵀ of a projection whose weights
// are [out, in], as checkpoints store them) -> dot-product blocks, rows of
// A and of B both contiguous along k:
//
//   for j0 in blocks of B rows, i0 in blocks of A rows:   (B block in cache)
//     acc[r][c] = 0                                       (vectors along k)
//     for k0 by width: acc[r][c] = fma(A[i0 + r, k0:], B[j0 + c, k0:], acc)
//     C[i0 + r, j0 + c] += reduce_add(acc[r][c]) + scalar tail over k
//
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/Dialect/X86Vector/X86VectorDialect.h"
#include "llvm/TargetParser/Host.h"
#include <numeric>

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCVECTORIZEMATMULPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {
// How far ahead rows of B are prefetched: about a memory latency of work
// (a few hundred cycles) for a register block over a 128-wide row.
constexpr int64_t kPrefetchRows = 16;
constexpr int64_t kCacheLineBytes = 64;
// The largest f32 copy of an operand kept on the stack.
constexpr int64_t kMaxStackBytes = 16 * 1024;

/// A 2-D memref of f32 or, for an input, f16/bf16 (extended as loaded:
/// the mixed-precision matmul of 16-bit K/V caches and weights).
bool isF32Matrix(Value v, bool unitInnerStride, bool input = false) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || type.getRank() != 2)
    return false;
  Type elem = type.getElementType();
  if (!elem.isF32() && !(input && (elem.isF16() || elem.isBF16())))
    return false;
  return !unitInnerStride || type.isLastDimUnitStride();
}

/// Whether `op` has user-defined maps over (m, n, k): A (k, m) when
/// `aTransposed`, else (m, k); B (n, k) when `bTransposed`, else (k, n);
/// C (m, n).
bool hasMaps(linalg::MatmulOp op, bool aTransposed, bool bTransposed) {
  if (!op.hasUserDefinedMaps())
    return false;
  MLIRContext *ctx = op.getContext();
  AffineExpr m, n, k;
  bindDims(ctx, m, n, k);
  SmallVector<AffineMap> expected = {
      AffineMap::get(3, 0, {aTransposed ? k : m, aTransposed ? m : k}, ctx),
      AffineMap::get(3, 0, {bTransposed ? n : k, bTransposed ? k : n}, ctx),
      AffineMap::get(3, 0, {m, n}, ctx)};
  return op.getIndexingMapsArray() == ArrayRef<AffineMap>(expected);
}

/// Whether `op`'s maps are the default ones or A transposed (then
/// `aTransposed`).
bool hasBroadcastMaps(linalg::MatmulOp op, bool &aTransposed) {
  aTransposed = hasMaps(op, /*aTransposed=*/true, /*bTransposed=*/false);
  return !op.hasUserDefinedMaps() || aTransposed;
}

/// C += A·B in f32 with rows of B and C contiguous; A may be stored
/// transposed (it is read one element at a time).
bool isVectorizable(linalg::MatmulOp op) {
  bool aTransposed;
  if (!op.hasPureBufferSemantics() || !hasBroadcastMaps(op, aTransposed))
    return false;
  return isF32Matrix(op.getDpsInputs()[0], false, true) &&
         isF32Matrix(op.getDpsInputs()[1], true, true) &&
         isF32Matrix(op.getDpsInits()[0], true);
}

/// C += A·Bᵀ: maps (m, k), (n, k), (m, n), f32, rows of A and B contiguous.
bool isTransposedBVectorizable(linalg::MatmulOp op) {
  if (!op.hasPureBufferSemantics() ||
      !hasMaps(op, /*aTransposed=*/false, /*bTransposed=*/true))
    return false;
  return isF32Matrix(op.getDpsInputs()[0], true, true) &&
         isF32Matrix(op.getDpsInputs()[1], true, true) &&
         isF32Matrix(op.getDpsInits()[0], false);
}

/// Emits the loops at `b`'s insertion point. scf.for body builders receive
/// this same builder positioned in the body, so the helpers below build
/// wherever the enclosing loop is being filled.
struct MatmulVectorizer {
  OpBuilder &b;
  Location loc;
  Value a, bm, c; // C[M, N] += A[M, K] · B[K, N]
  Value m, n, k;
  int64_t width;

  // Folding builders: with static shapes, the edge loops and the scalar
  // rest of an exact fit are then known to be empty and not emitted.
  Value cIndex(int64_t v) { return arith::ConstantIndexOp::create(b, loc, v); }
  Value add(Value x, Value y) {
    return b.createOrFold<arith::AddIOp>(loc, x, y);
  }
  Value sub(Value x, Value y) {
    return b.createOrFold<arith::SubIOp>(loc, x, y);
  }
  Value addConst(Value x, int64_t y) { return y ? add(x, cIndex(y)) : x; }
  /// base, base + step, ..., count of them.
  SmallVector<Value> consecutive(Value base, int64_t count, int64_t step = 1) {
    SmallVector<Value> out;
    for (int64_t i = 0; i < count; ++i)
      out.push_back(addConst(base, i * step));
    return out;
  }

  /// A vector of `width` elements of `mem` at `idx`, in f32.
  Value loadVector(Value mem, ValueRange idx) {
    Type elem = cast<MemRefType>(mem.getType()).getElementType();
    auto f32Ty = VectorType::get({width}, b.getF32Type());
    Value x = vector::LoadOp::create(b, loc, VectorType::get({width}, elem),
                                     mem, idx);
    return elem.isF32() ? x : arith::ExtFOp::create(b, loc, f32Ty, x);
  }
  /// One element of `mem` at `idx`, in f32.
  Value loadScalar(Value mem, ValueRange idx) {
    Value x = memref::LoadOp::create(b, loc, mem, idx);
    return x.getType().isF32()
               ? x
               : arith::ExtFOp::create(b, loc, b.getF32Type(), x);
  }

  /// Prefetches the cache lines of row `row` + kPrefetchRows of `mem`
  /// (clamped to its last row) over columns [c0, c0 + count). Rows of a
  /// matrix read at a large stride (a K or V cache row per key, Hkv·D
  /// apart) defeat the hardware prefetchers: one miss per row, in order.
  /// The last column is prefetched too: a row that does not start on a
  /// line (numpy's large arrays start 16 bytes into a page) touches one
  /// line more than its length fills.
  ///
  /// With a next-block plan (planNextBlock), row `row`'s columns of the
  /// next block's stretch are prefetched into L2 as well.
  void prefetchRow(Value mem, Value row, Value lastRow, Value c0,
                   int64_t count) {
    auto ty = cast<MemRefType>(mem.getType());
    int64_t perLine = kCacheLineBytes * 8 / ty.getElementTypeBitWidth();
    Value ahead = b.createOrFold<arith::MinSIOp>(
        loc, addConst(row, kPrefetchRows), lastRow);
    SmallVector<int64_t> columns;
    for (int64_t x = 0; x < count; x += perLine)
      columns.push_back(x);
    if (count > 1)
      columns.push_back(count - 1);
    for (int64_t x : columns)
      memref::PrefetchOp::create(b, loc, mem,
                                 ValueRange{ahead, addConst(c0, x)},
                                 /*isWrite=*/false, /*localityHint=*/3,
                                 /*isDataCache=*/true);
    if (!next)
      return;
    Value at = add(next->first, add(b.createOrFold<arith::MulIOp>(
                                        loc, row, cIndex(next->rowLength)),
                                    c0));
    for (int64_t x = 0; x < count; x += perLine)
      memref::PrefetchOp::create(b, loc, next->flat,
                                 ValueRange{b.createOrFold<arith::MinSIOp>(
                                     loc, addConst(at, x), next->last)},
                                 /*isWrite=*/false, /*localityHint=*/2,
                                 /*isDataCache=*/true);
  }

  /// The next key block of a [keys, heads, D] cache, read in address order.
  /// Decode reads a block of keys one kv head after another: rows of
  /// D elements at a stride of Hkv·D, which caps a one-thread read at
  /// about 60% of a sequential one (measured: 9.9 vs 16.5 GB/s) however
  /// far ahead each row is prefetched. So while the heads of one block
  /// are read, the next block's whole stretch (the same number of keys
  /// after this view, every head) is prefetched into L2 front to back:
  /// the view of head h (h-th segment of its rows), row j, prefetches
  /// elements first + j·D, where first = (start of this block's rows) +
  /// rows·stride + h·rows·D, so the Hkv views of one block cover the
  /// next block's rows·stride elements once, in order. Clamped to the
  /// last element of the buffer the view lies in (found through its
  /// subviews; a contiguous memref).
  struct NextBlock {
    Value flat, last, first;
    int64_t rowLength;
  };
  std::optional<NextBlock> next = std::nullopt;

  void planNextBlock() {
    auto ty = cast<MemRefType>(bm.getType());
    SmallVector<int64_t> strides;
    int64_t offset;
    if (ty.getRank() != 2 || failed(ty.getStridesAndOffset(strides, offset)))
      return;
    int64_t stride = strides[0], length = ty.getDimSize(1);
    if (ShapedType::isDynamic(stride) || ShapedType::isDynamic(length) ||
        strides[1] != 1 || length == 0 || stride <= length || stride % length)
      return;
    Value root = bm;
    while (auto view = root.getDefiningOp<memref::SubViewOp>())
      root = view.getSource();
    auto rootTy = cast<MemRefType>(root.getType());
    if (!rootTy.getLayout().isIdentity() || rootTy.getRank() == 0)
      return;
    Value flat = root;
    if (rootTy.getRank() > 1) {
      ReassociationIndices all(rootTy.getRank());
      std::iota(all.begin(), all.end(), 0);
      flat = memref::CollapseShapeOp::create(
          b, loc, root, ArrayRef<ReassociationIndices>{all});
    }
    Value last = sub(b.createOrFold<memref::DimOp>(loc, flat, 0), cIndex(1));
    auto meta = memref::ExtractStridedMetadataOp::create(b, loc, bm);
    Value at = meta.getOffset();
    Value rows = b.createOrFold<memref::DimOp>(loc, bm, 0);
    Value inRow = b.createOrFold<arith::RemUIOp>(loc, at, cIndex(stride));
    Value segment = b.createOrFold<arith::DivUIOp>(loc, inRow, cIndex(length));
    Value mul = b.createOrFold<arith::MulIOp>(loc, rows, cIndex(stride));
    Value skip = b.createOrFold<arith::MulIOp>(
        loc, b.createOrFold<arith::MulIOp>(loc, segment, rows), cIndex(length));
    next = NextBlock{flat, last, add(sub(at, inRow), add(mul, skip)), length};
  }

  /// The static length `k` of the rows of `mem` when they lie a static
  /// stride apart that leaves a gap after each row (the rows of one head
  /// in a [keys, heads, D] cache), the layout whose rows the hardware
  /// prefetchers miss; contiguous rows (weights) stream without help.
  static std::optional<int64_t> stridedRowLength(Value mem, Value k) {
    std::optional<int64_t> length = getConstantIntValue(k);
    SmallVector<int64_t> strides;
    int64_t offset;
    if (!length ||
        failed(cast<MemRefType>(mem.getType())
                   .getStridesAndOffset(strides, offset)) ||
        ShapedType::isDynamic(strides[0]) || strides[0] <= *length)
      return std::nullopt;
    return length;
  }

  /// Whether [begin, end) is statically empty.
  static bool isEmpty(Value begin, Value end) {
    if (begin == end)
      return true;
    std::optional<int64_t> x = getConstantIntValue(begin),
                           y = getConstantIntValue(end);
    return x && y && *x >= *y;
  }

  /// The end of the whole blocks of `block` in [begin, end).
  Value wholeBlocksEnd(Value begin, Value end, int64_t block) {
    if (block == 1)
      return end;
    Value len = sub(end, begin);
    return sub(end, b.createOrFold<arith::RemUIOp>(loc, len, cIndex(block)));
  }

  /// Covers rows [r0, r1) x columns [c0, whole-block end) with blocks of
  /// `rows` x `vectors`·width; returns the column where the blocks end.
  Value emitBlocks(Value r0, Value r1, Value c0, int64_t rows,
                   int64_t vectors) {
    int64_t cols = vectors * width;
    Value cEnd = wholeBlocksEnd(c0, n, cols);
    if (isEmpty(r0, r1) || isEmpty(c0, cEnd))
      return cEnd;
    auto vecTy = VectorType::get({width}, b.getF32Type());
    scf::ForOp::create(
        b, loc, r0, r1, cIndex(rows), ValueRange{},
        [&](OpBuilder &, Location, Value i0, ValueRange) {
          SmallVector<Value> rowIdx = consecutive(i0, rows);
          scf::ForOp::create(
              b, loc, c0, cEnd, cIndex(cols), ValueRange{},
              [&](OpBuilder &, Location, Value j0, ValueRange) {
                SmallVector<Value> colIdx = consecutive(j0, vectors, width);
                SmallVector<Value> init;
                for (Value i : rowIdx)
                  for (Value j : colIdx)
                    init.push_back(
                        vector::LoadOp::create(b, loc, vecTy, c, {i, j}));
                std::optional<int64_t> stridedRows = stridedRowLength(bm, n);
                Value lastRow = stridedRows ? sub(k, cIndex(1)) : Value();
                auto kLoop = scf::ForOp::create(
                    b, loc, cIndex(0), k, cIndex(1), init,
                    [&](OpBuilder &, Location, Value kk, ValueRange acc) {
                      SmallVector<Value> bRow, next;
                      // The block's columns of a row ahead (V cache rows
                      // in decode's P·V, Hkv·D apart).
                      if (stridedRows)
                        prefetchRow(bm, kk, lastRow, j0, cols);
                      for (Value j : colIdx)
                        bRow.push_back(loadVector(bm, {kk, j}));
                      for (auto [r, i] : llvm::enumerate(rowIdx)) {
                        Value x = loadScalar(a, {i, kk});
                        Value xs =
                            vector::BroadcastOp::create(b, loc, vecTy, x);
                        for (auto [v, y] : llvm::enumerate(bRow))
                          next.push_back(vector::FMAOp::create(
                              b, loc, xs, y, acc[r * vectors + v]));
                      }
                      scf::YieldOp::create(b, loc, next);
                    });
                for (auto [r, i] : llvm::enumerate(rowIdx))
                  for (auto [v, j] : llvm::enumerate(colIdx))
                    vector::StoreOp::create(
                        b, loc, kLoop.getResult(r * vectors + v), c, {i, j});
                scf::YieldOp::create(b, loc);
              });
          scf::YieldOp::create(b, loc);
        });
    return cEnd;
  }

  /// A[r0:r1, :] · B[:, c0:N] added to C[r0:r1, c0:N] as a linalg.matmul
  /// on subviews (scalar loops later).
  void emitRest(Value r0, Value r1, Value c0) {
    if (isEmpty(r0, r1) || isEmpty(c0, n))
      return;
    OpFoldResult one = b.getIndexAttr(1), zero = b.getIndexAttr(0);
    Value rowsLen = sub(r1, r0), colsLen = sub(n, c0);
    // Constant offsets and sizes as attributes: static subview types.
    auto fold = [](OpFoldResult x) -> OpFoldResult {
      if (auto v = dyn_cast<Value>(x))
        return getAsOpFoldResult(v);
      return x;
    };
    auto view = [&](Value src, OpFoldResult o0, OpFoldResult o1,
                    OpFoldResult s0, OpFoldResult s1) {
      return memref::SubViewOp::create(
          b, loc, src, ArrayRef<OpFoldResult>{fold(o0), fold(o1)},
          ArrayRef<OpFoldResult>{fold(s0), fold(s1)},
          ArrayRef<OpFoldResult>{one, one});
    };
    Value aView = view(a, r0, zero, rowsLen, k);
    Value bView = view(bm, zero, c0, k, colsLen);
    Value cView = view(c, r0, c0, rowsLen, colsLen);
    linalg::MatmulOp::create(b, loc, ValueRange{aView, bView},
                             ValueRange{cView});
  }

  /// Rows [r0, r1) in blocks of `rows`: wide blocks, one-vector blocks,
  /// then the scalar rest. Returns the row where the blocks end.
  Value emitRows(Value r0, Value r1, int64_t rows, int64_t vectors) {
    Value rEnd = wholeBlocksEnd(r0, r1, rows);
    Value col = emitBlocks(r0, rEnd, cIndex(0), rows, vectors);
    // Columns of the rest: one vector per row, then scalars.
    if (vectors > 1)
      col = emitBlocks(r0, rEnd, col, rows, 1);
    emitRest(r0, rEnd, col);
    return rEnd;
  }
};

/// The dot-product form for C[M, N] += A[M, K] · B[N, K]ᵀ.
struct TransposedBVectorizer : MatmulVectorizer {
  /// A and B both bf16 on an AVX512-BF16 host with 16-lane vectors: each
  /// accumulator takes x86vector.avx512.dot (vdpbf16ps) of 32 elements of
  /// a row of A and one of B, as stored (products of bf16 are exact in
  /// f32, so this is the FMA form's sum in another order).
  bool bf16Dot = false;

  /// The lane sums of n vectors (n a power of two, at most their width),
  /// as one vector of n: pairs combine by adding the halves of each lane
  /// group (two shuffles and an add per pair), so n sums cost about n
  /// shuffles and adds instead of a full reduction each.
  Value reduceTogether(ValueRange vectors) {
    SmallVector<Value> level(vectors);
    int64_t w = width, seg = width; // lanes per vector, per output group
    auto halves = [&](Value x, Value y, int64_t yOffset, int64_t groups,
                      Value &lo, Value &hi) {
      SmallVector<int64_t> loMask, hiMask;
      for (int64_t src = 0; src < 2; ++src)
        for (int64_t g = 0; g < groups; ++g)
          for (int64_t l = 0; l < seg / 2; ++l) {
            int64_t base = (src ? yOffset : 0) + g * seg;
            loMask.push_back(base + l);
            hiMask.push_back(base + seg / 2 + l);
          }
      lo = vector::ShuffleOp::create(b, loc, x, y, loMask);
      hi = vector::ShuffleOp::create(b, loc, x, y, hiMask);
    };
    // Pairs of vectors into one: the groups of x then those of y, each
    // half as wide.
    while (level.size() > 1) {
      int64_t groups = w / seg;
      SmallVector<Value> next;
      for (size_t i = 0; i < level.size(); i += 2) {
        Value lo, hi;
        halves(level[i], level[i + 1], w, groups, lo, hi);
        next.push_back(arith::AddFOp::create(b, loc, lo, hi));
      }
      level = std::move(next);
      seg /= 2;
    }
    // One vector of n groups of seg lanes: fold each group in place.
    Value x = level.front();
    while (seg > 1) {
      int64_t groups = w / seg;
      SmallVector<int64_t> loMask, hiMask;
      for (int64_t g = 0; g < groups; ++g)
        for (int64_t l = 0; l < seg / 2; ++l) {
          loMask.push_back(g * seg + l);
          hiMask.push_back(g * seg + seg / 2 + l);
        }
      Value lo = vector::ShuffleOp::create(b, loc, x, x, loMask);
      Value hi = vector::ShuffleOp::create(b, loc, x, x, hiMask);
      x = arith::AddFOp::create(b, loc, lo, hi);
      w /= 2;
      seg /= 2;
    }
    return x;
  }

  /// Blocks of `rows` x `cols` of C over rows [r0, r1) and columns
  /// [c0, c1) (both whole multiples of the block), B's rows outermost so
  /// a block of B stays in cache while every row block of A passes.
  void emitDotBlocks(Value r0, Value r1, Value c0, Value c1, int64_t rows,
                     int64_t cols) {
    if (isEmpty(r0, r1) || isEmpty(c0, c1))
      return;
    Type f32 = b.getF32Type();
    auto vecTy = VectorType::get({width}, f32);
    int64_t kStep = bf16Dot ? 2 * width : width;
    Value kVecEnd = wholeBlocksEnd(cIndex(0), k, kStep);
    scf::ForOp::create(
        b, loc, c0, c1, cIndex(cols), ValueRange{},
        [&](OpBuilder &, Location, Value j0, ValueRange) {
          SmallVector<Value> colIdx = consecutive(j0, cols);
          if (std::optional<int64_t> rowLength = stridedRowLength(bm, k)) {
            Value lastRow = sub(n, cIndex(1));
            for (Value j : colIdx)
              prefetchRow(bm, j, lastRow, cIndex(0), *rowLength);
          }
          scf::ForOp::create(
              b, loc, r0, r1, cIndex(rows), ValueRange{},
              [&](OpBuilder &, Location, Value i0, ValueRange) {
                SmallVector<Value> rowIdx = consecutive(i0, rows);
                Value zeroVec = arith::ConstantOp::create(
                    b, loc, vecTy, DenseElementsAttr::get(vecTy, 0.0f));
                SmallVector<Value> init(rows * cols, zeroVec);
                auto kLoop = scf::ForOp::create(
                    b, loc, cIndex(0), kVecEnd, cIndex(kStep), init,
                    [&](OpBuilder &, Location, Value kk, ValueRange acc) {
                      SmallVector<Value> aVec, bVec, next;
                      if (bf16Dot) {
                        auto pairTy = VectorType::get({kStep}, b.getBF16Type());
                        for (Value i : rowIdx)
                          aVec.push_back(vector::LoadOp::create(
                              b, loc, pairTy, a, ValueRange{i, kk}));
                        for (Value j : colIdx)
                          bVec.push_back(vector::LoadOp::create(
                              b, loc, pairTy, bm, ValueRange{j, kk}));
                        for (int64_t r = 0; r < rows; ++r)
                          for (int64_t c = 0; c < cols; ++c)
                            next.push_back(x86vector::DotBF16Op::create(
                                b, loc, vecTy, acc[r * cols + c], aVec[r],
                                bVec[c]));
                        scf::YieldOp::create(b, loc, next);
                        return;
                      }
                      for (Value i : rowIdx)
                        aVec.push_back(loadVector(a, {i, kk}));
                      for (Value j : colIdx)
                        bVec.push_back(loadVector(bm, {j, kk}));
                      for (int64_t r = 0; r < rows; ++r)
                        for (int64_t c = 0; c < cols; ++c)
                          next.push_back(vector::FMAOp::create(
                              b, loc, aVec[r], bVec[c], acc[r * cols + c]));
                      scf::YieldOp::create(b, loc, next);
                    });
                // Whole vectors along k only, a power-of-two number of
                // columns and contiguous rows of C: each row's `cols`
                // accumulators reduce together into one vector of sums.
                if (isEmpty(kVecEnd, k) && cols > 1 && cols <= width &&
                    llvm::isPowerOf2_64(cols) &&
                    cast<MemRefType>(this->c.getType()).isLastDimUnitStride()) {
                  auto sumTy = VectorType::get({cols}, f32);
                  for (int64_t r = 0; r < rows; ++r) {
                    Value total = reduceTogether(
                        ValueRange(kLoop.getResults()).slice(r * cols, cols));
                    Value old = vector::LoadOp::create(b, loc, sumTy, this->c,
                                                       {rowIdx[r], colIdx[0]});
                    vector::StoreOp::create(
                        b, loc, arith::AddFOp::create(b, loc, old, total),
                        this->c, {rowIdx[r], colIdx[0]});
                  }
                  scf::YieldOp::create(b, loc);
                  return;
                }
                SmallVector<Value> sums;
                for (Value v : kLoop.getResults())
                  sums.push_back(vector::ReductionOp::create(
                      b, loc, vector::CombiningKind::ADD, v));
                // The k that do not fill a vector, in scalars.
                if (!isEmpty(kVecEnd, k)) {
                  auto tail = scf::ForOp::create(
                      b, loc, kVecEnd, k, cIndex(1), sums,
                      [&](OpBuilder &, Location, Value kk, ValueRange acc) {
                        SmallVector<Value> next;
                        for (int64_t r = 0; r < rows; ++r) {
                          Value x = loadScalar(a, {rowIdx[r], kk});
                          for (int64_t c = 0; c < cols; ++c) {
                            Value y = loadScalar(bm, {colIdx[c], kk});
                            next.push_back(math::FmaOp::create(
                                b, loc, x, y, acc[r * cols + c]));
                          }
                        }
                        scf::YieldOp::create(b, loc, next);
                      });
                  sums.assign(tail.getResults().begin(),
                              tail.getResults().end());
                }
                for (int64_t r = 0; r < rows; ++r)
                  for (int64_t c = 0; c < cols; ++c) {
                    Value old = memref::LoadOp::create(b, loc, this->c,
                                                       {rowIdx[r], colIdx[c]});
                    Value sum =
                        arith::AddFOp::create(b, loc, old, sums[r * cols + c]);
                    memref::StoreOp::create(b, loc, sum, this->c,
                                            {rowIdx[r], colIdx[c]});
                  }
                scf::YieldOp::create(b, loc);
              });
          scf::YieldOp::create(b, loc);
        });
  }

  /// All of C: rows x cols blocks, then the edges with blocks of one row
  /// and/or one column.
  void emit(int64_t rows, int64_t cols) {
    Value zero = cIndex(0);
    Value rEnd = wholeBlocksEnd(zero, m, rows);
    Value cEnd = wholeBlocksEnd(zero, n, cols);
    // A single row (decode's GEMV) keeps as many B rows in flight as a
    // block of rows x cols holds accumulators.
    int64_t gemvCols = rows * cols;
    Value cEndGemv = wholeBlocksEnd(zero, n, gemvCols);
    emitDotBlocks(zero, rEnd, zero, cEnd, rows, cols);
    emitDotBlocks(zero, rEnd, cEnd, n, rows, 1);
    emitDotBlocks(rEnd, m, zero, cEndGemv, 1, gemvCols);
    emitDotBlocks(rEnd, m, cEndGemv, n, 1, 1);
  }
};

/// f32 lanes of the host's widest vector registers that LLVM will use:
/// AVX-512 (16; the JIT compiles for this host), AVX2 (8), else 4 (SSE,
/// NEON).
int64_t hostVectorWidth() {
  llvm::StringMap<bool> features = llvm::sys::getHostCPUFeatures();
  if (features.lookup("avx512f"))
    return 16;
  if (features.lookup("avx2") || features.lookup("avx"))
    return 8;
  return 4;
}

/// Whether the host has AVX512-BF16's vdpbf16ps (the JIT compiles for this
/// host).
bool hostHasBF16Dot() {
  return llvm::sys::getHostCPUFeatures().lookup("avx512bf16");
}

struct PosencVectorizeMatmulPass
    : posenc::impl::PosencVectorizeMatmulPassBase<PosencVectorizeMatmulPass> {
  using Base::Base;

  void runOnOperation() override {
    // Upper bounds: a register block of rows x vectors vectors is unrolled
    // in full (2^40 rows compiled without end; a 2^40-lane vector aborted
    // LLVM).
    if (rows < 1 || vectors < 1 || vectorWidth < 0 || rows > 64 ||
        vectors > 64 || vectorWidth > 1024) {
      getOperation()->emitError()
          << "posenc-vectorize-matmul needs sizes rows and vectors in [1, 64] "
             "and vector-width in [0, 1024] (0: the host's), got rows="
          << int64_t(rows) << " vectors=" << int64_t(vectors)
          << " vector-width=" << int64_t(vectorWidth);
      return signalPassFailure();
    }
    if (bf16Dot != "host" && bf16Dot != "on" && bf16Dot != "off") {
      getOperation()->emitError()
          << "posenc-vectorize-matmul: bf16-dot must be host, on or off, got '"
          << std::string(bf16Dot) << "'";
      return signalPassFailure();
    }
    int64_t width = vectorWidth ? int64_t(vectorWidth) : hostVectorWidth();
    bool dotAvailable =
        width == 16 &&
        (bf16Dot == "on" || (bf16Dot == "host" && hostHasBF16Dot()));
    SmallVector<linalg::MatmulOp> matmuls, transposed;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (isVectorizable(op))
        matmuls.push_back(op);
      else if (isTransposedBVectorizable(op))
        transposed.push_back(op);
    });
    for (linalg::MatmulOp op : transposed) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      Value a = op.getDpsInputs()[0], bm = op.getDpsInputs()[1];
      Value c = op.getDpsInits()[0];
      auto aTy = cast<MemRefType>(a.getType());
      bool dot = dotAvailable && aTy.getElementType().isBF16() &&
                 getElementTypeOrSelf(bm.getType()).isBF16();
      // 16-bit A without the dot product, small and static (decode's
      // query rows): extended once into f32 rather than at every load of
      // every block of B. The buffer is one stack slot at the start of the
      // function or of a parallel loop's body (per thread), not an alloca
      // in the key loop, where it would grow the stack each iteration.
      Value a32;
      if (!aTy.getElementType().isF32() && !dot && aTy.hasStaticShape() &&
          aTy.getNumElements() * 4 <= kMaxStackBytes) {
        Operation *scope = op->getParentOp();
        while (scope && !isa<scf::ForallOp, scf::ParallelOp>(scope) &&
               !scope->hasTrait<OpTrait::AutomaticAllocationScope>())
          scope = scope->getParentOp();
        if (scope && !scope->getRegion(0).empty()) {
          OpBuilder::InsertionGuard guard(b);
          b.setInsertionPointToStart(&scope->getRegion(0).front());
          a32 = memref::AllocaOp::create(
              b, loc, MemRefType::get(aTy.getShape(), b.getF32Type()));
        }
      }
      if (a32) {
        AffineMap id = b.getMultiDimIdentityMap(2);
        linalg::GenericOp::create(
            b, loc, a, a32, ArrayRef<AffineMap>{id, id},
            SmallVector<utils::IteratorType>(2, utils::IteratorType::parallel),
            [](OpBuilder &nb, Location nl, ValueRange args) {
              linalg::YieldOp::create(nb, nl,
                                      ValueRange{arith::ExtFOp::create(
                                          nb, nl, nb.getF32Type(), args[0])});
            });
      }
      TransposedBVectorizer v{{b, loc, a32 ? a32 : a, bm, c,
                               b.createOrFold<memref::DimOp>(loc, c, 0),
                               b.createOrFold<memref::DimOp>(loc, c, 1),
                               b.createOrFold<memref::DimOp>(loc, a, 1),
                               width}};
      v.bf16Dot = dot;
      v.planNextBlock();
      // As many accumulators as the broadcast form's blocks hold.
      v.emit(rows, std::max<int64_t>(1, vectors * 2));
      op.erase();
    }
    for (linalg::MatmulOp op : matmuls) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      Value a = op.getDpsInputs()[0], bm = op.getDpsInputs()[1];
      Value c = op.getDpsInits()[0];
      // Aᵀ stored: read A through a transposed (strided) view.
      bool aTransposed;
      hasBroadcastMaps(op, aTransposed);
      if (aTransposed)
        a = memref::TransposeOp::create(
            b, loc, a,
            AffineMapAttr::get(AffineMap::getPermutationMap(
                ArrayRef<unsigned>{1, 0}, b.getContext())));
      MatmulVectorizer v{b,
                         loc,
                         a,
                         bm,
                         c,
                         b.createOrFold<memref::DimOp>(loc, c, 0),
                         b.createOrFold<memref::DimOp>(loc, c, 1),
                         b.createOrFold<memref::DimOp>(loc, a, 1),
                         width};
      // C narrower than a block (static N): fewer vectors per row, more
      // rows, the same number of accumulators.
      int64_t blockRows = rows, blockVectors = vectors;
      std::optional<int64_t> cols = getConstantIntValue(v.n);
      std::optional<int64_t> rowsOfC = getConstantIntValue(v.m);
      if (cols && *cols < vectors * width && *cols >= width) {
        blockVectors = *cols / width;
        blockRows = rows * vectors / blockVectors;
      } else if (cols && rowsOfC && *rowsOfC <= rows &&
                 *cols >= 2 * vectors * width) {
        // A few rows (decode's P·V: a query group against a block of V):
        // up to four times wider blocks, as many accumulators as the
        // dot-product form's, so each pass over B reads long stretches
        // of its rows (a V cache's rows lie Hkv·D apart) instead of one
        // cache line per row per pass. A 16-bit B takes half as wide and
        // twice as many rows: each extension of a B vector then serves
        // twice the FMAs (bf16 decode at 32K keys 5% faster; f32 5%
        // slower, its loads being the cheaper part).
        bool narrowB = !getElementTypeOrSelf(bm.getType()).isF32();
        blockVectors = std::min(*cols / width, (narrowB ? 2 : 4) * vectors);
        blockRows =
            std::clamp<int64_t>(2 * rows * vectors / blockVectors, 1, *rowsOfC);
      }
      v.planNextBlock();
      Value rowEnd = v.emitRows(v.cIndex(0), v.m, blockRows, blockVectors);
      if (blockRows > 1)
        v.emitRows(rowEnd, v.m, 1, blockVectors);
      op.erase();
    }
  }
};
} // namespace
