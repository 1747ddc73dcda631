"""posenc: position encodings of transformer attention as MLIR ops.

    import posenc
    m = posenc.compile(source)            # lower with posenc-lower-to-cpu, JIT
    y = m.rotate(x, pos)                  # call a function on numpy arrays

bfloat16 tensors travel as uint16 bit patterns (numpy has no bfloat16):
use `to_bf16` / `from_bf16`. `posenc.reference` holds float64 numpy
implementations of every op, written from the op semantics and independent
of the compiler.
"""

import os

import numpy as np

from . import reference

try:
    from . import _posenc
except ImportError:  # the source tree without a build: reference only
    _posenc = None

Error = _posenc.Error if _posenc else RuntimeError
if _posenc:
    # MLIR diagnostics as dicts (compile() fills it); empty for other errors.
    Error.diagnostics = ()
# posenc's version and the LLVM it was built with (None without a build).
__version__ = _posenc.version if _posenc else None
llvm_version = _posenc.llvm_version if _posenc else None


def to_bf16(x):
    """float array -> bfloat16 bit patterns (round to nearest even)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(bits):
    """bfloat16 bit patterns -> float32."""
    bits = np.asarray(bits)
    if bits.dtype.kind not in "ui" and bits.size:
        raise TypeError(f"from_bf16 takes bfloat16 bit patterns (uint16), got {bits.dtype}")
    return (bits.astype(np.uint16).astype(np.uint32) << 16).view(np.float32)


class Module:
    """A compiled module; its public functions are attributes."""

    def __init__(self, compiled):
        self._compiled = compiled

    @property
    def functions(self):
        return list(self._compiled.functions)

    def signature(self, name):
        """{'inputs': [(shape, type)], 'results': [...], 'by_reference':
        [indices of memref inputs]}; -1 is dynamic. A memref input is the
        caller's numpy array itself (C-contiguous, exact dtype, no copy):
        the function reads and writes it in place (KV caches, weights)."""
        return self._compiled.signature(name)

    @property
    def last_call_ms(self):
        """Time of the compiled code alone in the last call, in ms (no
        argument or result copies)."""
        return self._compiled.last_call_ms

    def call(self, name, *args):
        results = self._compiled.call(name, *args)
        return results[0] if len(results) == 1 else tuple(results)

    def __getattr__(self, name):
        if name.startswith("_") or name not in self._compiled.functions:
            # A function the module defines but cannot call from numpy (a
            # scalar argument, say) is named with the reason.
            reason = ""
            if not name.startswith("_") and _posenc:
                try:
                    self._compiled.signature(name)
                except Error as err:
                    if "no public function" not in str(err):
                        reason = f": {err}"
            raise AttributeError(f"module has no public function '{name}'{reason}")
        return lambda *args: self.call(name, *args)


def pipeline_options(pipeline="posenc-lower-to-cpu"):
    """{option: default} of a posenc pipeline ("posenc-lower-to-cpu" or
    "posenc-lower-to-nvvm"), defaults in the pipeline's textual form
    ("true", "64", "auto"). These are compile()'s keyword options, with
    '_' for '-'."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    return dict(_posenc.pipeline_options(pipeline))


def _option_text(key, value, default):
    """`value` in the pipeline's textual form, checked against the type of
    the option's default."""
    if default in ("true", "false"):
        if not isinstance(value, bool):
            raise TypeError(f"compile(): {key} must be True or False, got {value!r}")
        return "true" if value else "false"
    if default.lstrip("-").isdigit():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"compile(): {key} must be an int, got {value!r}")
        if not -2**62 < value < 2**62:
            raise ValueError(f"compile(): {key} ({value}) is out of range")
        return str(int(value))
    if not isinstance(value, str) or any(c in value for c in " {}=,\n"):
        raise TypeError(f"compile(): {key} must be a word (str), got {value!r}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ValueError(f"compile(): {key} must be one of {', '.join(_CHOICES[key])}, "
                         f"got {value!r}")
    return value


