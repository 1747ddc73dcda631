"""Hostile inputs at the runtime boundary (reliability round 2): failed
allocations in compiled code, buffers of failed calls, non-native arrays,
pipelines that do not reach LLVM, posenc-run's own allocations and writes.
Each one is the call's error with a message naming what went wrong, and the
process stays usable."""

import os
import subprocess

import numpy as np
import pytest

import posenc
from harness import POSENC_RUN, RunError, func_ir, run

ALIBI = func_ir([("q", "tensor<?xi32>"), ("k", "tensor<?xi32>")],
                ["%b = posenc.alibi_bias %q, %k mode causal {num_heads = 16} "
                 ": tensor<?xi32>, tensor<?xi32> -> tensor<16x?x?xf32>"],
                [("%b", "tensor<16x?x?xf32>")])

ROPE = func_ir([("x", "tensor<?x?x2x8xf32>"), ("p", "tensor<?xi32>")],
               ["%y = posenc.rope %x, %p layout half : tensor<?x?x2x8xf32>, tensor<?xi32>"],
               [("%y", "tensor<?x?x2x8xf32>")])

# A buffer (the bias) is allocated before the rope's shape check fails.
BIAS_THEN_CHECK = func_ir(
    [("q", "tensor<?xi32>"), ("x", "tensor<?x?x2x8xf32>"), ("p", "tensor<?xi32>")],
    ["%b = posenc.alibi_bias %q, %q mode causal {num_heads = 16} "
     ": tensor<?xi32>, tensor<?xi32> -> tensor<16x?x?xf32>",
     "%y = posenc.rope %x, %p layout half : tensor<?x?x2x8xf32>, tensor<?xi32>"],
    [("%b", "tensor<16x?x?xf32>"), ("%y", "tensor<?x?x2x8xf32>")])

# 16 heads x 2^20 x 2^20 f32: 64 TiB, more than any machine maps.
HUGE = np.zeros(1 << 20, np.int32)


def resident_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def alibi(n):
    return np.arange(n, dtype=np.int32)


@pytest.mark.parametrize("threads", [1, 2])
def test_failed_allocation_is_the_calls_error(threads):
    m = posenc.compile(ALIBI, threads=threads)
    with pytest.raises(posenc.Error) as info:
        m.f(HUGE, HUGE)
    text = str(info.value)
    assert "out of memory" in text and "posenc.alibi_bias at <input>:" in text, text
    assert "70368744177664 bytes (64 TiB)" in text, text
    # The process and the module stay usable.
    got = m.f(alibi(5), alibi(5))
    slopes = 2.0 ** (-8.0 * np.arange(1, 17) / 16)
    i, j = np.meshgrid(np.arange(5), np.arange(5), indexing="ij")
    want = -slopes[:, None, None] * (i - j)
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_posenc_run_reports_failed_allocation():
    with pytest.raises(RunError) as info:
        run(ALIBI, [HUGE, HUGE])
    assert info.value.returncode == 1, info.value.stderr
    assert "@f stopped: out of memory: posenc.alibi_bias" in info.value.stderr
    assert "Stack dump" not in info.value.stderr


def test_failed_calls_free_their_buffers():
    """1,000 calls whose check fails after a 4 MiB buffer was allocated:
    without freeing, 4 GiB; the resident size must stay flat."""
    m = posenc.compile(BIAS_THEN_CHECK)
    q, x, p = alibi(256), np.zeros((1, 10, 2, 8), np.float32), np.zeros(9, np.int32)
    for _ in range(10):
        with pytest.raises(posenc.Error, match="sequence length of pos"):
            m.f(q, x, p)
    before = resident_bytes()
    for _ in range(1000):
        with pytest.raises(posenc.Error, match="sequence length of pos"):
            m.f(q, x, p)
    grown = resident_bytes() - before
    # ASan keeps freed blocks in a quarantine (256 MiB by default); leaking
    # would be 4 GiB either way.
    bound = (512 if "asan" in os.environ.get("LD_PRELOAD", "") else 64) << 20
    assert grown < bound, f"{grown / 2**20:.0f} MiB more after 1,000 failed calls"
    # Successful calls free theirs too (results are copied out).
    b, y = m.f(q, x, np.zeros(10, np.int32))
    assert b.shape == (16, 256, 256) and y.shape == (1, 10, 2, 8)


@pytest.mark.parametrize("dtype,elem", [("f4", "f32"), ("f8", "f64"), ("f2", "f16"),
                                        ("i4", "i32"), ("i8", "i64")])
def test_non_native_byte_order_keeps_values(dtype, elem, rng):
    """A big-endian (or unaligned, or strided) array is converted, never
    read as native bytes."""
    t = f"tensor<?x{elem}>"
    m = posenc.compile(func_ir([("x", t)], [], [("%x", t)]))
    x = (rng.standard_normal(37) * 1000).astype("<" + dtype)
    np.testing.assert_array_equal(m.f(x.astype(">" + dtype)), x)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    unaligned = np.ndarray(x.shape, x.dtype, raw, 1)
    unaligned[...] = x
    if x.dtype.itemsize > 1:
        assert not unaligned.flags.aligned
    np.testing.assert_array_equal(m.f(unaligned), x)
    np.testing.assert_array_equal(m.f(np.repeat(x, 2)[::2]), x)


