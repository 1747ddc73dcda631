"""The Python package: posenc.compile, calls on numpy arrays, errors."""

import numpy as np
import pytest

import posenc
from posenc import reference as ref

SRC = """
func.func @rotate(%x: tensor<?x?x4x32xf32>, %p: tensor<?xi64>) -> tensor<?x?x4x32xf32> {
  %y = posenc.rope %x, %p layout interleaved {base = 500000.0 : f64} : tensor<?x?x4x32xf32>, tensor<?xi64>
  return %y : tensor<?x?x4x32xf32>
}
func.func @alibi(%q: tensor<5xi32>, %k: tensor<7xi32>) -> tensor<8x5x7xf32> {
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 8 : i64} : tensor<5xi32>, tensor<7xi32> -> tensor<8x5x7xf32>
  return %b : tensor<8x5x7xf32>
}
func.func @pair(%x: tensor<3xbf16>) -> (tensor<3xbf16>, tensor<3xbf16>) {
  return %x, %x : tensor<3xbf16>, tensor<3xbf16>
}
func.func private @hidden(%x: tensor<3xf32>) -> tensor<3xf32> {
  return %x : tensor<3xf32>
}
"""


@pytest.fixture(scope="module")
def module():
    return posenc.compile(SRC)


def test_functions_and_signature(module):
    assert module.functions == ["rotate", "alibi", "pair"]
    sig = module.signature("rotate")
    assert sig["inputs"] == [((-1, -1, 4, 32), "f32"), ((-1,), "i64")]
    assert sig["results"] == [((-1, -1, 4, 32), "f32")]


def test_call_dynamic_shapes(module, rng):
    for b, s in [(1, 3), (2, 9)]:
        x = rng.uniform(-1, 1, size=(b, s, 4, 32)).astype(np.float32)
        p = rng.integers(0, 100000, size=s)
        y = module.rotate(x, p)
        assert y.dtype == np.float32 and y.shape == x.shape
        err = np.max(np.abs(y - ref.rope(x, p, base=500000.0, layout="interleaved")))
        assert err <= 1e-5


def test_call_repeatedly_does_not_alias(module):
    q = np.arange(5, dtype=np.int32)
    k = np.arange(7, dtype=np.int32)
    a = module.alibi(q, k)
    b = module.alibi(q, k)
    assert a is not b and np.array_equal(a, b)
    assert np.allclose(a, ref.alibi_bias(q, k, 8), rtol=0, atol=1e-6)


def test_bf16_and_multiple_results(module):
    x = posenc.to_bf16([1.5, -2.25, 3.0])
    a, b = module.pair(x)
    assert a.dtype == np.uint16 and np.array_equal(a, x) and np.array_equal(b, x)
    assert np.array_equal(posenc.from_bf16(a), [1.5, -2.25, 3.0])


def test_private_function_not_callable(module):
    with pytest.raises(AttributeError, match="no public function 'hidden'"):
        module.hidden


def test_wrong_inputs(module):
    with pytest.raises(posenc.Error, match=r"input #0 of @alibi: expected 5xi32, got 5xi64"):
        module.alibi(np.arange(5), np.arange(7, dtype=np.int32))
    with pytest.raises(posenc.Error, match=r"@alibi takes 2 inputs \(%q: 5xi32, %k: 7xi32\), got 1"):
        module.alibi(np.arange(5, dtype=np.int32))
    with pytest.raises(posenc.Error, match="unsupported dtype"):
        module.alibi(np.arange(5, dtype=np.uint8), np.arange(7, dtype=np.int32))


def test_non_contiguous_input(module, rng):
    x = rng.uniform(-1, 1, size=(1, 6, 4, 64)).astype(np.float32)[..., ::2]
    p = np.arange(6, dtype=np.int64)
    y = module.rotate(x, p)
    assert np.max(np.abs(y - ref.rope(x, p, base=500000.0, layout="interleaved"))) <= 1e-5


def test_bad_ir_raises_with_diagnostics():
    with pytest.raises(posenc.Error, match=r"rotary_dim \(3\) must be even and non-negative"):
        posenc.compile(SRC.replace("base = 500000.0 : f64", "rotary_dim = 3 : i64"))