# The values of posenc-lower-to-cpu's enumerated options.
_CHOICES = {"mla": ("auto", "naive", "absorbed")}


def _read_source(source):
    """(text, name) of `source`: IR text, or the path of a file. A str with
    a newline or a '{' is IR text (every op with a region or attribute has
    one); another str is a path when it names a file or ends in .mlir."""
    if isinstance(source, os.PathLike) or (
            isinstance(source, str) and not any(c in source for c in "\n{") and
            (os.path.exists(source) or source.endswith(".mlir"))):
        path = os.fspath(source)
        try:
            # FileNotFoundError and IsADirectoryError name the path.
            with open(path, encoding="utf-8") as f:
                return f.read(), path
        except UnicodeDecodeError as e:
            raise ValueError(f"compile(): {path} is not UTF-8 text ({e.reason} at byte "
                             f"{e.start})") from None
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValueError(f"compile(): source is not UTF-8 text ({e.reason} at byte "
                             f"{e.start})") from None
    if not isinstance(source, str):
        raise TypeError(f"compile(): source must be IR text or a path, got {type(source).__name__}")
    try:
        source.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"compile(): source has a character UTF-8 cannot encode at "
                         f"{e.start}") from None
    return source, "<input>"


def compile(source, target="cpu", pipeline=None, threads=None, **options):
    """Compiles posenc IR for `target` ("cpu") and returns a Module.

    source: IR text, or the path of a .mlir file (str or os.PathLike; then
        diagnostics name the file, as posenc-opt's do).
    threads: num-threads of posenc-lower-to-cpu: 1 (the default) runs on
        the calling thread, N > 1 on N threads of LLVM's OpenMP runtime, 0
        on POSENC_NUM_THREADS threads or else every core; results are
        bit-for-bit the same for any count.
    options: posenc-lower-to-cpu's options as keyword arguments, '_' for
        '-': mla="auto"|"naive"|"absorbed", fuse_bias=True,
        attention_tile_q=64, attention_tile_k=256, fold_max_elements=4096,
        vector_width=0, ... (pipeline_options() lists them with their
        defaults). bool options take True/False, the others ints, mla a
        string. An unknown name or a wrong type is a TypeError; a value
        outside an option's range is posenc.Error naming it.
    pipeline: a textual pass pipeline instead of posenc-lower-to-cpu (not
        with options).

    Raises posenc.Error for bad IR or a failed lowering; its
    `.diagnostics` lists the MLIR diagnostics as dicts (location "file:line:col",
    severity, message, notes)."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    if target != "cpu":
        raise ValueError(f"unknown target {target!r}; supported: 'cpu'")
    text, name = _read_source(source)
    if options and pipeline is not None:
        raise TypeError("compile(): give pipeline options as keywords or a pipeline, not both")
    if "num_threads" in options:
        if threads is not None:
            raise TypeError("compile(): give threads or num_threads, not both")
        threads = options.pop("num_threads")
    if options:
        defaults = pipeline_options("posenc-lower-to-cpu")
        parts = []
        for key, value in sorted(options.items()):
            opt = key.replace("_", "-")
            if opt not in defaults:
                known = ", ".join(sorted(k.replace("-", "_") for k in defaults))
                raise TypeError(f"compile() got an unknown option {key!r}; "
                                f"posenc-lower-to-cpu takes: {known}, threads")
            parts.append(f"{opt}={_option_text(key, value, defaults[opt])}")
        pipeline = "posenc-lower-to-cpu{" + " ".join(parts) + "}"
    pipeline = pipeline or "posenc-lower-to-cpu"
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"threads must be an int, got {threads!r}")
        if not -2**31 < threads < 2**31:
            raise ValueError(f"threads ({threads}) is out of range")
        threads = int(threads)
        pipeline = _posenc.with_threads(pipeline, threads)
    return Module(_posenc.compile(text, pipeline, name))


def rope_scaling_attribute(scaling):
    """The `#posenc.rope_scaling<...>` text of a scaling dict as
    posenc.reference takes it ({"kind": "yarn", "factor": 4.0, "original":
    32768, ...}; keys are the attribute's parameter names), or of None (no
    scaling). A string is returned as it is."""
    if scaling is None:
        return "#posenc.rope_scaling<none>"
    if isinstance(scaling, str):
        return scaling
    if not isinstance(scaling, dict) or "kind" not in scaling:
        raise TypeError(f"scaling must be a dict with a 'kind', an attribute string or None, got {scaling!r}")

    from .models import scaling_attribute
    return scaling_attribute(scaling)


def rope_frequencies(head_dim, base=10000.0, scaling=None, rotary_dim=None, seq_len=None):
    """(omega, attention_factor) of posenc.rope with this configuration,
    computed by the C++ that the compiler uses (not a Python copy):
    omega[i] is the angle per position of frequency pair i (radians,
    float64 array of rotary_dim / 2), attention_factor the factor applied
    to cos and sin (YaRN's mscale, LongRoPE's sqrt term, else 1.0).

    head_dim: D; rotary_dim: the rotated dims (default D, even);
    base: θ (rope_theta); scaling: a dict as posenc.reference takes it
    ({"kind": "llama3", "factor": 8.0, ...}), a `#posenc.rope_scaling<...>`
    string, or None; seq_len: the positions of the run (0 .. seq_len - 1),
    which dynamic NTK and LongRoPE depend on (default: none beyond
    `original`). Errors (posenc.Error) name a bad attribute or value."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    rotary = head_dim if rotary_dim is None else rotary_dim
    for name, v in (("head_dim", head_dim), ("rotary_dim", rotary), ("seq_len", seq_len)):
        if name == "seq_len" and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {v!r}")
        if not -2**62 < v < 2**62:
            raise ValueError(f"{name} ({v}) is out of range")
    if rotary > head_dim:
        raise ValueError(f"rotary_dim ({rotary}) must be <= head_dim ({head_dim})")
    if isinstance(base, bool) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be a number, got {base!r}")
    return _posenc.rope_table(rope_scaling_attribute(scaling), float(base), int(rotary),
                              0 if seq_len is None else int(seq_len))


