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
    with pytest.raises(posenc.Error, match="@alibi takes 2 inputs, got 1"):
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
