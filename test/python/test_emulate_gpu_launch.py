"""posenc-emulate-gpu-launch on kernels that synchronize: barriers with
shared memory, warp shuffles, and tensor-core fragments (nvgpu.mma.sync,
nvgpu.ldmatrix), run on the host against numpy.

The kernels place their fragments as the PTX ISA's figures for mma.m16n8k*
show; products are checked against float64 matmuls, so a fragment layout
that differs from the ISA in the emulation fails here."""

import numpy as np
import pytest

from harness import RunError, from_bf16, opt, run, to_bf16

PIPELINE = "func.func(posenc-emulate-gpu-launch{deallocate=false}),posenc-lower-to-cpu"


class Kernel:
    """MLIR lines of a kernel body with fresh SSA names; constants go to the
    top (they are used in and after loops)."""

    def __init__(self):
        self.consts_lines = []
        self.lines = []
        self.n = 0
        self.consts = {}

    def body(self):
        return self.consts_lines + self.lines

    def emit(self, rhs, ty=None):
        self.n += 1
        name = f"%v{self.n}"
        self.lines.append(f"    {name} = {rhs}" + (f" : {ty}" if ty else ""))
        return name

    def c(self, v):
        if v not in self.consts:
            self.consts[v] = f"%c{v}_"
            self.consts_lines.append(f"    %c{v}_ = arith.constant {v} : index")
        return self.consts[v]

    def add(self, x, v):
        if isinstance(v, int):
            return x if v == 0 else self.emit(f"arith.addi {x}, {self.c(v)}", "index")
        return self.emit(f"arith.addi {x}, {v}", "index")

    def mul(self, x, v):
        return self.emit(f"arith.muli {x}, {self.c(v)}", "index")

    def div(self, x, v):
        return self.emit(f"arith.divui {x}, {self.c(v)}", "index")

    def rem(self, x, v):
        return self.emit(f"arith.remui {x}, {self.c(v)}", "index")


def launch(args, result_ty, body, threads, blocks=1, extra=""):
    out_shape = result_ty[len("memref<"):-1]
    return (f"func.func @f({args}) -> tensor<{out_shape}> {{\n"
            f"  %out = memref.alloc() : {result_ty}\n"
            "  %one = arith.constant 1 : index\n"
            f"  %nb = arith.constant {blocks} : index\n"
            f"  %nt = arith.constant {threads} : index\n"
            "  gpu.launch blocks(%bx, %by, %bz) in (%gx = %nb, %gy = %one, %gz = %one)\n"
            "             threads(%tx, %ty, %tz) in (%sx = %nt, %sy = %one, %sz = %one)"
            f"{extra} {{\n" + "\n".join(body) + "\n    gpu.terminator\n  }\n"
            f"  %r = bufferization.to_tensor %out restrict : {result_ty} to tensor<{out_shape}>\n"
            f"  return %r : tensor<{out_shape}>\n}}\n")


def test_barrier_and_shared_memory():
    """Each block reverses its 64 values through shared memory; the value a
    thread loaded before the barrier is read after it."""
    body = [
        "    %c0 = arith.constant 0 : index",
        "    %c63 = arith.constant 63 : index",
        "    %base = arith.muli %bx, %nt : index",
        "    %i = arith.addi %base, %tx : index",
        "    %x = memref.load %in[%i] : memref<192xf32>",
        "    memref.store %x, %s[%tx] : memref<64xf32, #gpu.address_space<workgroup>>",
        "    gpu.barrier",
        "    %r = arith.subi %c63, %tx : index",
        "    %y = memref.load %s[%r] : memref<64xf32, #gpu.address_space<workgroup>>",
        "    %two = arith.constant 2.0 : f32",
        "    %x2 = arith.mulf %x, %two : f32",
        "    %z = arith.addf %y, %x2 : f32",
        "    memref.store %z, %out[%i] : memref<192xf32>",
    ]
    ir = launch("%in: memref<192xf32>", "memref<192xf32>", body, 64, blocks=3,
                extra="\n             workgroup(%s : memref<64xf32, #gpu.address_space<workgroup>>)")
    x = np.random.RandomState(0).randn(192).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    blocks = x.reshape(3, 64)
    np.testing.assert_allclose(out, (blocks[:, ::-1] + 2 * blocks).ravel(), rtol=1e-6)


