//===- CudaDriver.cpp - the CUDA driver, loaded when first called ---------===//
//
// The driver entry points the runtime and the harness call, each forwarding
// to libcuda.so.1 opened with dlopen on the first call. AOT executables then
// start without a driver: `--help` and argument errors work on any machine,
// and a machine without one gets a message naming libcuda.so.1 when the
// first kernel needs it, instead of the dynamic loader's refusal to start.
//
//===----------------------------------------------------------------------===//

#include <cuda.h>
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

namespace {
[[noreturn]] void driverMissing(const char *what, const char *detail) {
  std::fprintf(stderr, "posenc CUDA runtime: %s: %s\n", what, detail);
  std::fflush(nullptr);
  std::_Exit(1);
}

void *driver() {
  static void *handle = [] {
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
      driverMissing("cannot load the CUDA driver (libcuda.so.1, installed "
                    "with the NVIDIA driver)",
                    dlerror());
    return h;
  }();
  return handle;
}

template <typename Fn> Fn resolve(const char *name) {
  void *fn = dlsym(driver(), name);
  if (!fn)
    driverMissing("the CUDA driver has no entry point", name);
  return reinterpret_cast<Fn>(fn);
}
} // namespace

// cuda.h maps most names to versioned symbols (cuMemAlloc -> cuMemAlloc_v2):
// the definition and the looked-up name both use the mapped one.
#define POSENC_NAME(name) #name
#define POSENC_SYMBOL(name) POSENC_NAME(name)
#define POSENC_FORWARD(name, params, args)                                     \
  extern "C" CUresult CUDAAPI name params {                                    \
    using Fn = CUresult(CUDAAPI *) params;                                     \
    static Fn fn = resolve<Fn>(POSENC_SYMBOL(name));                           \
    return fn args;                                                            \
  }

POSENC_FORWARD(cuInit, (unsigned int Flags), (Flags))
POSENC_FORWARD(cuGetErrorName, (CUresult error, const char **pStr),
               (error, pStr))
POSENC_FORWARD(cuGetErrorString, (CUresult error, const char **pStr),
               (error, pStr))
POSENC_FORWARD(cuDeviceGet, (CUdevice * device, int ordinal), (device, ordinal))
POSENC_FORWARD(cuDevicePrimaryCtxRetain, (CUcontext * pctx, CUdevice dev),
               (pctx, dev))
POSENC_FORWARD(cuDeviceGetDefaultMemPool,
               (CUmemoryPool * pool_out, CUdevice dev), (pool_out, dev))
POSENC_FORWARD(cuCtxSetCurrent, (CUcontext ctx), (ctx))
POSENC_FORWARD(cuMemPoolSetAttribute,
               (CUmemoryPool pool, CUmemPool_attribute attr, void *value),
               (pool, attr, value))
POSENC_FORWARD(cuModuleLoadData, (CUmodule * module, const void *image),
               (module, image))
POSENC_FORWARD(cuModuleLoadDataEx,
               (CUmodule * module, const void *image, unsigned int numOptions,
                CUjit_option *options, void **optionValues),
               (module, image, numOptions, options, optionValues))
POSENC_FORWARD(cuModuleGetFunction,
               (CUfunction * hfunc, CUmodule hmod, const char *name),
               (hfunc, hmod, name))
POSENC_FORWARD(cuModuleUnload, (CUmodule hmod), (hmod))
POSENC_FORWARD(cuFuncSetAttribute,
               (CUfunction hfunc, CUfunction_attribute attrib, int value),
               (hfunc, attrib, value))
POSENC_FORWARD(cuLaunchKernel,
               (CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                unsigned int gridDimZ, unsigned int blockDimX,
                unsigned int blockDimY, unsigned int blockDimZ,
                unsigned int sharedMemBytes, CUstream hStream,
                void **kernelParams, void **extra),
               (f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY,
                blockDimZ, sharedMemBytes, hStream, kernelParams, extra))
POSENC_FORWARD(cuStreamCreate, (CUstream * phStream, unsigned int Flags),
               (phStream, Flags))
POSENC_FORWARD(cuStreamDestroy, (CUstream hStream), (hStream))
POSENC_FORWARD(cuStreamSynchronize, (CUstream hStream), (hStream))
POSENC_FORWARD(cuStreamWaitEvent,
               (CUstream hStream, CUevent hEvent, unsigned int Flags),
               (hStream, hEvent, Flags))
POSENC_FORWARD(cuEventCreate, (CUevent * phEvent, unsigned int Flags),
               (phEvent, Flags))
POSENC_FORWARD(cuEventDestroy, (CUevent hEvent), (hEvent))
POSENC_FORWARD(cuEventRecord, (CUevent hEvent, CUstream hStream),
               (hEvent, hStream))
POSENC_FORWARD(cuEventSynchronize, (CUevent hEvent), (hEvent))
POSENC_FORWARD(cuEventElapsedTime,
               (float *pMilliseconds, CUevent hStart, CUevent hEnd),
               (pMilliseconds, hStart, hEnd))
POSENC_FORWARD(cuMemAlloc, (CUdeviceptr * dptr, size_t bytesize),
               (dptr, bytesize))
POSENC_FORWARD(cuMemAllocManaged,
               (CUdeviceptr * dptr, size_t bytesize, unsigned int flags),
               (dptr, bytesize, flags))
POSENC_FORWARD(cuMemAllocAsync,
               (CUdeviceptr * dptr, size_t bytesize, CUstream hStream),
               (dptr, bytesize, hStream))
POSENC_FORWARD(cuMemFree, (CUdeviceptr dptr), (dptr))
POSENC_FORWARD(cuMemFreeAsync, (CUdeviceptr dptr, CUstream hStream),
               (dptr, hStream))
POSENC_FORWARD(cuMemcpyAsync,
               (CUdeviceptr dst, CUdeviceptr src, size_t ByteCount,
                CUstream hStream),
               (dst, src, ByteCount, hStream))
POSENC_FORWARD(cuMemcpyDtoDAsync,
               (CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount,
                CUstream hStream),
               (dstDevice, srcDevice, ByteCount, hStream))
POSENC_FORWARD(cuMemsetD16Async,
               (CUdeviceptr dstDevice, unsigned short us, size_t N,
                CUstream hStream),
               (dstDevice, us, N, hStream))
POSENC_FORWARD(cuMemsetD32Async,
               (CUdeviceptr dstDevice, unsigned int ui, size_t N,
                CUstream hStream),
               (dstDevice, ui, N, hStream))