def test_bad_pipeline_and_target():
    with pytest.raises(posenc.Error, match="invalid pipeline"):
        posenc.compile(SRC, pipeline="not-a-pass")
    with pytest.raises(ValueError, match="unknown target"):
        posenc.compile(SRC, target="tpu")


def test_nan_propagates(module):
    x = np.zeros((1, 2, 4, 32), np.float32)
    x[0, 1, 2, 5] = np.nan
    y = module.rotate(x, np.array([3, 4]))
    assert np.isnan(y[0, 1, 2, 5]) and np.isnan(y[0, 1, 2, 4])
    assert np.isnan(y).sum() == 2


STEP = """
func.func @step(%x: tensor<1x4xf32>, %pos: tensor<1xi64>, %cache: memref<8x4xf32>) -> tensor<4xf32> {
  %c0 = arith.constant 0 : index
  %p64 = tensor.extract %pos[%c0] : tensor<1xi64>
  %p = arith.index_cast %p64 : i64 to index
  %t = bufferization.to_tensor %cache restrict writable : memref<8x4xf32> to tensor<8x4xf32>
  %t2 = tensor.insert_slice %x into %t[%p, 0] [1, 4] [1, 1] : tensor<1x4xf32> into tensor<8x4xf32>
  %init = tensor.empty() : tensor<4xf32>
  %z = arith.constant 0.0 : f32
  %f = linalg.fill ins(%z : f32) outs(%init : tensor<4xf32>) -> tensor<4xf32>
  %s = linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (j)>],
                       iterator_types = ["reduction", "parallel"]}
      ins(%t2 : tensor<8x4xf32>) outs(%f : tensor<4xf32>) {
  ^bb0(%a: f32, %b: f32):
    %r = arith.addf %a, %b : f32
    linalg.yield %r : f32
  } -> tensor<4xf32>
  bufferization.materialize_in_destination %t2 in restrict writable %cache
      : (tensor<8x4xf32>, memref<8x4xf32>) -> ()
  return %s : tensor<4xf32>
}
"""


def test_memref_argument_is_updated_in_place():
    # A KV-cache-style state: the caller's array is written row by row,
    # with no copy in or out; tensor arguments stay copies.
    m = posenc.compile(STEP)
    assert m.signature("step")["by_reference"] == [2]
    cache = np.zeros((8, 4), np.float32)
    x = np.arange(1, 5, dtype=np.float32).reshape(1, 4)
    for p in range(3):
        s = m.step(x * (p + 1), np.array([p], np.int64), cache)
    np.testing.assert_array_equal(cache[:3], x * np.array([[1], [2], [3]], np.float32))
    assert not cache[3:].any()
    np.testing.assert_array_equal(s, x[0] * 6)
    np.testing.assert_array_equal(x, np.arange(1, 5, dtype=np.float32).reshape(1, 4))


@pytest.mark.parametrize("bad", [np.zeros((8, 4)), np.zeros((4, 8), np.float32).T,
                                 [[0.0] * 4] * 8])
def test_memref_argument_needs_the_exact_array(bad):
    m = posenc.compile(STEP)
    with pytest.raises(posenc.Error, match="passed by reference"):
        m.step(np.zeros((1, 4), np.float32), np.array([0], np.int64), bad)


def test_compile_from_a_path_names_the_file(tmp_path):
    path = tmp_path / "bad_rope.mlir"
    path.write_text(SRC.replace("base = 500000.0 : f64", "rotary_dim = 3 : i64"))
    for source in (path, str(path)):
        with pytest.raises(posenc.Error) as info:
            posenc.compile(source)
        assert f"{path}:3:" in str(info.value)
        first = info.value.diagnostics[0]
        assert first["location"].startswith(f"{path}:3:") and first["severity"] == "error"
        assert "rotary_dim (3) must be even" in first["message"]
        assert [n["severity"] for n in first["notes"]] == ["note"]
        assert first["notes"][0]["message"].startswith("see current operation")
    good = tmp_path / "good.mlir"
    good.write_text(SRC)
    assert posenc.compile(good).functions == ["rotate", "alibi", "pair"]
    with pytest.raises(FileNotFoundError, match="missing.mlir"):
        posenc.compile(str(tmp_path / "missing.mlir"))
    with pytest.raises(TypeError, match="IR text or a path"):
        posenc.compile(42)