def test_rope_positions_in_big_endian_match_native(rng):
    m = posenc.compile(ROPE)
    x = rng.standard_normal((1, 6, 2, 8)).astype(np.float32)
    p = np.arange(6, dtype=np.int32) + 5
    want = m.f(x, p)
    np.testing.assert_array_equal(m.f(x.astype(">f4"), p.astype(">i4")), want)


def test_by_reference_arrays_must_be_native_and_aligned():
    m = posenc.compile("func.func @f(%c: memref<4xf32>) {\n  return\n}\n")
    ok = np.zeros(4, np.float32)
    m.f(ok)
    for bad in (ok.astype(">f4"), np.ndarray((4,), np.float32, np.zeros(17, np.uint8), 1)):
        with pytest.raises(posenc.Error, match="native byte order"):
            m.f(bad)


def test_anchored_and_plain_pipelines_are_the_same(rng):
    x = rng.standard_normal((1, 4, 2, 8)).astype(np.float32)
    p = np.arange(4, dtype=np.int32)
    plain = posenc.compile(ROPE, pipeline="posenc-lower-to-cpu").f(x, p)
    anchored = posenc.compile(
        ROPE, pipeline="builtin.module(posenc-lower-to-cpu{fold-max-elements=0})").f(x, p)
    np.testing.assert_array_equal(plain, anchored)


@pytest.mark.parametrize("pipeline", ["canonicalize", "builtin.module(cse)"])
def test_pipeline_that_does_not_reach_llvm_is_named(pipeline):
    with pytest.raises(posenc.Error) as info:
        posenc.compile(ROPE, pipeline=pipeline)
    text = str(info.value)
    assert "does not lower the module to the LLVM dialect (func.func is left)" in text, text
    assert "LLVMTranslationDialectInterface" not in text


def test_verifier_error_is_not_a_parse_error():
    bad = ROPE.replace("layout half", "layout half {rotary_dim = 10 : i64}")
    with pytest.raises(posenc.Error) as info:
        posenc.compile(bad)
    text = str(info.value)
    assert "the verifier rejects it" in text and "cannot parse" not in text, text


