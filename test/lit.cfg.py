# -*- Python -*-
import os
import shutil
import subprocess

import lit.formats
from lit.llvm import llvm_config
from lit.llvm.subst import ToolSubst

config.name = "POSENC"
config.test_format = lit.formats.ShTest(not llvm_config.use_lit_shell)
config.suffixes = [".mlir"]
config.excludes = ["CMakeLists.txt"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.posenc_obj_root, "test")
config.excludes = ["CMakeLists.txt", "README.md", "lit.cfg.py", "lit.site.cfg.py"]

config.substitutions.append(("%PATH%", config.environment["PATH"]))
config.substitutions.append(("%shlibext", config.llvm_shlib_ext))
config.substitutions.append(
    ("%posenc_plugin", os.path.join(config.posenc_lib_dir, "posenc-plugin" + config.llvm_shlib_ext))
)

llvm_config.with_system_environment(["HOME", "INCLUDE", "LIB", "TMP", "TEMP"])
llvm_config.use_default_substitutions()

llvm_config.with_environment("PATH", config.llvm_tools_dir, append_path=True)
tool_dirs = [config.posenc_tools_dir, config.llvm_tools_dir]
# Under scripts/test.sh --sanitize the plugin carries the ASan runtime, which
# upstream mlir-opt must load first; its own allocations are not ours to
# leak-check.
mlir_opt_prefix = []
if os.environ.get("POSENC_PYTHON_PRELOAD"):
    mlir_opt_prefix = [
        "env",
        "LD_PRELOAD=" + os.environ["POSENC_PYTHON_PRELOAD"],
        "ASAN_OPTIONS=" + os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0",
    ]
tools = [
    "posenc-opt",
    "posenc-capi-test",
    ToolSubst("mlir-opt", command=" ".join(
        mlir_opt_prefix + [os.path.join(config.llvm_tools_dir, "mlir-opt")])),
]
# Sanitizer builds (scripts/test.sh --sanitize) also build the fuzz target.
if os.path.exists(os.path.join(config.posenc_tools_dir, "posenc-fuzz")):
    config.available_features.add("fuzzer")
    tools.append("posenc-fuzz")
llvm_config.add_tool_substitutions(tools, tool_dirs)

# GPU kernels compile to PTX and assemble with the CUDA toolkit's ptxas
# (no GPU needed); scripts/nvvm_report.py reports ptxas -v per kernel.
ptxas = shutil.which("ptxas") or "/usr/local/cuda/bin/ptxas"
if os.path.exists(ptxas):
    config.available_features.add("cuda-toolkit")
config.environment["POSENC_BUILD_DIR"] = os.path.dirname(config.posenc_tools_dir)
config.substitutions.append(
    ("%nvvm_report", "/usr/bin/python3 " + os.path.join(
        os.path.dirname(config.test_source_root), "scripts", "nvvm_report.py")))
# AOT GPU executables: the CUDA runtime is built when CMake found the
# toolkit; running them needs a GPU (an NVIDIA driver that lists one).
build_dir = os.path.dirname(config.posenc_tools_dir)
if os.path.exists(os.path.join(build_dir, "lib", "libposenc_cuda_runtime.a")):
    config.available_features.add("cuda-runtime")
    stubs = [d for d in ("/usr/local/cuda/lib64/stubs",
                         "/usr/local/cuda/targets/x86_64-linux/lib/stubs")
             if os.path.exists(os.path.join(d, "libcuda.so"))]
    if stubs:
        config.available_features.add("cuda-stub")
        config.substitutions.append(("%cuda_stub", os.path.join(stubs[0], "libcuda.so")))
config.substitutions.append(("%llvm_nm", os.path.join(config.llvm_tools_dir, "llvm-nm")))
config.substitutions.append(
    ("%posenc_aot", "/usr/bin/python3 " + os.path.join(
        os.path.dirname(config.test_source_root), "scripts", "posenc_aot.py")))
nvidia_smi = shutil.which("nvidia-smi")
if nvidia_smi:
    try:
        listed = subprocess.run([nvidia_smi, "-L"], capture_output=True, text=True,
                                timeout=20).stdout
        if "GPU " in listed:
            config.available_features.add("cuda-device")
    except (OSError, subprocess.SubprocessError):
        pass

# CPU integration tests run lowered IR with upstream mlir-runner.
runner_libs = ",".join(
    os.path.join(config.llvm_lib_dir, f"lib{name}{config.llvm_shlib_ext}")
    for name in ("mlir_runner_utils", "mlir_c_runner_utils")
)
config.substitutions.append(
    ("%mlir_runner",
     f"{os.path.join(config.llvm_tools_dir, 'mlir-runner')} -shared-libs={runner_libs}")
)
