//===- CudaRuntime.cpp - mgpu* entry points over the CUDA driver ----------===//

#include "posenc/Runtime/CUDA/CudaRuntime.h"

#include <cuda.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>

namespace {
/// Reports a failed driver call and exits: kernels lowered by posenc have
/// no error path, and continuing would return garbage.
void check(CUresult result, const char *call) {
  if (result == CUDA_SUCCESS)
    return;
  const char *name = nullptr, *message = nullptr;
  if (cuGetErrorName(result, &name) != CUDA_SUCCESS || !name) {
    // The toolkit's stub libcuda answers every call, this one included,
    // with CUDA_ERROR_STUB_LIBRARY.
    name = result == CUDA_ERROR_STUB_LIBRARY ? "CUDA_ERROR_STUB_LIBRARY"
                                             : "unknown error";
    message = result == CUDA_ERROR_STUB_LIBRARY
                  ? "libcuda.so.1 is the CUDA toolkit's stub, not a driver"
                  : "";
  } else if (cuGetErrorString(result, &message) != CUDA_SUCCESS || !message) {
    message = "";
  }
  std::fprintf(stderr, "posenc CUDA runtime: %s failed: %s (%d): %s\n", call,
               name, int(result), message);
  // _Exit, not exit: this may run inside a module constructor or the
  // context's call_once, where exit's destructors (module unload) would
  // re-enter the runtime.
  std::fflush(nullptr);
  std::_Exit(1);
}

#define POSENC_CU(call) check((call), #call)

int requestedDevice = -1;
uint32_t poisonPattern = 0;
CUcontext context = nullptr;

/// Initializes the driver and makes the primary context of the device
/// current on this thread (once per process for the init, per call for
/// the thread's current context, which is cheap).
void ensureContext() {
  static std::once_flag once;
  std::call_once(once, [] {
    POSENC_CU(cuInit(0));
    int device = requestedDevice;
    if (device < 0) {
      const char *env = std::getenv("POSENC_CUDA_DEVICE");
      device = env ? std::atoi(env) : 0;
    }
    CUdevice handle;
    POSENC_CU(cuDeviceGet(&handle, device));
    POSENC_CU(cuDevicePrimaryCtxRetain(&context, handle));
    // Keep freed blocks in the stream-ordered pool: with the default
    // threshold (0) the driver may unmap them at every synchronization,
    // and each call's results and temporaries were mapped anew (RoPE on
    // [8, 4096, 32, 128] f32, a 512 MiB result: 0.945 -> 0.503 ms on an
    // H200).
    POSENC_CU(cuCtxSetCurrent(context));
    CUmemoryPool pool;
    POSENC_CU(cuDeviceGetDefaultMemPool(&pool, handle));
    cuuint64_t keep = ~cuuint64_t(0);
    POSENC_CU(
        cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
  });
  POSENC_CU(cuCtxSetCurrent(context));
}

CUstream asStream(void *stream) { return static_cast<CUstream>(stream); }

/// A kernel image, loaded into the context when its first function is
/// looked up: module constructors register every image at startup, and
/// an executable asked for --help (or given bad arguments) then never
/// touches the driver.
struct LazyModule {
  const void *data;
  /// -1: cuModuleLoadData; else cuModuleLoadDataEx at this JIT level.
  int optLevel;
  std::once_flag once;
  CUmodule module = nullptr;
};

CUmodule loaded(LazyModule &lazy) {
  std::call_once(lazy.once, [&] {
    ensureContext();
    if (lazy.optLevel < 0) {
      POSENC_CU(cuModuleLoadData(&lazy.module, lazy.data));
      return;
    }
    CUjit_option options[] = {CU_JIT_OPTIMIZATION_LEVEL};
    void *values[] = {reinterpret_cast<void *>(intptr_t(lazy.optLevel))};
    POSENC_CU(cuModuleLoadDataEx(&lazy.module, lazy.data, 1, options, values));
  });
  return lazy.module;
}
} // namespace

extern "C" {
void *mgpuModuleLoad(void *data, size_t /*size*/) {
  return new LazyModule{data, -1, {}, nullptr};
}

void *mgpuModuleLoadJIT(void *data, int optLevel) {
  return new LazyModule{data, optLevel, {}, nullptr};
}

void mgpuModuleUnload(void *handle) {
  auto *lazy = static_cast<LazyModule *>(handle);
  CUmodule module = lazy->module;
  delete lazy;
  // Modules are unloaded by destructors at process exit, which may run
  // after the driver's own exit handler: then there is nothing to unload.
  if (!module || !context)
    return;
  CUresult current = cuCtxSetCurrent(context);
  if (current == CUDA_ERROR_DEINITIALIZED)
    return;
  POSENC_CU(current);
  CUresult unloaded = cuModuleUnload(module);
  if (unloaded != CUDA_ERROR_DEINITIALIZED)
    POSENC_CU(unloaded);
}

void *mgpuModuleGetFunction(void *module, const char *name) {
  CUmodule loadedModule = loaded(*static_cast<LazyModule *>(module));
  CUfunction function = nullptr;
  POSENC_CU(cuModuleGetFunction(&function, loadedModule, name));
  return function;
}

void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t /*paramsCount*/) {
  ensureContext();
  auto fn = static_cast<CUfunction>(function);
  // Dynamic shared memory above the 48 KiB default needs an opt-in per
  // function (up to the device's per-block maximum).
  if (smem > 48 * 1024)
    POSENC_CU(cuFuncSetAttribute(
        fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem));
  POSENC_CU(cuLaunchKernel(fn, gridX, gridY, gridZ, blockX, blockY, blockZ,
                           smem, asStream(stream), params, extra));
}

void *mgpuStreamCreate() {
  ensureContext();
  CUstream stream = nullptr;
  // A blocking stream: it orders with the legacy default stream, so events
  // a harness records there bracket the work of a call.
  POSENC_CU(cuStreamCreate(&stream, CU_STREAM_DEFAULT));
  return stream;
}

void mgpuStreamDestroy(void *stream) {
  ensureContext();
  POSENC_CU(cuStreamDestroy(asStream(stream)));
}

void mgpuStreamSynchronize(void *stream) {
  ensureContext();
  POSENC_CU(cuStreamSynchronize(asStream(stream)));
}

void mgpuStreamWaitEvent(void *stream, void *event) {
  ensureContext();
  POSENC_CU(cuStreamWaitEvent(asStream(stream), static_cast<CUevent>(event),
                              /*flags=*/0));
}

void *mgpuEventCreate() {
  ensureContext();
  CUevent event = nullptr;
  POSENC_CU(cuEventCreate(&event, CU_EVENT_DISABLE_TIMING));
  return event;
}

void mgpuEventDestroy(void *event) {
  ensureContext();
  POSENC_CU(cuEventDestroy(static_cast<CUevent>(event)));
}

void mgpuEventSynchronize(void *event) {
  ensureContext();
  POSENC_CU(cuEventSynchronize(static_cast<CUevent>(event)));
}

void mgpuEventRecord(void *event, void *stream) {
  ensureContext();
  POSENC_CU(cuEventRecord(static_cast<CUevent>(event), asStream(stream)));
}

void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared) {
  ensureContext();
  if (sizeBytes == 0)
    return nullptr;
  CUdeviceptr ptr = 0;
  if (isHostShared) {
    POSENC_CU(cuMemAllocManaged(&ptr, sizeBytes, CU_MEM_ATTACH_GLOBAL));
  } else {
    // Stream-ordered: after the first calls, allocations of a repeated
    // call come from the pool instead of the driver.
    POSENC_CU(cuMemAllocAsync(&ptr, sizeBytes, asStream(stream)));
  }
  if (poisonPattern)
    POSENC_CU(
        cuMemsetD32Async(ptr, poisonPattern, sizeBytes / 4, asStream(stream)));
  return reinterpret_cast<void *>(ptr);
}

void mgpuMemFree(void *ptr, void *stream) {
  ensureContext();
  if (!ptr)
    return;
  POSENC_CU(
      cuMemFreeAsync(reinterpret_cast<CUdeviceptr>(ptr), asStream(stream)));
}

void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream) {
  ensureContext();
  if (sizeBytes == 0)
    return;
  // Unified addressing: the driver tells host from device pointers.
  POSENC_CU(cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(dst),
                          reinterpret_cast<CUdeviceptr>(src), sizeBytes,
                          asStream(stream)));
}

void mgpuMemset32(void *dst, uint32_t value, size_t count, void *stream) {
  ensureContext();
  POSENC_CU(cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(dst), value, count,
                             asStream(stream)));
}

void mgpuMemset16(void *dst, unsigned short value, size_t count, void *stream) {
  ensureContext();
  POSENC_CU(cuMemsetD16Async(reinterpret_cast<CUdeviceptr>(dst), value, count,
                             asStream(stream)));
}

void mgpuSetDefaultDevice(int32_t device) { requestedDevice = device; }

void posencCudaSetPoison(uint32_t pattern) { poisonPattern = pattern; }
}