def test_error_diagnostics_are_data():
    with pytest.raises(posenc.Error) as info:
        posenc.compile("func.func @f(%x: tensor<4xf32>) {\n  %y = posenc.rope %x\n}\n")
    [diag] = info.value.diagnostics
    assert diag["location"] == "<input>:2:22" and diag["severity"] == "error"
    assert diag["message"] == "expected ','"
    # Errors that are not MLIR diagnostics carry none.
    with pytest.raises(posenc.Error) as info:
        posenc.compile(SRC, pipeline="not-a-pass")
    assert list(info.value.diagnostics) == []


def test_pipeline_options_as_keywords(module, rng):
    x = rng.uniform(-1, 1, size=(2, 5, 4, 32)).astype(np.float32)
    p = rng.integers(0, 1000, size=5)
    m = posenc.compile(SRC, fold_max_elements=0, attention_tile_q=32, fuse_bias=False,
                       mla="naive", vector_width=8, threads=1)
    assert np.array_equal(m.rotate(x, p), module.rotate(x, p))
    defaults = posenc.pipeline_options()
    assert defaults["attention-tile-q"] == "64" and defaults["fuse-bias"] == "true"
    assert defaults["mla"] == "auto" and defaults["num-threads"] == "1"
    # Every option, at its default, is accepted by name.
    typed = {k.replace("-", "_"): (v == "true") if v in ("true", "false")
             else int(v) if v.lstrip("-").isdigit() else v for k, v in defaults.items()}
    posenc.compile(SRC, **typed)
    with pytest.raises(TypeError, match="unknown option 'atention_tile_q'.*attention_tile_q"):
        posenc.compile(SRC, atention_tile_q=32)
    with pytest.raises(TypeError, match="fuse_bias must be True or False, got 1"):
        posenc.compile(SRC, fuse_bias=1)
    with pytest.raises(TypeError, match="attention_tile_q must be an int"):
        posenc.compile(SRC, attention_tile_q="32")
    with pytest.raises(TypeError, match="must be a word"):
        posenc.compile(SRC, mla="naive} canonicalize{")
    with pytest.raises(posenc.Error, match="attention-tile-q = 0 must be >= 1"):
        posenc.compile(SRC, attention_tile_q=0)
    with pytest.raises(TypeError, match="not both"):
        posenc.compile(SRC, pipeline="posenc-lower-to-cpu", fuse_bias=False)
    with pytest.raises(TypeError, match="not both"):
        posenc.compile(SRC, threads=2, num_threads=2)
    assert set(posenc.pipeline_options("posenc-lower-to-nvvm")) >= {"chip", "emulate"}
    with pytest.raises(posenc.Error, match="no posenc pipeline named 'x'"):
        posenc.pipeline_options("x")


def test_version():
    assert posenc.__version__ == "0.1.0"
    assert posenc.llvm_version.split(".")[0] == "22"


WRITES_ITS_ARGUMENT = """
func.func @bump(%x: tensor<4xf32>) -> tensor<4xf32> {
  %c0 = arith.constant 0 : index
  %one = arith.constant 100.0 : f32
  %y = tensor.insert %one into %x[%c0] : tensor<4xf32>
  return %y : tensor<4xf32>
}
func.func @double(%x: tensor<6xf32>) -> tensor<6xf32> {
  %y = linalg.generic {indexing_maps = [affine_map<(i) -> (i)>], iterator_types = ["parallel"]}
      outs(%x : tensor<6xf32>) {
  ^bb0(%a: f32):
    %d = arith.addf %a, %a : f32
    linalg.yield %d : f32
  } -> tensor<6xf32>
  return %y : tensor<6xf32>
}
"""


@pytest.mark.parametrize("pipeline", [None, "posenc-lower-to-cpu{vectorize-matmul=false}",
                                      "one-shot-bufferize{bufferize-function-boundaries},"
                                      "convert-linalg-to-loops,convert-scf-to-cf,convert-to-llvm,"
                                      "reconcile-unrealized-casts"])