def test_loop_with_barrier_carries_per_thread_values():
    """scf.for holding barriers: per-thread iteration values, a shared
    running total read after each barrier (a block-wide scan over steps)."""
    body = [
        "    %c0 = arith.constant 0 : index",
        "    %c1 = arith.constant 1 : index",
        "    %steps = arith.constant 5 : index",
        "    %zero = arith.constant 0.0 : f32",
        "    %raw = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>",
        "    %s = memref.view %raw[%c0][] : memref<?xi8, #gpu.address_space<workgroup>> "
        "to memref<32xf32, #gpu.address_space<workgroup>>",
        "    %acc = scf.for %k = %c0 to %steps step %c1 iter_args(%a = %zero) -> (f32) {",
        "      %row = arith.muli %k, %nt : index",
        "      %i = arith.addi %row, %tx : index",
        "      %x = memref.load %in[%i] : memref<160xf32>",
        "      memref.store %x, %s[%tx] : memref<32xf32, #gpu.address_space<workgroup>>",
        "      gpu.barrier",
        "      %j = arith.subi %nt, %c1 : index",
        "      %jj = arith.subi %j, %tx : index",
        "      %y = memref.load %s[%jj] : memref<32xf32, #gpu.address_space<workgroup>>",
        "      %a2 = arith.addf %a, %y : f32",
        "      gpu.barrier",
        "      scf.yield %a2 : f32",
        "    }",
        "    memref.store %acc, %out[%tx] : memref<32xf32>",
    ]
    ir = launch("%in: memref<160xf32>", "memref<32xf32>", body, 32,
                extra=" dynamic_shared_memory_size %bytes").replace(
        "  %one = arith.constant 1 : index\n",
        "  %one = arith.constant 1 : index\n  %bytes = arith.constant 128 : i32\n")
    x = np.random.RandomState(1).randn(160).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    np.testing.assert_allclose(out, x.reshape(5, 32)[:, ::-1].sum(0), rtol=1e-5)


def shuffle_kernel(steps, mode, width, combine):
    """64 threads (two warps); each step: y, ok = shuffle mode x, off, width;
    x = ok ? combine(x, y) : x."""
    body = [
        "    %t = gpu.thread_id x",
        "    %x0 = memref.load %in[%t] : memref<64xf32>",
        f"    %w = arith.constant {width} : i32",
    ]
    x = "%x0"
    for n, off in enumerate(steps):
        body += [
            f"    %o{n} = arith.constant {off} : i32",
            f"    %y{n}, %ok{n} = gpu.shuffle {mode} {x}, %o{n}, %w : f32",
        ]
        if combine == "add":
            body.append(f"    %s{n} = arith.addf {x}, %y{n} : f32")
        else:
            body.append(f"    %s{n} = arith.addf %y{n}, %y{n} : f32")
        body.append(f"    %x{n + 1} = arith.select %ok{n}, %s{n}, {x} : f32")
        x = f"%x{n + 1}"
    body.append(f"    memref.store {x}, %out[%t] : memref<64xf32>")
    return launch("%in: memref<64xf32>", "memref<64xf32>", body, 64)


def shuffle_reference(x, steps, mode, width, combine):
    """The shuffle as upstream lowers gpu.shuffle to shfl.sync (PTX ISA)."""
    x = x.astype(np.float64).reshape(2, 32).copy()
    for off in steps:
        y = x.copy()
        ok = np.zeros((2, 32), bool)
        for lane in range(32):
            b = off & 31
            j = {"xor": lane ^ b, "down": lane + b, "idx": b, "up": lane - b}[mode]
            valid = j >= 32 - width if mode == "up" else j <= width - 1
            ok[:, lane] = valid
            y[:, lane] = x[:, j] if valid else x[:, lane]
        s = x + y if combine == "add" else 2 * y
        x = np.where(ok, s, x)
    return x.ravel()


