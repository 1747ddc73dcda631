# Sourced by scripts/test.sh --sanitize and scripts/fuzz.sh: the ASan+UBSan
# build (LLVM's own LLVM_USE_SANITIZER machinery, plus libFuzzer coverage
# counters) in its own build directory, and the runtime options its tests
# run under.
llvm=/usr/lib/llvm-22
export POSENC_BUILD_DIR=${POSENC_BUILD_DIR:-$root/build-sanitize}
asan_rt=$("$llvm/bin/clang" -print-file-name=libclang_rt.asan-x86_64.so)
# One shared ASan runtime for every binary: python3 preloads it to import
# the extension, and its posenc-run children must not bring a second one.
rt_dir=${asan_rt%/*}
export POSENC_CMAKE_ARGS="-DLLVM_USE_SANITIZER=Address;Undefined
-DLLVM_USE_SANITIZE_COVERAGE=ON
-DCMAKE_C_FLAGS=-gline-tables-only
-DCMAKE_CXX_FLAGS=-gline-tables-only
-DCMAKE_EXE_LINKER_FLAGS=-shared-libsan -Wl,-rpath,$rt_dir
-DCMAKE_SHARED_LINKER_FLAGS=-shared-libsan -Wl,-rpath,$rt_dir
-DCMAKE_MODULE_LINKER_FLAGS=-shared-libsan -Wl,-rpath,$rt_dir"
export POSENC_SANITIZE=1
# Uninstrumented processes (python3, upstream mlir-opt loading the plugin)
# need the runtime loaded first.
export POSENC_PYTHON_PRELOAD=$asan_rt
export ASAN_SYMBOLIZER_PATH=$llvm/bin/llvm-symbolizer
# allow_user_poisoning=0: LLVM's BumpPtrAllocator poisons its free space
# when inlined into instrumented code, but the uninstrumented libMLIR.so
# allocates from the same slabs without unpoisoning (false reports).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:allow_user_poisoning=0:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
