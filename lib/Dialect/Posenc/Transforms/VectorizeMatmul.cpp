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
//===----------------------------------------------------------------------===//

#include "posenc/Dialect/Posenc/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"

namespace mlir::posenc {
#define GEN_PASS_DEF_POSENCVECTORIZEMATMULPASS
#include "posenc/Dialect/Posenc/Transforms/Passes.h.inc"
} // namespace mlir::posenc

using namespace mlir;

namespace {

bool isF32Matrix(Value v, bool unitInnerStride) {
  auto type = dyn_cast<MemRefType>(v.getType());
  if (!type || type.getRank() != 2 || !type.getElementType().isF32())
    return false;
  return !unitInnerStride || type.isLastDimUnitStride();
}

/// Plain C += A·B in f32 with rows of B and C contiguous.
bool isVectorizable(linalg::MatmulOp op) {
  if (!op.hasPureBufferSemantics() || op.hasUserDefinedMaps())
    return false;
  return isF32Matrix(op.getDpsInputs()[0], false) &&
         isF32Matrix(op.getDpsInputs()[1], true) &&
         isF32Matrix(op.getDpsInits()[0], true);
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
          SmallVector<Value> rowIdx;
          for (int64_t r = 0; r < rows; ++r)
            rowIdx.push_back(addConst(i0, r));
          scf::ForOp::create(
              b, loc, c0, cEnd, cIndex(cols), ValueRange{},
              [&](OpBuilder &, Location, Value j0, ValueRange) {
                SmallVector<Value> colIdx;
                for (int64_t v = 0; v < vectors; ++v)
                  colIdx.push_back(addConst(j0, v * width));
                SmallVector<Value> init;
                for (Value i : rowIdx)
                  for (Value j : colIdx)
                    init.push_back(
                        vector::LoadOp::create(b, loc, vecTy, c, {i, j}));
                auto kLoop = scf::ForOp::create(
                    b, loc, cIndex(0), k, cIndex(1), init,
                    [&](OpBuilder &, Location, Value kk, ValueRange acc) {
                      SmallVector<Value> bRow, next;
                      for (Value j : colIdx)
                        bRow.push_back(
                            vector::LoadOp::create(b, loc, vecTy, bm, {kk, j}));
                      for (auto [r, i] : llvm::enumerate(rowIdx)) {
                        Value x = memref::LoadOp::create(b, loc, a, {i, kk});
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

struct PosencVectorizeMatmulPass
    : posenc::impl::PosencVectorizeMatmulPassBase<PosencVectorizeMatmulPass> {
  using Base::Base;

  void runOnOperation() override {
    if (rows < 1 || vectors < 1 || vectorWidth < 1) {
      getOperation()->emitError()
          << "posenc-vectorize-matmul needs positive sizes, got rows="
          << int64_t(rows) << " vectors=" << int64_t(vectors)
          << " vector-width=" << int64_t(vectorWidth);
      return signalPassFailure();
    }
    SmallVector<linalg::MatmulOp> matmuls;
    getOperation()->walk([&](linalg::MatmulOp op) {
      if (isVectorizable(op))
        matmuls.push_back(op);
    });
    for (linalg::MatmulOp op : matmuls) {
      OpBuilder b(op);
      Location loc = op.getLoc();
      Value a = op.getDpsInputs()[0], bm = op.getDpsInputs()[1];
      Value c = op.getDpsInits()[0];
      MatmulVectorizer v{b,
                         loc,
                         a,
                         bm,
                         c,
                         b.createOrFold<memref::DimOp>(loc, c, 0),
                         b.createOrFold<memref::DimOp>(loc, c, 1),
                         b.createOrFold<memref::DimOp>(loc, a, 1),
                         vectorWidth};
      Value rowEnd = v.emitRows(v.cIndex(0), v.m, rows, vectors);
      if (rows > 1)
        v.emitRows(rowEnd, v.m, 1, vectors);
      op.erase();
    }
  }
};
} // namespace