@pytest.mark.parametrize("mode,steps,width,combine", [
    ("xor", [16, 8, 4, 2, 1], 32, "add"),   # butterfly: every lane gets the warp's sum
    ("down", [16, 8, 4, 2, 1], 32, "add"),  # tree: lane 0 gets the sum
    ("up", [1, 2, 4, 8, 16], 32, "add"),    # inclusive scan
    ("idx", [5], 32, "copy"),               # broadcast of lane 5
    ("xor", [8, 4, 2, 1], 16, "add"),       # lanes past the width read themselves
    ("up", [1, 2], 24, "add"),
    ("down", [3, 40], 20, "add"),           # offsets use their low 5 bits
])
def test_shuffle(mode, steps, width, combine):
    x = np.random.RandomState(2).randn(64).astype(np.float32)
    (out,) = run(shuffle_kernel(steps, mode, width, combine), [x], pipeline=PIPELINE)
    expected = shuffle_reference(x, steps, mode, width, combine)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    # Independent of the reference: what the idioms compute.
    w = x.astype(np.float64).reshape(2, 32)
    if (mode, width) == ("xor", 32):
        np.testing.assert_allclose(out.reshape(2, 32), np.repeat(w.sum(1, keepdims=True), 32, 1), rtol=1e-5)
    if (mode, width) == ("down", 32):
        np.testing.assert_allclose(out.reshape(2, 32)[:, 0], w.sum(1), rtol=1e-5)
    if (mode, width) == ("up", 32):
        np.testing.assert_allclose(out.reshape(2, 32), np.cumsum(w, 1), rtol=1e-5, atol=1e-6)
    if mode == "idx":
        np.testing.assert_allclose(out.reshape(2, 32), 2 * np.repeat(w[:, 5:6], 32, 1), rtol=1e-6)


@pytest.mark.parametrize("op,cluster", [("add", ""), ("maxnumf", ""), ("mul", ""),
                                        ("add", " cluster(size = 4)"),
                                        ("minnumf", " cluster(size = 8, stride = 2)")])
def test_subgroup_reduce(op, cluster):
    body = [
        "    %x = memref.load %in[%tx] : memref<64xf32>",
        f"    %s = gpu.subgroup_reduce {op} %x{cluster} : (f32) -> f32",
        "    memref.store %s, %out[%tx] : memref<64xf32>",
    ]
    ir = launch("%in: memref<64xf32>", "memref<64xf32>", body, 64)
    x = (1 + 0.01 * np.random.RandomState(10).randn(64)).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    size, stride = {"": (32, 1), " cluster(size = 4)": (4, 1),
                    " cluster(size = 8, stride = 2)": (8, 2)}[cluster]
    fn = {"add": np.sum, "maxnumf": np.max, "mul": np.prod, "minnumf": np.min}[op]
    expected = np.empty(64)
    for t in range(64):
        lane, base = t % 32, t - t % 32
        first = base + lane // (size * stride) * (size * stride) + lane % stride
        expected[t] = fn(x[first:first + size * stride:stride].astype(np.float64))
    np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_subgroup_reduce_combines_neighbours_first():
    """As the xor butterfly does: (1 + 2^24) + (1 - 2^24) = 1 in f32, where
    a left-to-right sum gives 0."""
    body = [
        "    %x = memref.load %in[%tx] : memref<32xf32>",
        "    %s = gpu.subgroup_reduce add %x cluster(size = 4) : (f32) -> f32",
        "    memref.store %s, %out[%tx] : memref<32xf32>",
    ]
    ir = launch("%in: memref<32xf32>", "memref<32xf32>", body, 32)
    x = np.tile(np.array([1, 2.0 ** 24, 1, -2.0 ** 24], np.float32), 8)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    np.testing.assert_array_equal(out, np.ones(32, np.float32))


def test_unsigned_loop_with_barrier():
    """scf.for unsigned over i8 200 in steps of 50: four iterations."""
    body = [
        "    %lo = arith.constant 0 : i8",
        "    %hi = arith.constant 200 : i8",
        "    %st = arith.constant 50 : i8",
        "    %zero = arith.constant 0.0 : f32",
        "    %onef = arith.constant 1.0 : f32",
        "    %n = scf.for unsigned %k = %lo to %hi step %st iter_args(%a = %zero) -> (f32) : i8 {",
        "      gpu.barrier",
        "      %b = arith.addf %a, %onef : f32",
        "      scf.yield %b : f32",
        "    }",
        "    memref.store %n, %out[%tx] : memref<32xf32>",
    ]
    ir = launch("%in: memref<32xf32>", "memref<32xf32>", body, 32)
    (out,) = run(ir, [np.zeros(32, np.float32)], pipeline=PIPELINE)
    np.testing.assert_array_equal(out, np.full(32, 4, np.float32))