def posenc_run(*args):
    return subprocess.run([POSENC_RUN, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture
def alibi_file(tmp_path):
    path = tmp_path / "alibi.mlir"
    path.write_text(ALIBI)
    return str(path)


def test_posenc_run_input_larger_than_memory(alibi_file):
    proc = posenc_run(alibi_file, "--input=random:68719476736xi32", "--input=random:4xi32")
    assert proc.returncode == 1, proc.stderr
    assert "'random:68719476736xi32' needs 274877906944 bytes" in proc.stderr
    assert "LLVM ERROR" not in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_posenc_run_write_failure(alibi_file):
    proc = posenc_run(alibi_file, "--input=random:4xi32", "--input=random:4xi32",
                      "--output=@/dev/full")
    assert proc.returncode == 1, proc.stderr
    assert "cannot write '/dev/full'" in proc.stderr and "LLVM ERROR" not in proc.stderr


def test_posenc_run_output_without_at(alibi_file, tmp_path):
    target = tmp_path / "noat.npy"
    proc = posenc_run(alibi_file, "--input=random:4xi32", "--input=random:4xi32",
                      f"--output={target}")
    assert proc.returncode == 1, proc.stderr
    assert "expected @file.npy" in proc.stderr


def test_posenc_run_summary_counts_nans(tmp_path):
    path = tmp_path / "id.mlir"
    path.write_text(func_ir([("x", "tensor<3xf32>")], [], [("%x", "tensor<3xf32>")]))
    x = tmp_path / "x.npy"
    np.save(x, np.array([np.nan, 2.0, -5.0], np.float32))
    proc = posenc_run(str(path), f"--input=@{x}")
    assert proc.returncode == 0, proc.stderr
    assert "max|x|=5.000000e+00 nan=1" in proc.stdout, proc.stdout


# Every float attribute of every op at values that are finite and positive
# in f64 but overflow or underflow what the op derives from them: the
# verifier rejects the value naming the derived quantity, or the op computes
# finite numbers. Never NaN/Inf from finite inputs.
EXTREME_FLOATS = ["1.0e-320", "1.0e-300", "1.0e-45", "1.0e-30", "1.0e+30", "1.0e+39",
                  "1.0e+300", "1.7e+308"]
ROPE_TEMPLATES = [
    "{{base = {v} : f64}}",
    "{{attention_factor = {v} : f64}}",
    "{{scaling = #posenc.rope_scaling<linear, factor = {v}>}}",
    "{{scaling = #posenc.rope_scaling<ntk, alpha = {v}>}}",
    "{{scaling = #posenc.rope_scaling<dynamic, factor = {v}, original = 16>}}",
    "{{scaling = #posenc.rope_scaling<yarn, factor = {v}, original = 16>}}",
    "{{scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 16, beta_fast = {v}>}}",
    "{{scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 16, beta_slow = {v}>}}",
    "{{scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 16, mscale = {v}, "
    "mscale_all_dim = 1.0>}}",
    "{{scaling = #posenc.rope_scaling<yarn, factor = 4.0, original = 16, mscale = 1.0, "
    "mscale_all_dim = {v}>}}",
    "{{scaling = #posenc.rope_scaling<llama3, factor = {v}, low_freq_factor = 1.0, "
    "high_freq_factor = 4.0, original = 16>}}",
    "{{scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = {v}, "
    "high_freq_factor = 4.0, original = 16>}}",
    "{{scaling = #posenc.rope_scaling<llama3, factor = 8.0, low_freq_factor = 1.0, "
    "high_freq_factor = {v}, original = 16>}}",
    "{{scaling = #posenc.rope_scaling<longrope, short_factor = [1.0, 1.0, 1.0, {v}], "
    "long_factor = [{v}, 2.0, 2.0, 2.0], original = 16, max_positions = 64>}}",
]
POSITIONS = np.array([0, 1, 15, 16, 1000, 2**24, 2**31 - 1], np.int64)


def finite_or_rejected(ir, inputs):
    try:
        m = posenc.compile(ir)
    except posenc.Error as e:
        text = str(e)
        assert "op" in text and ("must" in text or "is not" in text or "overflow" in text), text
        return "rejected"
    out = m.f(*inputs)
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        assert np.all(np.isfinite(o)), f"non-finite output of\n{ir}"
    return "finite"


@pytest.mark.parametrize("template", ROPE_TEMPLATES)
def test_rope_float_attributes_never_make_nan(template, rng):
    # |x| <= 1/2: a legal attention factor near the f32 limit (about 1e38)
    # times a rotation of x stays finite; larger inputs could overflow.
    x = rng.uniform(-0.5, 0.5, (1, len(POSITIONS), 1, 8)).astype(np.float32)
    seen = set()
    for v in EXTREME_FLOATS:
        attrs = template.format(v=v)
        ir = func_ir([("x", "tensor<1x7x1x8xf32>"), ("p", "tensor<7xi64>")],
                     [f"%y = posenc.rope %x, %p layout half {attrs} "
                      ": tensor<1x7x1x8xf32>, tensor<7xi64>"],
                     [("%y", "tensor<1x7x1x8xf32>")])
        seen.add(finite_or_rejected(ir, [x, POSITIONS]))
    assert seen  # each value was decided one way or the other


@pytest.mark.parametrize("v", EXTREME_FLOATS)
def test_other_float_attributes_never_make_nan(v, rng):
    p = POSITIONS
    cases = [
        (f"%y = posenc.sinusoidal %p layout half {{base = {v} : f64, dim = 8 : i64}} "
         ": tensor<7xi64> -> tensor<7x8xf32>", [p], [("p", "tensor<7xi64>")], "tensor<7x8xf32>"),
        (f"%y = posenc.alibi_bias %p, %p mode symmetric {{num_heads = 4 : i64, max_bias = {v} : f64}} "
         ": tensor<7xi64>, tensor<7xi64> -> tensor<4x7x7xf32>", [p],
         [("p", "tensor<7xi64>")], "tensor<4x7x7xf32>"),
        (f"%y = posenc.alibi_bias %p, %p mode symmetric {{num_heads = 1 : i64, "
         f"slopes = array<f64: {v}>}} : tensor<7xi64>, tensor<7xi64> -> tensor<1x7x7xf32>", [p],
         [("p", "tensor<7xi64>")], "tensor<1x7x7xf32>"),
    ]
    q = rng.standard_normal((1, 4, 2, 8)).astype(np.float32)
    t = "tensor<1x4x2x8xf32>"
    for attr in (f"scale = {v} : f64", f"softcap = {v} : f64"):
        cases.append((f"%e = tensor.empty() : {t}\n  %y = posenc.attention %q, %q, %q causal "
                      f"outs(%e) {{{attr}}} : {t}, {t}, {t}, {t}", [q], [("q", t)], t))
    for body, inputs, args, rt in cases:
        finite_or_rejected(func_ir(args, [body], [("%y", rt)]), inputs)


def test_gpu_pipeline_names_a_dialect_it_cannot_lower():
    from harness import opt
    ir = func_ir([("x", "tensor<4xf32>")],
                 ["%y = tosa.abs %x : (tensor<4xf32>) -> tensor<4xf32>"], [("%y", "tensor<4xf32>")])
    with pytest.raises(RunError) as info:
        opt(ir, "--pass-pipeline=builtin.module(posenc-lower-to-nvvm{emulate=true})")
    assert ("'tosa.abs' op cannot be lowered by posenc-lower-to-nvvm: lower the 'tosa' dialect"
            in info.value.stderr), info.value.stderr
