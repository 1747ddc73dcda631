"""posenc-run: bad inputs get a clear message and exit code 1, never a
crash; good ones round-trip through .npy."""

import os
import subprocess

import numpy as np
import pytest

from harness import POSENC_OPT, POSENC_RUN, RunError, func_ir, run

ROPE = func_ir([("x", "tensor<1x4x2x8xf32>"), ("p", "tensor<4xi32>")],
               ["%y = posenc.rope %x, %p layout half : tensor<1x4x2x8xf32>, tensor<4xi32>"],
               [("%y", "tensor<1x4x2x8xf32>")])
X = np.zeros((1, 4, 2, 8), np.float32)
P = np.arange(4, dtype=np.int32)


def expect_error(ir, inputs, fragment, **kw):
    with pytest.raises(RunError) as info:
        run(ir, inputs, **kw)
    assert info.value.returncode == 1, info.value.stderr
    assert fragment in info.value.stderr, info.value.stderr


def test_wrong_input_count():
    expect_error(ROPE, [X], "@f takes 2 inputs (%x: 1x4x2x8xf32, %p: 4xi32), got 1")


def test_wrong_shape():
    expect_error(ROPE, [np.zeros((1, 4, 2, 6), np.float32), P],
                 "input #0 of @f: expected 1x4x2x8xf32, got 1x4x2x6xf32")


def test_wrong_dtype():
    expect_error(ROPE, [X, P.astype(np.int64)], "input #1 of @f: expected 4xi32, got 4xi64")


def test_unsupported_dtype():
    expect_error(ROPE, [X, P.astype(np.uint8)], "unsupported dtype '|u1'")


def test_uint16_only_as_bf16():
    expect_error(ROPE, [X.astype(np.uint16), P], "uint16 data is only accepted as bf16")


def test_unknown_entry():
    expect_error(ROPE, [X, P], "no public function 'g' in the input", entry="g")


def test_bad_pipeline():
    expect_error(ROPE, [X, P], "invalid pipeline 'no-such-pass'", pipeline="no-such-pass")


def test_parse_error():
    expect_error("func.func @f( {", [], "cannot parse the input")


TRANSPOSE = """func.func @f(%a: tensor<2x3xf32>) -> tensor<3x2xf32> {
  %e = tensor.empty() : tensor<3x2xf32>
  %t = linalg.transpose ins(%a : tensor<2x3xf32>) outs(%e : tensor<3x2xf32>) permutation = PERM
  return %t : tensor<3x2xf32>
}
"""


@pytest.mark.parametrize("perm", ["[1, 0.5]", "[1 0]", "[1, 0", "1", "[x]"])
def test_malformed_linalg_list_is_an_error(perm):
    """linalg.transpose's `permutation` (and linalg.broadcast's and
    linalg.reduce's `dimensions`) that is not a list of integers crashes
    upstream's parser (a fuzzer finding): reported as a parse error."""
    expect_error(TRANSPOSE.replace("PERM", perm), [np.zeros((2, 3), np.float32)],
                 "line 3: `permutation =` must be followed by a list of integers")


def test_linalg_lists_still_parse():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    for perm in ("[1, 0]", "[ 1 ,0 ]"):
        (out,) = run(TRANSPOSE.replace("PERM", perm), [a])
        np.testing.assert_array_equal(out, a.T)


def test_verifier_error_is_reported():
    bad = ROPE.replace("layout half", "layout half {rotary_dim = 10 : i64}")
    expect_error(bad, [X, P], "rotary_dim (10) must be <= head dim (8)")


def test_scalar_argument_rejected():
    ir = func_ir([("s", "f32")], [], [("%s", "f32")])
    expect_error(ir, [], "argument #0 of @f has type f32")


def raw(tmp_path, *args):
    src = tmp_path / "in.mlir"
    src.write_text(ROPE)
    return subprocess.run([POSENC_RUN, str(src), *args], capture_output=True, text=True)


@pytest.mark.parametrize("content,fragment", [
    (b"not numpy at all", "missing the \\x93NUMPY magic"),
    (b"\x93NUMPY\x01\x00\xff\x00{'descr'", "truncated header"),
    (b"\x93NUMPY\x09\x00\x10\x00" + b" " * 16, "unsupported format version 9"),
])
def test_malformed_npy(tmp_path, content, fragment):
    bad = tmp_path / "bad.npy"
    bad.write_bytes(content)
    proc = raw(tmp_path, f"--input=@{bad}", "--input=random:4xi32")
    assert proc.returncode == 1 and fragment in proc.stderr, proc.stderr


def test_truncated_npy_data(tmp_path):
    good = tmp_path / "x.npy"
    np.save(good, X)
    data = good.read_bytes()
    (tmp_path / "cut.npy").write_bytes(data[:-5])
    proc = raw(tmp_path, f"--input=@{tmp_path / 'cut.npy'}", "--input=random:4xi32")
    assert proc.returncode == 1 and "expected 256 data bytes" in proc.stderr, proc.stderr