def test_private_buffers_of_many_threads():
    """A 1 KiB memref.alloca per thread on 65,536 threads: one host buffer
    for all (the host stack would not hold one per thread)."""
    body = [
        "    %c0 = arith.constant 0 : index",
        "    %c1 = arith.constant 1 : index",
        "    %c256 = arith.constant 256 : index",
        "    %p = memref.alloca() : memref<256xf32>",
        "    %base = arith.muli %bx, %nt : index",
        "    %i = arith.addi %base, %tx : index",
        "    %x = memref.load %in[%i] : memref<65536xf32>",
        "    scf.for %j = %c0 to %c256 step %c1 {",
        "      memref.store %x, %p[%j] : memref<256xf32>",
        "    }",
        "    %y = memref.load %p[%tx] : memref<256xf32>",
        "    %z = arith.addf %y, %x : f32",
        "    memref.store %z, %out[%i] : memref<65536xf32>",
    ]
    ir = launch("%in: memref<65536xf32>", "memref<65536xf32>", body, 256, blocks=256)
    x = np.random.RandomState(11).randn(65536).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    np.testing.assert_array_equal(out, 2 * x)


# Operand dtypes: (MLIR element type, registers' elements per 32 bits).
DTYPES = {"f16": ("f16", 2), "bf16": ("bf16", 2), "tf32": ("f32", 1)}


