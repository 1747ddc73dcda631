#!/usr/bin/python3
"""Compiles a posenc file with posenc-lower-to-nvvm to PTX, assembles every
kernel with the CUDA toolkit's ptxas -v, and prints one line per kernel:
registers, spill stores/loads, shared and stack bytes.

Usage: scripts/nvvm_report.py FILE.mlir [--chip sm_90] [--features +ptx80]
                              [--options "attention-precision=tf32 ..."]
Exits non-zero when posenc-opt or ptxas fails."""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("POSENC_BUILD_DIR", os.path.join(ROOT, "build"))


def find_ptxas():
    for path in (shutil.which("ptxas"), "/usr/local/cuda/bin/ptxas"):
        if path and os.path.exists(path):
            return path
    return None


def unescape(text):
    """An MLIR string attribute's escapes (\\0A, \\09, \\22, \\5C) as text."""
    return re.sub(r"\\([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


def dynamic_shared_memory(text):
    """Kernel module name -> the dynamic shared memory its launch asks for
    (a constant in the host function that launches it)."""
    out = {}
    for func in re.split(r"(?=llvm\.func @)", text):
        consts = dict(re.findall(r"(%\w+) = llvm\.mlir\.constant\((\d+) : i32\) : i32", func))
        for kernel, value in re.findall(
                r"gpu\.launch_func\s+<[^>]*>\s+@(\w+)::@\w+.*?dynamic_shared_memory_size (%\w+)", func):
            if value in consts:
                out[kernel] = consts[value]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--chip", default="sm_90")
    ap.add_argument("--features", default="+ptx80")
    ap.add_argument("--options", default="", help="more posenc-lower-to-nvvm options")
    args = ap.parse_args()
    ptxas = find_ptxas()
    if not ptxas:
        print("ptxas not found (install the CUDA toolkit)", file=sys.stderr)
        return 2
    opt = subprocess.run(
        [os.path.join(BUILD, "bin", "posenc-opt"), args.file,
         f"-posenc-lower-to-nvvm=format=isa chip={args.chip} features={args.features} {args.options}".strip()],
        capture_output=True, text=True)
    if opt.returncode != 0:
        sys.stderr.write(opt.stderr)
        return 1
    binaries = re.findall(r'gpu\.binary @(\w+)\s*\[#gpu\.object<[^>]*>[^"]*assembly = "((?:[^"\\]|\\.)*)"',
                          opt.stdout)
    if not binaries:
        print("no gpu.binary in the output", file=sys.stderr)
        return 1
    dynamic = dynamic_shared_memory(opt.stdout)
    with tempfile.TemporaryDirectory() as tmp:
        for name, escaped in binaries:
            ptx = unescape(escaped)
            path = os.path.join(tmp, name + ".ptx")
            with open(path, "w") as f:
                f.write(ptx)
            externs = sorted(set(re.findall(r"\.extern\s+\.func[^;]*?(__nv_\w+)", ptx)))
            proc = subprocess.run([ptxas, "-v", f"-arch={args.chip}", path, "-o", os.devnull],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                sys.stderr.write(proc.stderr)
                return 1
            for entry, info in re.findall(r"Compiling entry function '(\w+)'.*?\n(.*?)(?=ptxas info\s+: Compiling|\Z)",
                                          proc.stderr, re.S):
                regs = re.search(r"Used (\d+) registers", info)
                spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", info)
                stack = re.search(r"(\d+) bytes stack frame", info)
                smem = re.search(r"(\d+) bytes smem", info)
                print(f"{args.chip} {name} ({entry}): registers {regs.group(1) if regs else '?'}, "
                      f"spill stores {spills.group(1) if spills else 0} B, "
                      f"spill loads {spills.group(2) if spills else 0} B, "
                      f"stack {stack.group(1) if stack else 0} B, smem {smem.group(1) if smem else 0} B"
                      f"{' + ' + dynamic[name] + ' B dynamic' if name in dynamic else ''}, "
                      f"unresolved __nv_ externs: {', '.join(externs) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
