//===- CudaRuntime.h - mgpu* entry points over the CUDA driver --*- C++ -*-===//
//
// The functions that host code lowered by posenc-lower-to-nvvm calls
// (gpu-to-llvm and the GPU module embedding of LLVM 22), implemented over
// the CUDA driver API. Every driver call is checked: a failure prints the
// call, the driver's error name and message, and exits with status 1 (the
// generated code has no error path to return through).
//
// The driver and the primary context of device 0 (or $POSENC_CUDA_DEVICE)
// are initialized on first use, which may be a module constructor that
// runs before main.
//
//===----------------------------------------------------------------------===//

#ifndef POSENC_RUNTIME_CUDA_CUDARUNTIME_H
#define POSENC_RUNTIME_CUDA_CUDARUNTIME_H

#include <cstddef>
#include <cstdint>

extern "C" {
// Kernel modules: loaded from the embedded fatbin/cubin/PTX.
void *mgpuModuleLoad(void *data, size_t size);
void *mgpuModuleLoadJIT(void *data, int optLevel);
void mgpuModuleUnload(void *module);
void *mgpuModuleGetFunction(void *module, const char *name);
void mgpuLaunchKernel(void *function, intptr_t gridX, intptr_t gridY,
                      intptr_t gridZ, intptr_t blockX, intptr_t blockY,
                      intptr_t blockZ, int32_t smem, void *stream,
                      void **params, void **extra, size_t paramsCount);

// Streams and events.
void *mgpuStreamCreate();
void mgpuStreamDestroy(void *stream);
void mgpuStreamSynchronize(void *stream);
void mgpuStreamWaitEvent(void *stream, void *event);
void *mgpuEventCreate();
void mgpuEventDestroy(void *event);
void mgpuEventSynchronize(void *event);
void mgpuEventRecord(void *event, void *stream);

// Memory: stream-ordered device allocations (from the device's pool).
void *mgpuMemAlloc(uint64_t sizeBytes, void *stream, bool isHostShared);
void mgpuMemFree(void *ptr, void *stream);
void mgpuMemcpy(void *dst, void *src, size_t sizeBytes, void *stream);
void mgpuMemset32(void *dst, uint32_t value, size_t count, void *stream);
void mgpuMemset16(void *dst, unsigned short value, size_t count, void *stream);
void mgpuSetDefaultDevice(int32_t device);

// For harnesses: fills every later mgpuMemAlloc with `pattern` (32 bits,
// e.g. 0x7FC07FC0: NaN as f32, bf16 and f16), so that outputs a kernel
// fails to write are visible; 0 turns it off.
void posencCudaSetPoison(uint32_t pattern);
}

#endif // POSENC_RUNTIME_CUDA_CUDARUNTIME_H
