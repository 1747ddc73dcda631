#!/usr/bin/python3
"""Compiles a posenc module ahead of time into a standalone GPU executable.

  posenc-opt (posenc-lower-to-nvvm, C interfaces) -> LLVM dialect with the
  kernels' fatbin -> mlir-translate -> LLVM IR (fatbin embedded, loaded by
  a module constructor) -> clang -> object, linked with the CUDA runtime
  (lib/Runtime/CUDA), the harness (.npy in/out, CUDA-event timing) and a
  generated stub naming the entry. The executable needs only the NVIDIA
  driver (libcuda.so.1, opened when the first kernel needs it, so --help
  works anywhere): no MLIR, LLVM or CUDA toolkit where it runs.

Usage: scripts/posenc_aot.py MODEL.mlir -o MODEL.gpu [--entry NAME]
           [--chip sm_90] [--features +ptx80] [--options "k=v ..."]
           [--keep DIR]
Run the result with --help; see lib/Runtime/CUDA/Harness.cpp."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))
LLVM_BIN = "/usr/lib/llvm-22/bin"


def tool(*names):
    for name in names:
        path = shutil.which(name) or (os.path.join(LLVM_BIN, name)
                                      if os.path.exists(os.path.join(LLVM_BIN, name)) else None)
        if path:
            return path
    sys.exit(f"posenc_aot: none of {', '.join(names)} found")


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"posenc_aot: {os.path.basename(cmd[0])} failed (exit {proc.returncode})")
    return proc.stdout


TENSOR = re.compile(r"tensor<([^>]*)>")
ELEMS = {"f32", "f16", "bf16", "f64", "i32", "i64"}


def parse_tensor(text):
    """'tensor<1x?x8xf32>' -> ([1, -1, 8], 'f32')."""
    m = TENSOR.fullmatch(text.strip())
    if not m:
        sys.exit(f"posenc_aot: entry types must be ranked tensors, got {text}")
    parts = m.group(1).split("x")
    elem = parts[-1]
    if elem not in ELEMS:
        sys.exit(f"posenc_aot: element type {elem} is not supported by the harness")
    return [-1 if p == "?" else int(p) for p in parts[:-1]], elem


def split_types(text):
    """Top-level comma split (types contain no parentheses here)."""
    return [t for t in (x.strip() for x in text.split(",")) if t]


def entry_signature(printed, entry):
    """(name, [(shape, elem)] args, results) of the entry function."""
    funcs = re.findall(r"func\.func (?:public )?@(\w+)\(([^)]*)\)(?:\s*->\s*(\([^)]*\)|tensor<[^>]*>))?",
                       printed)
    private = set(re.findall(r"func\.func private @(\w+)", printed))
    funcs = [f for f in funcs if f[0] not in private]
    if entry:
        funcs = [f for f in funcs if f[0] == entry]
    if len(funcs) != 1:
        sys.exit("posenc_aot: name the entry with --entry (public functions: "
                 + ", ".join(f[0] for f in funcs) + ")")
    name, params, results = funcs[0]
    args = [parse_tensor(p.split(":", 1)[1]) for p in split_types(params)]
    results = results.strip()
    if results.startswith("("):
        results = results[1:-1]
    res = [parse_tensor(r) for r in split_types(results)]
    if not res:
        sys.exit("posenc_aot: the entry returns nothing")
    return name, args, res


def stub_source(name, args, results):
    lines = ['#include "posenc/Runtime/CUDA/Harness.h"', ""]
    params = ", ".join(["void *results"] + [f"void *a{i}" for i in range(len(args))])
    lines.append(f'extern "C" void _mlir_ciface_{name}({params});')
    call_args = ", ".join(["results"] + [f"args[{i}]" for i in range(len(args))])
    lines += ["", "static void call(void **args, void *results) {",
              f"  _mlir_ciface_{name}({call_args});", "}", ""]

    def table(tag, specs):
        out = []
        for i, (shape, elem) in enumerate(specs):
            dims = ", ".join(str(d) for d in shape) or "0"
            out.append(f"static const int64_t {tag}Shape{i}[] = {{{dims}}};")
        entries = ", ".join(f'{{{len(s)}, "{e}", {tag}Shape{i}}}' for i, (s, e) in enumerate(specs))
        out.append(f"static const PosencEntryArg {tag}[] = {{{entries}}};")
        return out

    lines += table("args", args) if args else ["static const PosencEntryArg *args = nullptr;"]
    lines += table("results", results)
    lines += ["", f'extern "C" const PosencEntry posencEntry = {{"{name}", {len(args)}, args, '
              f"{len(results)}, results, call}};", ""]
    return "\n".join(lines)


def hide_model_symbols(obj, work):
    """Renames the functions the module defines, all but the C interfaces
    the stub calls, to posenc_model_<name>: a module's `@main` (or `@free`)
    would otherwise be the executable's `main` (or libc's `free`), and the
    harness's would never run."""
    nm = run([tool("llvm-nm-22", "llvm-nm"), "--defined-only", "--extern-only", "--format=just-symbols",
              obj]).split()
    renames = [f"{s} posenc_model_{s}\n" for s in nm if not s.startswith("_mlir_ciface_")]
    if not renames:
        return
    table = os.path.join(work, "renames.txt")
    with open(table, "w") as f:
        f.writelines(renames)
    run([tool("llvm-objcopy-22", "llvm-objcopy"), f"--redefine-syms={table}", obj])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--entry")
    ap.add_argument("--chip", default="sm_90")
    ap.add_argument("--features", default="+ptx80")
    ap.add_argument("--options", default="", help="more posenc-lower-to-nvvm options")
    ap.add_argument("--keep", help="keep the intermediate files in this directory")
    args = ap.parse_args()

    posenc_opt = os.path.join(BUILD, "bin", "posenc-opt")
    libdir = os.path.join(BUILD, "lib")
    for lib in ("libposenc_cuda_runtime.a", "libposenc_gpu_harness.a"):
        if not os.path.exists(os.path.join(libdir, lib)):
            sys.exit(f"posenc_aot: {lib} is not built (the build found no CUDA toolkit)")
    work = args.keep or tempfile.mkdtemp(prefix="posenc-aot-")
    os.makedirs(work, exist_ok=True)
    try:
        printed = run([posenc_opt, args.model])
        name, arg_specs, res_specs = entry_signature(printed, args.entry)
        options = f"chip={args.chip} features={args.features} {args.options}".strip()
        lowered = os.path.join(work, "lowered.mlir")
        run([posenc_opt, args.model, "-o", lowered,
             f"--pass-pipeline=builtin.module(func.func(llvm-request-c-wrappers),"
             f"posenc-lower-to-nvvm{{{options}}})"])
        ll = os.path.join(work, "model.ll")
        run([tool("mlir-translate-22", "mlir-translate"), "--mlir-to-llvmir", lowered, "-o", ll])
        obj = os.path.join(work, "model.o")
        clang = tool("clang-22", "clang")
        run([clang, "-c", "-O2", "-fPIC", "-Wno-override-module", ll, "-o", obj])
        hide_model_symbols(obj, work)
        stub = os.path.join(work, "entry.cpp")
        with open(stub, "w") as f:
            f.write(stub_source(name, arg_specs, res_specs))
        run([tool("clang++-22", "clang++"), "-O2", "-std=c++17", f"-I{ROOT}/include", stub, obj,
             f"-L{libdir}", "-lposenc_gpu_harness", "-lposenc_cuda_runtime",
             "-ldl", "-static-libstdc++", "-static-libgcc", "-Wl,--gc-sections", "-Wl,--strip-debug",
             "-o", args.output])
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{args.output}: @{name}, {len(arg_specs)} inputs, {len(res_specs)} results, {args.chip}")


if __name__ == "__main__":
    main()