def test_arrays_passed_in_place_are_never_written(pipeline):
    """Tensor arguments are the caller's arrays (no copy): the runtime makes
    every pipeline treat them as read-only, so IR that updates its argument
    in place gets a copy inside the compiled code instead."""
    m = posenc.compile(WRITES_ITS_ARGUMENT, pipeline=pipeline)
    x = np.arange(4, dtype=np.float32)
    assert np.array_equal(m.bump(x), [100, 1, 2, 3])
    assert np.array_equal(x, [0, 1, 2, 3])
    y = np.arange(6, dtype=np.float32)
    assert np.array_equal(m.double(y), 2 * np.arange(6))
    assert np.array_equal(y, np.arange(6))
    # Elements not aligned to their size are copied first.
    raw = np.zeros(6 * 4 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.float32, count=6, offset=1)
    unaligned.setflags(write=False)
    raw[1:] = np.arange(6, dtype=np.float32).view(np.uint8)
    assert not unaligned.flags.aligned
    assert np.array_equal(m.double(unaligned), 2 * np.arange(6))
    assert np.array_equal(raw[1:].view(np.float32), np.arange(6))


SCALINGS = [None,
            {"kind": "linear", "factor": 4},
            {"kind": "ntk", "alpha": 2.5},
            {"kind": "dynamic", "factor": 2.0, "original": 2048},
            {"kind": "yarn", "factor": 4.0, "original": 32768},
            {"kind": "yarn", "factor": 40.0, "original": 4096, "mscale": 1.0, "mscale_all_dim": 0.707,
             "beta_fast": 32.0, "beta_slow": 1.0, "truncate": False},
            {"kind": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original": 8192},
            {"kind": "longrope", "short_factor": list(np.linspace(1.0, 1.5, 24)),
             "long_factor": np.linspace(1.0, 9.0, 24), "original": 4096, "max_positions": 131072}]


@pytest.mark.parametrize("scaling", SCALINGS, ids=lambda s: s["kind"] if s else "none")
@pytest.mark.parametrize("seq_len", [None, 100, 16384])
def test_rope_frequencies_are_the_compilers(scaling, seq_len):
    """posenc.rope_frequencies equals the float64 reference, and rope
    compiled with that configuration rotates by those angles."""
    omega, factor = posenc.rope_frequencies(64, 500000.0, scaling, rotary_dim=48, seq_len=seq_len)
    positions = np.arange(seq_len or 1)
    want = ref.rope_frequencies(500000.0, 48, scaling, positions)
    assert omega.dtype == np.float64 and omega.shape == (24,)
    np.testing.assert_allclose(omega, want, rtol=1e-15, atol=0)
    assert factor == pytest.approx(ref.rope_attention_factor(scaling), rel=1e-15)
    attr = posenc.rope_scaling_attribute(scaling)
    s = len(positions)
    m = posenc.compile(f"""
func.func @f(%x: tensor<1x{s}x1x64xf32>, %p: tensor<{s}xi32>) -> tensor<1x{s}x1x64xf32> {{
  %y = posenc.rope %x, %p layout half {{base = 500000.0 : f64, rotary_dim = 48 : i64, scaling = {attr}}}
      : tensor<1x{s}x1x64xf32>, tensor<{s}xi32>
  return %y : tensor<1x{s}x1x64xf32>
}}""")
    x = np.zeros((1, s, 1, 64), np.float32)
    x[..., :24] = 1.0  # the first of each pair: y = a·(cos θ, sin θ)
    y = m.f(x, positions.astype(np.int32))
    theta = positions[:, None] * omega[None, :]
    np.testing.assert_allclose(y[0, :, 0, :24], factor * np.cos(theta), atol=2e-6 * factor)
    np.testing.assert_allclose(y[0, :, 0, 24:48], factor * np.sin(theta), atol=2e-6 * factor)


def test_rope_frequencies_errors():
    llama3 = {"kind": "llama3", "factor": 8.0, "low_freq_factor": 4.0, "high_freq_factor": 1.0,
              "original": 8192}
    with pytest.raises(posenc.Error, match="low_freq_factor \\(4\\) must be at most high_freq_factor"):
        posenc.rope_frequencies(128, 1e4, llama3)
    with pytest.raises(posenc.Error, match="unknown rope scaling kind 'yarnn'"):
        posenc.rope_frequencies(128, 1e4, {"kind": "yarnn", "factor": 8.0})
    with pytest.raises(posenc.Error, match="requires parameter 'factor'"):
        posenc.rope_frequencies(128, 1e4, {"kind": "linear"})
    with pytest.raises(posenc.Error, match="rotary dims must be even, positive and at most 2\\^20 .*got 127"):
        posenc.rope_frequencies(127)
    with pytest.raises(posenc.Error, match="base must be a finite number > 1"):
        posenc.rope_frequencies(128, 0.5)
    with pytest.raises(ValueError, match="rotary_dim \\(130\\) must be <= head_dim \\(128\\)"):
        posenc.rope_frequencies(128, rotary_dim=130)
    with pytest.raises(TypeError, match="must be a dict with a 'kind'"):
        posenc.rope_frequencies(128, scaling={"factor": 2.0})
    with pytest.raises(posenc.Error, match="seq_len must be >= 0"):
        posenc.rope_frequencies(128, seq_len=-1)


def test_alibi_heads_from_the_result_type():
    m = posenc.compile("""
func.func @f(%q: tensor<5xi32>, %k: tensor<7xi32>) -> (tensor<6x5x7xf32>, tensor<6x5x7xf32>) {
  %a = posenc.alibi_bias %q, %k mode causal : tensor<5xi32>, tensor<7xi32> -> tensor<6x5x7xf32>
  %b = posenc.alibi_bias %q, %k mode causal {num_heads = 6 : i64} : tensor<5xi32>, tensor<7xi32> -> tensor<6x5x7xf32>
  return %a, %b : tensor<6x5x7xf32>, tensor<6x5x7xf32>
}""")
    q, k = np.arange(5, dtype=np.int32), np.arange(7, dtype=np.int32)
    a, b = m.f(q, k)
    assert np.array_equal(a, b)
    np.testing.assert_allclose(a, ref.alibi_bias(q, k, 6), rtol=0, atol=1e-6)


def test_deepseek_yarn_attention_factor():
    """The YaRN trap the attribute description shows: DeepSeek-V3's config
    (mscale = mscale_all_dim = 1) gives factor 1; the attribute's defaults
    (mscale_all_dim = 0) give 0.1·ln 40 + 1. posenc.models copies both."""
    import json
    import os
    from posenc import models
    cfg = json.load(open(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "configs",
                                      "deepseek-v3.json")))
    sc = models.rope_scaling(cfg)
    assert sc["mscale"] == sc["mscale_all_dim"] == 1.0
    assert posenc.rope_frequencies(64, 10000.0, sc)[1] == 1.0
    bare = {"kind": "yarn", "factor": 40.0, "original": 4096}
    assert posenc.rope_frequencies(64, 10000.0, bare)[1] == pytest.approx(0.1 * np.log(40) + 1)