def a_position(g, t, r, e, epr):
    """PTX ISA, mma.m16n8k{8,16} .f16/.bf16 and .m16n8k{4,8} .tf32 A
    fragments: (row, col) of element e of register r."""
    return g + 8 * (r % 2), t * epr + e + 4 * epr * (r // 2)


def b_position(g, t, r, e, epr):
    return t * epr + e + 4 * epr * r, g


def c_position(g, t, r, e):
    return g + 8 * r, 2 * t + e


def mma_kernel(dtype, k, acc, ktiles, warps):
    """warps · 16 rows × 8 columns; each warp loops over ktiles K tiles,
    its accumulator carried through scf.for; fragments loaded and stored
    per lane at the ISA's positions."""
    ty, epr = DTYPES[dtype]
    regs_a, regs_b = 16 * k // (32 * epr), 8 * k // (32 * epr)
    m, kk = 16 * warps, k * ktiles
    kern = Kernel()
    tid = "%tx"
    w = kern.div(tid, 32)
    lane = kern.rem(tid, 32)
    g, t = kern.div(lane, 4), kern.rem(lane, 4)
    row0 = kern.mul(w, 16)
    tg = kern.mul(t, epr)
    rg = kern.add(row0, g)
    kern.lines.append(f"    %init = arith.constant dense<0.0> : vector<2x2x{acc}>")
    kern.lines.append(f"    %acc = scf.for %kt = {kern.c(0)} to {kern.c(ktiles)} step {kern.c(1)} "
                      f"iter_args(%d = %init) -> (vector<2x2x{acc}>) {{")
    k0 = kern.emit(f"arith.muli %kt, {kern.c(k)}", "index")
    elems = []
    for r in range(regs_a):
        for e in range(epr):
            row = kern.add(rg, 8 * (r % 2))
            col = kern.add(kern.add(tg, k0), e + 4 * epr * (r // 2))
            elems.append(kern.emit(f"memref.load %a[{row}, {col}]", f"memref<{m}x{kk}x{ty}>"))
    av = kern.emit(f"vector.from_elements {', '.join(elems)}", f"vector<{regs_a}x{epr}x{ty}>")
    elems = []
    for r in range(regs_b):
        for e in range(epr):
            row = kern.add(kern.add(tg, k0), e + 4 * epr * r)
            elems.append(kern.emit(f"memref.load %b[{row}, {g}]", f"memref<{kk}x8x{ty}>"))
    bv = kern.emit(f"vector.from_elements {', '.join(elems)}", f"vector<{regs_b}x{epr}x{ty}>")
    tf32 = ", tf32Enabled" if dtype == "tf32" else ""
    dn = kern.emit(f"nvgpu.mma.sync ({av}, {bv}, %d) {{mmaShape = [16, 8, {k}]{tf32}}} : "
                   f"(vector<{regs_a}x{epr}x{ty}>, vector<{regs_b}x{epr}x{ty}>, vector<2x2x{acc}>) "
                   f"-> vector<2x2x{acc}>")
    kern.lines.append(f"      scf.yield {dn} : vector<2x2x{acc}>")
    kern.lines.append("    }")
    t2 = kern.mul(t, 2)
    for r in range(2):
        for e in range(2):
            x = kern.emit(f"vector.extract %acc[{r}, {e}] : {acc} from vector<2x2x{acc}>")
            if acc != "f32":
                x = kern.emit(f"arith.extf {x} : {acc} to f32")
            row, col = kern.add(rg, 8 * r), kern.add(t2, e)
            kern.lines.append(f"    memref.store {x}, %out[{row}, {col}] : memref<{m}x8xf32>")
    return launch(f"%a: memref<{m}x{kk}x{ty}>, %b: memref<{kk}x8x{ty}>", f"memref<{m}x8xf32>",
                  kern.body(), 32 * warps), (m, kk)


def tf32(x):
    bits = np.asarray(x, np.float32).view(np.uint32) & np.uint32(0xFFFFE000)
    return bits.view(np.float32)


def inputs_for(dtype, shape, seed):
    x = np.random.RandomState(seed).randn(*shape).astype(np.float32)
    if dtype == "f16":
        x = x.astype(np.float16)
        return x, x.astype(np.float64)
    if dtype == "bf16":
        bits = to_bf16(x)
        return bits, from_bf16(bits).astype(np.float64)
    return x, tf32(x).astype(np.float64)


@pytest.mark.parametrize("dtype,k", [("f16", 16), ("f16", 8), ("bf16", 16), ("bf16", 8),
                                     ("tf32", 8), ("tf32", 4)])
@pytest.mark.parametrize("warps", [1, 2])
def test_mma_sync_fragments(dtype, k, warps):
    ir, (m, kk) = mma_kernel(dtype, k, "f32", ktiles=3, warps=warps)
    a, a64 = inputs_for(dtype, (m, kk), 3)
    b, b64 = inputs_for(dtype, (kk, 8), 4)
    (out,) = run(ir, [a, b], pipeline=PIPELINE)
    expected = a64 @ b64
    err = np.abs(out - expected).max() / np.abs(expected).max()
    assert err < 1e-6, f"{dtype} k={k}: {err:.2e}"
    if dtype == "tf32":
        # The low mantissa bits are dropped: full f32 inputs give another
        # product, and the kernel must not match that one.
        full = a.astype(np.float64) @ b.astype(np.float64)
        assert np.abs(out - full).max() / np.abs(full).max() > 1e-5


def test_mma_sync_f16_accumulator():
    ir, (m, kk) = mma_kernel("f16", 16, "f16", ktiles=3, warps=2)
    a, a64 = inputs_for("f16", (m, kk), 5)
    b, b64 = inputs_for("f16", (kk, 8), 6)
    (out,) = run(ir, [a, b], pipeline=PIPELINE)
    # Each mma rounds its f32 result to f16.
    acc = np.zeros((m, 8), np.float16)
    for kt in range(3):
        s = slice(16 * kt, 16 * kt + 16)
        acc = (acc.astype(np.float32) + (a64[:, s] @ b64[s]).astype(np.float32)).astype(np.float16)
    np.testing.assert_allclose(out, acc.astype(np.float32), rtol=2e-3, atol=2e-3)


def ldmatrix_kernel(transpose_b):
    """Two warps stage A [32, 16] and B into shared memory, then load their
    fragments with ldmatrix: A as x4 (lane l addresses row l mod 16, column
    8 (l / 16) of the warp's 16 rows); B [16, 8] as x2 transposed (lane l
    addresses k row l mod 16), or Bᵀ [8, 16] as x2 (lane l addresses n row
    l mod 8, column 8 ((l / 8) mod 2))."""
    kern = Kernel()
    ws = "#gpu.address_space<workgroup>"
    b_shape = "16x8" if transpose_b else "8x16"
    tid = "%tx"
    kern.lines.append(f"    scf.for %i = %tx to {kern.c(512)} step %nt {{")
    r, c = kern.div("%i", 16), kern.rem("%i", 16)
    x = kern.emit(f"memref.load %a[{r}, {c}]", "memref<32x16xf16>")
    kern.lines.append(f"      memref.store {x}, %sa[{r}, {c}] : memref<32x16xf16, {ws}>")
    kern.lines.append("    }")
    cols = 8 if transpose_b else 16
    kern.lines.append(f"    scf.for %i = %tx to {kern.c(128)} step %nt {{")
    r, c = kern.div("%i", cols), kern.rem("%i", cols)
    x = kern.emit(f"memref.load %b[{r}, {c}]", f"memref<{b_shape}xf16>")
    kern.lines.append(f"      memref.store {x}, %sb[{r}, {c}] : memref<{b_shape}xf16, {ws}>")
    kern.lines.append("    }")
    kern.lines.append("    gpu.barrier")
    w = kern.div(tid, 32)
    lane = kern.rem(tid, 32)
    arow = kern.add(kern.mul(w, 16), kern.rem(lane, 16))
    acol = kern.mul(kern.div(lane, 16), 8)
    av = kern.emit(f"nvgpu.ldmatrix %sa[{arow}, {acol}] {{numTiles = 4 : i32, transpose = false}} : "
                   f"memref<32x16xf16, {ws}> -> vector<4x2xf16>")
    if transpose_b:
        brow, bcol = kern.rem(lane, 16), kern.c(0)
    else:
        brow, bcol = kern.rem(lane, 8), kern.mul(kern.rem(kern.div(lane, 8), 2), 8)
    bv = kern.emit(f"nvgpu.ldmatrix %sb[{brow}, {bcol}] {{numTiles = 2 : i32, "
                   f"transpose = {'true' if transpose_b else 'false'}}} : "
                   f"memref<{b_shape}xf16, {ws}> -> vector<2x2xf16>")
    zero = kern.emit("arith.constant dense<0.0>", "vector<2x2xf32>")
    d = kern.emit(f"nvgpu.mma.sync ({av}, {bv}, {zero}) {{mmaShape = [16, 8, 16]}} : "
                  "(vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>")
    g, t = kern.div(lane, 4), kern.rem(lane, 4)
    rg = kern.add(kern.mul(w, 16), g)
    for r in range(2):
        for e in range(2):
            x = kern.emit(f"vector.extract {d}[{r}, {e}] : f32 from vector<2x2xf32>")
            row, col = kern.add(rg, 8 * r), kern.add(kern.mul(t, 2), e)
            kern.lines.append(f"    memref.store {x}, %out[{row}, {col}] : memref<32x8xf32>")
    extra = (f"\n             workgroup(%sa : memref<32x16xf16, {ws}>, "
             f"%sb : memref<{b_shape}xf16, {ws}>)")
    return launch(f"%a: memref<32x16xf16>, %b: memref<{b_shape}xf16>", "memref<32x8xf32>",
                  kern.body(), 64, extra=extra)


@pytest.mark.parametrize("transpose_b", [True, False])
def test_ldmatrix_feeds_mma(transpose_b):
    a = np.random.RandomState(7).randn(32, 16).astype(np.float16)
    b = np.random.RandomState(8).randn(16, 8).astype(np.float16)
    operand = b if transpose_b else np.ascontiguousarray(b.T)
    (out,) = run(ldmatrix_kernel(transpose_b), [a, operand], pipeline=PIPELINE)
    expected = a.astype(np.float64) @ b.astype(np.float64)
    assert np.abs(out - expected).max() / np.abs(expected).max() < 1e-6


def staged_reversal_kernel(copies):
    """A kernel whose 32 threads run `copies` (IR lines staging 4 floats
    each of %in at %i = 4·tx into shared %s and waiting for them), then
    write the chunk of thread 31 - tx to %out at %i after a barrier."""
    ws = "#gpu.address_space<workgroup>"
    body = copies + [
        "    gpu.barrier",
        "    %r = arith.subi %c31, %tx : index",
        "    %j = arith.muli %r, %c4 : index",
        f"    %v = vector.load %s[%j] : memref<128xf32, {ws}>, vector<4xf32>",
        "    vector.store %v, %out[%i] : memref<128xf32>, vector<4xf32>",
    ]
    return launch("%in: memref<128xf32>", "memref<128xf32>", body, 32,
                  extra=f"\n             workgroup(%s : memref<128xf32, {ws}>)")


def test_async_copies_zero_fill_and_wait():
    """cp.async of 4 floats per thread with src-size t mod 5 (the rest
    zero-filled), committed and waited for, then read by another thread
    after a barrier."""
    ws = "#gpu.address_space<workgroup>"
    body = [
        "    %c4 = arith.constant 4 : index",
        "    %c5 = arith.constant 5 : index",
        "    %c31 = arith.constant 31 : index",
        "    %i = arith.muli %tx, %c4 : index",
        "    %n = arith.remui %tx, %c5 : index",
        f"    %tok = nvgpu.device_async_copy %in[%i], %s[%i], 4, %n : memref<128xf32> to memref<128xf32, {ws}>",
        "    %g = nvgpu.device_async_create_group %tok",
        "    nvgpu.device_async_wait %g {numGroups = 0 : i32}",
    ]
    ir = staged_reversal_kernel(body)
    x = np.random.RandomState(9).randn(128).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    staged = x.reshape(32, 4).copy()
    for t in range(32):
        staged[t, t % 5:] = 0
    np.testing.assert_array_equal(out, staged[::-1].ravel())


def test_async_copies_in_loops_and_branches():
    """cp.async issued inside scf.for and scf.if (as a kernel staging
    its tiles does): even threads copy two chunks of 2 floats in a loop,
    odd threads one chunk of 4 under a branch; the group is committed and
    waited for outside them."""
    ws = "#gpu.address_space<workgroup>"
    body = [
        "    %c0 = arith.constant 0 : index",
        "    %c1 = arith.constant 1 : index",
        "    %c2 = arith.constant 2 : index",
        "    %c4 = arith.constant 4 : index",
        "    %c31 = arith.constant 31 : index",
        "    %i = arith.muli %tx, %c4 : index",
        "    %par = arith.remui %tx, %c2 : index",
        "    %even = arith.cmpi eq, %par, %c0 : index",
        "    scf.if %even {",
        "      scf.for %k = %c0 to %c2 step %c1 {",
        "        %o = arith.muli %k, %c2 : index",
        "        %at = arith.addi %i, %o : index",
        f"        %t = nvgpu.device_async_copy %in[%at], %s[%at], 2 : memref<128xf32> to memref<128xf32, {ws}>",
        "      }",
        "    } else {",
        f"      %t = nvgpu.device_async_copy %in[%i], %s[%i], 4 : memref<128xf32> to memref<128xf32, {ws}>",
        "    }",
        "    %g = nvgpu.device_async_create_group",
        "    nvgpu.device_async_wait %g {numGroups = 0 : i32}",
    ]
    ir = staged_reversal_kernel(body)
    x = np.random.RandomState(10).randn(128).astype(np.float32)
    (out,) = run(ir, [x], pipeline=PIPELINE)
    np.testing.assert_array_equal(out, x.reshape(32, 4)[::-1].ravel())


def test_refusals_name_the_op():
    ir = ("func.func @f(%m: memref<32xf32>) {\n  %c1 = arith.constant 1 : index\n"
          "  %c32 = arith.constant 32 : index\n"
          "  gpu.launch blocks(%a, %b, %c) in (%x = %c1, %y = %c1, %z = %c1) "
          "threads(%d, %e, %f) in (%u = %c32, %v = %c1, %w = %c1) {\n"
          "    scf.for %i = %c1 to %d step %c1 {\n      gpu.barrier\n    }\n"
          "    gpu.terminator\n  }\n  return\n}\n")
    with pytest.raises(RunError) as err:
        opt(ir, "--pass-pipeline=builtin.module(func.func(posenc-emulate-gpu-launch))")
    assert "'scf.for' holds 'gpu.barrier' and its bounds may differ between the threads" \
        in err.value.stderr
