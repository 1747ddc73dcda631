# -*- Python -*-
import os

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
tools = [
    "posenc-opt",
    "posenc-capi-test",
    ToolSubst("mlir-opt", os.path.join(config.llvm_tools_dir, "mlir-opt")),
]
llvm_config.add_tool_substitutions(tools, tool_dirs)

# CPU integration tests run lowered IR with upstream mlir-runner.
runner_libs = ",".join(
    os.path.join(config.llvm_lib_dir, f"lib{name}{config.llvm_shlib_ext}")
    for name in ("mlir_runner_utils", "mlir_c_runner_utils")
)
config.substitutions.append(
    ("%mlir_runner",
     f"{os.path.join(config.llvm_tools_dir, 'mlir-runner')} -shared-libs={runner_libs}")
)
