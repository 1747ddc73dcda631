"""posenc: position encodings of transformer attention as MLIR ops.

    import posenc
    m = posenc.compile(source)            # lower with posenc-lower-to-cpu, JIT
    y = m.rotate(x, pos)                  # call a function on numpy arrays

bfloat16 tensors travel as uint16 bit patterns (numpy has no bfloat16):
use `to_bf16` / `from_bf16`. `posenc.reference` holds float64 numpy
implementations of every op, written from the op semantics and independent
of the compiler.
"""

import numpy as np

from . import reference

try:
    from . import _posenc
except ImportError:  # the source tree without a build: reference only
    _posenc = None

Error = _posenc.Error if _posenc else RuntimeError


def to_bf16(x):
    """float array -> bfloat16 bit patterns (round to nearest even)."""
    bits = np.asarray(x, np.float32).view(np.uint32).astype(np.uint64)
    return ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(bits):
    """bfloat16 bit patterns -> float32."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


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
            raise AttributeError(f"module has no public function '{name}'")
        return lambda *args: self.call(name, *args)


def compile(source, target="cpu", pipeline=None, threads=None):
    """Compiles posenc IR text for `target` ("cpu") and returns a Module.

    `pipeline` overrides the registered pipeline (textual pass pipeline).
    `threads` (int) sets num-threads on the pipeline's posenc-lower-to-cpu:
    1 (the default) runs on the calling thread, N > 1 on N threads of
    LLVM's OpenMP runtime, 0 on POSENC_NUM_THREADS threads or else every
    core; results are bit-for-bit the same for any count. Raises
    posenc.Error with the MLIR diagnostics for bad IR or a bad count."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    if target != "cpu":
        raise ValueError(f"unknown target {target!r}; supported: 'cpu'")
    pipeline = pipeline or "posenc-lower-to-cpu"
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int):
            raise TypeError(f"threads must be an int, got {threads!r}")
        pipeline = _posenc.with_threads(pipeline, threads)
    return Module(_posenc.compile(source, pipeline))


def retain_freed_large_buffers():
    """Makes malloc keep freed large blocks in its heap (process-wide), so
    each call's result reuses the previous one's pages instead of faulting
    in fresh ones. For benchmarks and serving loops; returns False where the
    C library has no such control."""
    if _posenc is None:
        raise ImportError("posenc._posenc is not built; run scripts/build.sh")
    return _posenc.retain_freed_large_buffers()