def low_rank(matrix, rank=None, energy=None):
    """The best rank-R approximation of a 2-D matrix (Eckart–Young), by the
    C++ truncated SVD that posenc-compress-kv uses (Eigen, float64).

    Exactly one of `rank` (R >= 1; clamped to min(rows, cols)) and `energy`
    (E in (0, 1]: the smallest R whose singular values keep that fraction
    of Σσ²) is given. Returns (down [rows, R], up [R, cols], sigma) as
    float64 arrays: down·up is the approximation, down has orthonormal
    columns (the left singular vectors), up = diag(σ_R)·V_Rᵀ and sigma
    holds all min(rows, cols) singular values, descending. Errors: a
    ValueError for a bad request, posenc.Error when the SVD fails."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    if (rank is None) == (energy is None):
        raise ValueError("give exactly one of rank=R or energy=E")
    if np.iscomplexobj(matrix):
        raise ValueError("matrix must be real, got complex values")
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or 0 in m.shape:
        raise ValueError(f"matrix must be 2-D with no empty dim, got shape {m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("matrix has a non-finite entry")
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 1:
            raise ValueError(f"rank must be an int >= 1, got {rank!r}")
        return _posenc.low_rank(m, int(min(rank, min(m.shape))), 0.0)
    if isinstance(energy, bool) or not isinstance(energy, (int, float, np.integer, np.floating)) \
            or not 0 < energy <= 1:
        raise ValueError(f"energy must be a number in (0, 1], got {energy!r}")
    return _posenc.low_rank(m, 0, float(energy))


def retain_freed_large_buffers():
    """Makes malloc keep freed large blocks in its heap (process-wide), so
    each call's result reuses the previous one's pages instead of faulting
    in fresh ones. For benchmarks and serving loops; returns False where the
    C library has no such control."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    return _posenc.retain_freed_large_buffers()