def test_fortran_order_rejected(tmp_path):
    path = tmp_path / "f.npy"
    np.save(path, np.asfortranarray(np.zeros((1, 4, 2, 8), np.float32)))
    proc = raw(tmp_path, f"--input=@{path}", "--input=random:4xi32")
    assert proc.returncode == 1 and "Fortran-order" in proc.stderr, proc.stderr


def test_missing_file(tmp_path):
    proc = raw(tmp_path, f"--input=@{tmp_path / 'nope.npy'}", "--input=random:4xi32")
    assert proc.returncode == 1 and "cannot read" in proc.stderr


def test_bad_random_spec(tmp_path):
    proc = raw(tmp_path, "--input=random:1x4x2x8xq7", "--input=random:4xi32")
    assert proc.returncode == 1 and "unknown element type 'q7'" in proc.stderr


def test_random_inputs_and_benchmark(tmp_path):
    proc = raw(tmp_path, "--input=random:1x4x2x8xf32", "--input=random:4xi32", "--benchmark=3")
    assert proc.returncode == 0, proc.stderr
    assert "result #0: 1x4x2x8xf32" in proc.stdout
    assert "benchmark @f: 3 runs, median" in proc.stdout


def test_returned_argument_and_constant():
    """Results that alias inputs or constants are copied out, not freed."""
    ir = func_ir([("x", "tensor<3xf32>")],
                 ["%c = arith.constant dense<[1.0, 2.0, 3.0]> : tensor<3xf32>"],
                 [("%x", "tensor<3xf32>"), ("%c", "tensor<3xf32>")])
    x = np.array([4, 5, 6], np.float32)
    a, c = run(ir, [x], num_results=2)
    assert np.array_equal(a, x) and np.array_equal(c, [1, 2, 3])


def test_help_shows_posenc_run_options_only():
    out = subprocess.run([POSENC_RUN, "--help"], capture_output=True, text=True).stdout
    assert "--input=" in out and "--threads=" in out and "--benchmark=" in out
    assert "--x86-asm-syntax" not in out and len(out.splitlines()) < 40, out
    hidden = subprocess.run([POSENC_RUN, "--help-hidden"], capture_output=True, text=True).stdout
    assert "--x86-asm-syntax" in hidden and "--input=" in hidden


@pytest.mark.parametrize("tool", ["posenc-run", "posenc-opt"])
def test_version(tool):
    proc = subprocess.run([os.path.join(os.path.dirname(POSENC_RUN), tool), "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0
    assert f"{tool} (posenc 0.1.0, built with LLVM 22." in proc.stdout, proc.stdout


def test_diagnostics_name_the_input_file(tmp_path):
    dyn = ROPE.replace("1x4x2x8", "1x?x2x8").replace("tensor<4xi32>", "tensor<?xi32>")
    path = tmp_path / "layer.mlir"
    path.write_text(dyn)
    np.save(tmp_path / "x.npy", X)
    np.save(tmp_path / "p.npy", P[:3])
    proc = subprocess.run([POSENC_RUN, str(path), f"--input=@{tmp_path / 'x.npy'}",
                           f"--input=@{tmp_path / 'p.npy'}"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"@f stopped: {path}:2:" in proc.stderr and "sequence length" in proc.stderr, proc.stderr


@pytest.mark.parametrize("content,byte,offset", [
    (b"\x7fELF\x02\x01\x01\x00\x00", "0x7f", 0),
    ("func.func @f() {\n  return\n}\n\x00\x00".encode(), "0x00", 28),
    (b"// caf\xc3\xa9\n\x1b[31m", "0x1b", 9),
])
def test_binary_input_is_named_not_echoed(tmp_path, content, byte, offset):
    """Binary data is not MLIR text: the error names the first control
    byte, and no raw byte of the input reaches the terminal."""
    src = tmp_path / "in.mlir"
    src.write_bytes(content)
    proc = subprocess.run([POSENC_RUN, str(src)], capture_output=True)
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, err
    assert f"control byte {byte} at offset {offset}" in err, err
    assert all(b >= 0x20 or b in b"\n\t" for b in proc.stderr), proc.stderr


def test_bytecode_input_runs(tmp_path):
    """MLIR bytecode (posenc-opt --emit-bytecode) is binary, and runs."""
    bc = tmp_path / "rope.mlirbc"
    subprocess.run([POSENC_OPT, "-", "--emit-bytecode", "-o", str(bc)], input=ROPE.encode(),
                   check=True)
    x = np.random.default_rng(0).standard_normal((1, 4, 2, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", P)
    out = tmp_path / "y.npy"
    proc = subprocess.run([POSENC_RUN, str(bc), f"--input=@{tmp_path / 'x.npy'}",
                           f"--input=@{tmp_path / 'p.npy'}", f"--output=@{out}"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = run(ROPE, [x, P])[0]
    assert np.array_equal(np.load(out), expected)
