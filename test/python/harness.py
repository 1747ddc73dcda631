"""Runs posenc IR through posenc-run and compares with the reference.

Inputs and outputs travel as .npy files; bf16 travels as uint16 bit
patterns (numpy has no bfloat16), converted with to_bf16/from_bf16.
"""

import os
import subprocess
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
POSENC_RUN = os.path.join(BUILD, "bin", "posenc-run")
POSENC_OPT = os.path.join(BUILD, "bin", "posenc-opt")

NP_TO_MLIR = {
    np.dtype(np.float32): "f32",
    np.dtype(np.float16): "f16",
    np.dtype(np.float64): "f64",
    np.dtype(np.int32): "i32",
    np.dtype(np.int64): "i64",
    np.dtype(np.uint16): "bf16",
}


def to_bf16(x):
    """float -> bf16 bits (round to nearest even), as uint16."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def from_bf16(bits):
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def tensor_type(shape, elem):
    dims = "x".join("?" if d is None else str(d) for d in shape)
    return f"tensor<{dims}x{elem}>" if dims else f"tensor<{elem}>"


def type_of(array):
    return tensor_type(array.shape, NP_TO_MLIR[array.dtype])


def func_ir(args, body, results, name="f"):
    """A func.func text: args is [(name, type)], body is lines using them,
    results is [(value, type)]."""
    sig = ", ".join(f"%{n}: {t}" for n, t in args)
    res = ", ".join(t for _, t in results)
    ret_vals = ", ".join(v for v, _ in results)
    lines = "\n".join("  " + line for line in body)
    return (f"func.func @{name}({sig}) -> ({res}) {{\n{lines}\n"
            f"  return {ret_vals} : {res}\n}}\n")


def attention(result, q, k, v, qt, kt, vt, rt, attrs="", attr_dict="", tail=""):
    """Body lines of `result = posenc.attention q, k, v<attrs> outs(init)
    <attr_dict> : qt, kt, vt, rt<tail>`, its init (a tensor.empty whose
    dynamic dims are read from q for [B, Sq, Hq] and from v for Dv) first."""
    init = result + "_init"
    dims = rt[len("tensor<"):-1].split("x")[:-1]
    lines, dynamic = [], []
    for d, size in enumerate(dims):
        if size != "?":
            continue
        src, st = (q, qt) if d < 3 else (v, vt)
        lines += [f"{init}_c{d} = arith.constant {d} : index",
                  f"{init}_d{d} = tensor.dim {src}, {init}_c{d} : {st}"]
        dynamic.append(f"{init}_d{d}")
    lines.append(f"{init} = tensor.empty({', '.join(dynamic)}) : {rt}")
    lines.append(f"{result} = posenc.attention {q}, {k}, {v}{attrs} outs({init})"
                 f"{attr_dict} : {qt}, {kt}, {vt}, {rt}{tail}")
    return lines


class RunError(Exception):
    """posenc-run exited non-zero; `stderr` holds its message."""

    def __init__(self, returncode, stderr):
        super().__init__(f"posenc-run exited {returncode}:\n{stderr}")
        self.returncode = returncode
        self.stderr = stderr


def opt(ir, *flags):
    """posenc-opt on IR text; returns the printed result."""
    proc = subprocess.run([POSENC_OPT, "-", *flags], input=ir, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise RunError(proc.returncode, proc.stderr)
    return proc.stdout


def run(ir, inputs, num_results=1, entry=None, pipeline=None, extra=()):
    """Compiles and runs `ir` on `inputs` (numpy arrays); returns results."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "in.mlir")
        with open(src, "w") as f:
            f.write(ir)
        cmd = [POSENC_RUN, src]
        if entry:
            cmd.append(f"--entry={entry}")
        if pipeline:
            cmd.append(f"--pipeline={pipeline}")
        for i, a in enumerate(inputs):
            path = os.path.join(tmp, f"in{i}.npy")
            np.save(path, np.require(a, requirements='C'))
            cmd.append(f"--input=@{path}")
        outs = [os.path.join(tmp, f"out{i}.npy") for i in range(num_results)]
        cmd += [f"--output=@{p}" for p in outs]
        cmd += list(extra)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            raise RunError(proc.returncode, proc.stderr)
        return [np.load(p) for p in outs]


# Largest error seen per test function, reported at the end of the session.
MAX_ERRORS = {}


def _record(err):
    current = os.environ.get("PYTEST_CURRENT_TEST", "")
    key = current.split(" ")[0].split("[")[0]
    if key:
        MAX_ERRORS[key] = max(MAX_ERRORS.get(key, 0.0), err)
    return err


def rel_err(actual, expected):
    """max |actual − expected| / max |expected|: an error relative to the
    scale of the result, robust to entries near zero. NaNs must agree."""
    a = np.asarray(actual, np.float64)
    e = np.asarray(expected, np.float64)
    assert a.shape == e.shape, f"shape {a.shape} != {e.shape}"
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    assert np.array_equal(nan_a, nan_e), "NaN positions differ"
    ok = ~nan_e
    inf_e = np.isinf(e) & ok
    assert np.array_equal(a[inf_e], e[inf_e]), "infinities differ"
    ok &= ~inf_e
    if not ok.any():
        return _record(0.0)
    scale = max(np.max(np.abs(e[ok])), 1e-30)
    return _record(float(np.max(np.abs(a[ok] - e[ok])) / scale))