def test_functions_named_like_library_symbols():
    """Compiled code calls libm and libc by name (sin, cos, free, ...): a
    module's own @sin or @free must not be what those calls reach (before,
    @sin's f64 sines called @sin itself until the stack overflowed)."""
    m = posenc.compile("""
func.func @sin(%p: tensor<8xi64>) -> tensor<8x4xf64> {
  %y = posenc.sinusoidal %p layout half {dim = 4 : i64} : tensor<8xi64> -> tensor<8x4xf64>
  return %y : tensor<8x4xf64>
}
func.func @cos(%x: tensor<1x8x1x4xf64>, %p: tensor<8xi64>) -> tensor<1x8x1x4xf64> {
  %y = posenc.rope %x, %p layout half : tensor<1x8x1x4xf64>, tensor<8xi64>
  return %y : tensor<1x8x1x4xf64>
}
func.func @free(%q: tensor<5xi32>) -> tensor<2x5x5xf32> {
  %b = posenc.alibi_bias %q, %q mode causal : tensor<5xi32>, tensor<5xi32> -> tensor<2x5x5xf32>
  return %b : tensor<2x5x5xf32>
}""")
    assert m.functions == ["sin", "cos", "free"]
    p = np.arange(8)
    np.testing.assert_allclose(m.sin(p), ref.sinusoidal(p, 4, layout="half"), rtol=0, atol=1e-15)
    x = np.ones((1, 8, 1, 4))
    np.testing.assert_allclose(m.cos(x, p), ref.rope(x, p), rtol=0, atol=1e-14)
    q = np.arange(5, dtype=np.int32)
    np.testing.assert_allclose(m.free(q), ref.alibi_bias(q, q, 2), rtol=0, atol=1e-6)


