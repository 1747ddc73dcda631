// REQUIRES: cuda-toolkit
// RUN: posenc-opt %s -posenc-lower-to-nvvm="format=isa" | FileCheck %s --implicit-check-not=".extern .func"
// RUN: %nvvm_report %s --chip sm_80 | FileCheck %s --check-prefix=PTXAS
// RUN: %nvvm_report %s --chip sm_90 | FileCheck %s --check-prefix=PTXAS
// RUN: posenc-opt %s -posenc-lower-to-nvvm="format=fatbin chip=sm_90" | FileCheck %s --check-prefix=FATBIN

// Every elementwise and table op becomes kernels (one per linalg op) in
// PTX with libdevice linked in (no external function left), launched from
// host code that keeps every buffer on the device. ptxas assembles every
// kernel for sm_80 and sm_90 without spills.
// The frequency table (a host constant) is copied to the device; all work
// is queued on one stream per call, synchronized before returning.
// CHECK: llvm.func @rope_half
// CHECK: %[[STREAM:.+]] = llvm.call @mgpuStreamCreate
// CHECK: llvm.call @mgpuMemAlloc
// CHECK: llvm.call @mgpuMemcpy
// CHECK: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @rope_half_kernel::@rope_half_kernel blocks in ({{.+}}) threads in ({{.+}})
// CHECK: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @rope_half_kernel_0::@rope_half_kernel
// CHECK: gpu.launch_func <%[[STREAM]] : !llvm.ptr> @rope_half_kernel_1::@rope_half_kernel
// CHECK: llvm.call @mgpuMemFree
// CHECK: llvm.call @mgpuStreamSynchronize(%[[STREAM]])
// CHECK: llvm.call @mgpuStreamDestroy(%[[STREAM]])
// CHECK: gpu.binary @rope_half_kernel
// CHECK-SAME: .entry rope_half_kernel
// CHECK: llvm.func @rope_interleaved
// CHECK: llvm.func @sinusoidal
// CHECK: llvm.func @alibi
// CHECK: llvm.func @t5
// CHECK: llvm.func @shaw
// PTXAS-COUNT-3: rope_half_kernel{{.*}}spill stores 0 B, spill loads 0 B{{.*}}unresolved __nv_ externs: none
// PTXAS: rope_interleaved_kernel{{.*}}spill stores 0 B, spill loads 0 B
// PTXAS: sinusoidal_kernel{{.*}}spill stores 0 B, spill loads 0 B
// PTXAS: alibi_kernel{{.*}}spill stores 0 B, spill loads 0 B
// PTXAS: t5_kernel{{.*}}spill stores 0 B, spill loads 0 B
// PTXAS: shaw_kernel{{.*}}spill stores 0 B, spill loads 0 B
// A fatbin (magic 0xBA55ED50) made by ptxas and fatbinary.
// FATBIN: gpu.binary @rope_half_kernel [#gpu.object<#nvvm.target<O = 3, chip = "sm_90", features = "+ptx80">, properties = {ISAToBinaryTimeInMs = {{[0-9]+}} : i64, LLVMIRToISATimeInMs = {{[0-9]+}} : i64}, "P\EDU\BA

func.func @rope_half(%x: tensor<2x16x8x64xf32>, %p: tensor<16xi32>) -> tensor<2x16x8x64xf32> {
  %y = posenc.rope %x, %p layout half : tensor<2x16x8x64xf32>, tensor<16xi32>
  return %y : tensor<2x16x8x64xf32>
}

func.func @rope_interleaved(%x: tensor<1x8x4x128xbf16>, %p: tensor<1x8xi64>) -> tensor<1x8x4x128xbf16> {
  %y = posenc.rope %x, %p layout interleaved {base = 500000.0 : f64, rotary_dim = 32 : i64, attention_factor = 1.25 : f64} : tensor<1x8x4x128xbf16>, tensor<1x8xi64>
  return %y : tensor<1x8x4x128xbf16>
}

func.func @sinusoidal(%p: tensor<128xi64>) -> tensor<128x512xf32> {
  %0 = posenc.sinusoidal %p layout interleaved {dim = 512 : i64} : tensor<128xi64> -> tensor<128x512xf32>
  return %0 : tensor<128x512xf32>
}

func.func @alibi(%qp: tensor<128xi32>, %kp: tensor<256xi32>) -> tensor<12x128x256xf32> {
  %0 = posenc.alibi_bias %qp, %kp mode causal {num_heads = 12 : i64} : tensor<128xi32>, tensor<256xi32> -> tensor<12x128x256xf32>
  return %0 : tensor<12x128x256xf32>
}

func.func @t5(%t: tensor<32x12xf32>, %qp: tensor<64xi32>, %kp: tensor<64xi32>) -> tensor<12x64x64xf32> {
  %0 = posenc.rel_bias %t, %qp, %kp kind t5 {num_buckets = 32 : i64, max_distance = 128 : i64} : tensor<32x12xf32>, tensor<64xi32>, tensor<64xi32> -> tensor<12x64x64xf32>
  return %0 : tensor<12x64x64xf32>
}

func.func @shaw(%q: tensor<2x64x12x64xf32>, %emb: tensor<33x64xf32>, %qp: tensor<64xi32>, %kp: tensor<2x?xi64>) -> tensor<2x12x64x?xf32> {
  %0 = posenc.rel_key_bias %q, %emb, %qp, %kp {max_distance = 16 : i64} : tensor<2x64x12x64xf32>, tensor<33x64xf32>, tensor<64xi32>, tensor<2x?xi64> -> tensor<2x12x64x?xf32>
  return %0 : tensor<2x12x64x?xf32>
}
