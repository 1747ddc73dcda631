"""posenc: position encodings of transformer attention as MLIR ops.

`posenc.reference` holds float64 numpy implementations of every op,
written from the op semantics and independent of the compiler.
"""