def test_reserved_function_prefix():
    with pytest.raises(posenc.Error, match="@__posenc_fn_f: function names beginning with "
                                           "__posenc_fn_ are reserved"):
        posenc.compile("func.func @__posenc_fn_f() { return }\nfunc.func @f() { return }")


def test_hostile_round_of_the_new_api(tmp_path):
    """Inputs a hostile-input round found mishandled: each is a message
    naming the value, never garbage, a crash or a pybind signature."""
    with pytest.raises(posenc.Error, match="at most 2\\^20"):
        posenc.rope_frequencies(2**40)
    with pytest.raises(ValueError, match="head_dim .* is out of range"):
        posenc.rope_frequencies(2**70)
    with pytest.raises(posenc.Error, match="longrope short_factor has 16 entries but rotary dims / 2 is 32"):
        posenc.rope_frequencies(64, 1e4, dict(kind="longrope", original=128, max_positions=4096,
                                              short_factor=[2.0] * 16, long_factor=[2.0] * 16))
    omega, _ = posenc.rope_frequencies(64, 1e4, {"kind": "linear", "factor": 1e-5})
    np.testing.assert_allclose(omega, ref.rope_frequencies(1e4, 64, {"kind": "linear", "factor": 1e-5}))
    with pytest.raises(ValueError, match="must be finite, got nan"):
        posenc.rope_frequencies(64, 1e4, {"kind": "linear", "factor": float("nan")})
    posenc.rope_frequencies(64, 1e4, "#posenc.rope_scaling<linear, factor = 2.0>\n")
    long = {"kind": "longrope", "original": 128, "max_positions": 4096,
            "short_factor": [1.0] * 100000, "long_factor": [1.0] * 100000}
    with pytest.raises(posenc.Error) as info:
        posenc.rope_frequencies(64, 1e4, long)
    assert len(str(info.value)) < 1000
    with pytest.raises(ValueError, match="mla must be one of auto, naive, absorbed, got 'bogus'"):
        posenc.compile(SRC, mla="bogus")
    with pytest.raises(ValueError, match="out of range"):
        posenc.compile(SRC, attention_tile_q=2**70)
    with pytest.raises(ValueError, match="threads .* is out of range"):
        posenc.compile(SRC, threads=2**70)
    # A str with '{' is IR, even when it ends in ".mlir".
    assert posenc.compile("func.func @h() { return } // x.mlir").functions == ["h"]
    bad = tmp_path / "latin1.mlir"
    bad.write_bytes(b"// \xff\n")
    with pytest.raises(ValueError, match="latin1.mlir is not UTF-8 text"):
        posenc.compile(bad)
    with pytest.raises(posenc.Error, match=r"2 public functions \(@f, @g\); name the entry point"):
        posenc.compile("func.func @f() { return }\nfunc.func @g() { return }").call("")


def test_new_user_round(tmp_path):
    """What a README walk on a fresh clone found: float arrays given to
    from_bf16 and a directory given to compile are refused by name."""
    with pytest.raises(TypeError, match="bfloat16 bit patterns .*got float32"):
        posenc.from_bf16(np.array([1.5], np.float32))
    assert posenc.from_bf16([]).size == 0
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        posenc.compile(str(tmp_path))


def test_function_numpy_cannot_call_says_why():
    """A function with a scalar argument is not an attribute; the error
    says why (it said only 'no public function')."""
    m = posenc.compile("""
func.func @g(%x: tensor<4xf64>, %c: f64) -> tensor<4xf64> {
  return %x : tensor<4xf64>
}
func.func @h(%x: tensor<4xf64>) -> tensor<4xf64> {
  return %x : tensor<4xf64>
}""")
    with pytest.raises(AttributeError, match="'g': argument #1 of @g has type f64; entry "
                                             "points take ranked tensors"):
        m.g
    with pytest.raises(AttributeError, match="no public function 'nope'$"):
        m.nope
    assert not hasattr(m, "g") and hasattr(m, "h")
    np.testing.assert_array_equal(m.h(np.arange(4.0)), np.arange(4.0))
