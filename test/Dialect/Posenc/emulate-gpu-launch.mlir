// RUN: posenc-opt %s -split-input-file -posenc-emulate-gpu-launch -verify-diagnostics | FileCheck %s

// Grid then block, z outermost; ids and sizes bound to the loop values.
// CHECK-LABEL: func @scale
// CHECK-SAME: (%[[M:.+]]: memref<?xf32>, %[[N:.+]]: index)
// CHECK-NOT: gpu.
// CHECK: scf.for %[[BZ:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[BY:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[BX:.+]] = %{{.+}} to %[[N]]
// CHECK: scf.for %[[TZ:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[TY:.+]] = %{{.+}} to %c1
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %c32
// CHECK: %[[I:.+]] = arith.muli %[[BX]], %c32
// CHECK: %[[J:.+]] = arith.addi %[[I]], %[[TX]]
// CHECK: memref.load %[[M]][%[[J]]]
// CHECK-NOT: gpu.
func.func @scale(%m: memref<?xf32>, %n: index) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %n, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %i = arith.muli %bx, %sx : index
    %j = arith.addi %i, %tx : index
    %v = memref.load %m[%j] : memref<?xf32>
    %w = arith.addf %v, %v : f32
    memref.store %w, %m[%j] : memref<?xf32>
    gpu.terminator
  }
  return
}

// -----

// Shared memory is one host buffer; a barrier ends a loop over the threads,
// and a value read after it is kept per thread.
// CHECK-LABEL: func @reverse_through_shared
// CHECK-DAG: %[[SHARED:.+]] = memref.alloc() : memref<32xf32>
// CHECK-DAG: %[[KEPT:.+]] = memref.alloc() : memref<32xf32>
// CHECK: scf.for %[[BX:.+]] =
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %c32
// CHECK: %[[X:.+]] = memref.load %{{.+}}[%[[TX]]]
// CHECK: memref.store %[[X]], %[[KEPT]][
// CHECK: memref.store %[[X]], %[[SHARED]][%[[TX]]]
// CHECK: }
// CHECK: scf.for %[[TX2:.+]] = %{{.+}} to %c32
// CHECK: %[[R:.+]] = arith.subi %c31, %[[TX2]]
// CHECK: %[[Y:.+]] = memref.load %[[SHARED]][%[[R]]]
// CHECK: %[[X2:.+]] = memref.load %[[KEPT]][
// CHECK: arith.addf %[[Y]], %[[X2]]
// CHECK-NOT: gpu.
// CHECK: memref.dealloc %[[SHARED]]
func.func @reverse_through_shared(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %c31 = arith.constant 31 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1)
             workgroup(%shared : memref<32xf32, #gpu.address_space<workgroup>>) {
    %x = memref.load %m[%tx] : memref<32xf32>
    memref.store %x, %shared[%tx] : memref<32xf32, #gpu.address_space<workgroup>>
    gpu.barrier
    %r = arith.subi %c31, %tx : index
    %y = memref.load %shared[%r] : memref<32xf32, #gpu.address_space<workgroup>>
    %z = arith.addf %y, %x : f32
    memref.store %z, %m[%tx] : memref<32xf32>
    gpu.terminator
  }
  return
}

// -----

// A loop holding a barrier runs once per block; its carried value lives per
// thread, its bounds are thread 0's. Views of dynamic shared memory are
// recomputed where they are read.
// CHECK-LABEL: func @loop_with_barrier
// CHECK-DAG: %[[SMEM:.+]] = memref.alloc(%{{.+}}) {alignment = 64 : i64} : memref<?xi8>
// CHECK-DAG: %[[ACC:.+]] = memref.alloc() : memref<64xf32>
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %c64
// CHECK: memref.store %{{.+}}, %[[ACC]][
// CHECK: scf.for %[[I:.+]] = %{{.+}} to %{{.+}} step
// CHECK-NOT: iter_args
// CHECK: scf.for
// CHECK: memref.view %[[SMEM]]
// CHECK-NOT: gpu.
func.func @loop_with_barrier(%m: memref<64xf32>, %n: index) {
  %c1 = arith.constant 1 : index
  %c0 = arith.constant 0 : index
  %c64 = arith.constant 64 : index
  %bytes = arith.constant 256 : i32
  %zero = arith.constant 0.0 : f32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1)
             dynamic_shared_memory_size %bytes {
    %raw = gpu.dynamic_shared_memory : memref<?xi8, #gpu.address_space<workgroup>>
    %tile = memref.view %raw[%c0][] : memref<?xi8, #gpu.address_space<workgroup>> to memref<64xf32, #gpu.address_space<workgroup>>
    %sum = scf.for %i = %c0 to %n step %c1 iter_args(%acc = %zero) -> (f32) {
      %x = memref.load %m[%tx] : memref<64xf32>
      memref.store %x, %tile[%tx] : memref<64xf32, #gpu.address_space<workgroup>>
      gpu.barrier
      %y = memref.load %tile[%c0] : memref<64xf32, #gpu.address_space<workgroup>>
      %next = arith.addf %acc, %y : f32
      gpu.barrier
      scf.yield %next : f32
    }
    memref.store %sum, %m[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// gpu.shuffle reads the source lane's value from the per-thread buffer.
// CHECK-LABEL: func @shuffle_xor
// CHECK: %[[V:.+]] = memref.alloc() : memref<64xf32>
// CHECK: scf.for %[[TX:.+]] = %{{.+}} to %c64
// CHECK: memref.store %{{.+}}, %[[V]][
// CHECK: scf.for %[[TX2:.+]] = %{{.+}} to %c64
// CHECK: %[[LANE:.+]] = arith.index_cast %{{.+}} : index to i32
// CHECK: %[[J:.+]] = arith.xori %[[LANE]]
// CHECK: %[[OK:.+]] = arith.cmpi slt, %[[J]]
// CHECK: %[[SRC:.+]] = arith.select %[[OK]], %[[J]], %[[LANE]]
// CHECK: memref.load %[[V]][
// CHECK-NOT: gpu.shuffle
func.func @shuffle_xor(%m: memref<64xf32>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %off = arith.constant 1 : i32
  %width = arith.constant 32 : i32
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %x = memref.load %m[%tx] : memref<64xf32>
    %y, %valid = gpu.shuffle xor %x, %off, %width : f32
    %z = arith.addf %x, %y : f32
    memref.store %z, %m[%tx] : memref<64xf32>
    gpu.terminator
  }
  return
}

// -----

// mma.sync: per warp, the lanes' fragments scattered into host tiles, each
// lane's D fragment a k-ordered sum.
// CHECK-LABEL: func @mma
// CHECK-DAG: memref.alloc() : memref<16x16xf32>
// CHECK-DAG: memref.alloc() : memref<16x8xf32>
// CHECK-DAG: memref.alloc() : memref<64xvector<2x2xf32>>
// CHECK: scf.for %[[W:.+]] = %{{.+}} to %c2
// CHECK: vector.extract %{{.+}}[3, 1] : f16 from vector<4x2xf16>
// CHECK: math.fma
// CHECK-NOT: nvgpu.
func.func @mma(%a: memref<64xvector<4x2xf16>>, %b: memref<64xvector<2x2xf16>>, %d: memref<64xvector<2x2xf32>>) {
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c64, %sy = %c1, %sz = %c1) {
    %av = memref.load %a[%tx] : memref<64xvector<4x2xf16>>
    %bv = memref.load %b[%tx] : memref<64xvector<2x2xf16>>
    %cv = arith.constant dense<0.0> : vector<2x2xf32>
    %dv = nvgpu.mma.sync (%av, %bv, %cv) {mmaShape = [16, 8, 16]} : (vector<4x2xf16>, vector<2x2xf16>, vector<2x2xf32>) -> vector<2x2xf32>
    memref.store %dv, %d[%tx] : memref<64xvector<2x2xf32>>
    gpu.terminator
  }
  return
}

// -----

func.func @bounds_differ(%m: memref<32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{posenc-emulate-gpu-launch: cannot run on the host: 'scf.for' holds 'gpu.barrier' and its bounds may differ between the threads of a block; every thread must reach a barrier or warp collective together}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    scf.for %i = %c0 to %tx step %c1 {
      gpu.barrier
    }
    gpu.terminator
  }
  return
}

// -----

func.func @condition_from_memory_write(%m: memref<32xi32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %one = arith.constant 1 : i32
  // expected-error @+1 {{'scf.if' holds 'gpu.barrier' and its condition may differ between the threads of a block}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %old = memref.atomic_rmw addi %one, %m[%c0] : (i32, memref<32xi32>) -> i32
    %first = arith.cmpi eq, %old, %one : i32
    scf.if %first {
      gpu.barrier
    }
    gpu.terminator
  }
  return
}

// -----

func.func @while_with_barrier(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  %false = arith.constant false
  // expected-error @+1 {{'scf.while' holds 'gpu.barrier'; only scf.for and scf.if may hold a barrier or a warp collective}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    scf.while : () -> () {
      gpu.barrier
      scf.condition(%false)
    } do {
      scf.yield
    }
    gpu.terminator
  }
  return
}

// -----

func.func @alloca_across_barrier(%m: memref<32xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{a 'memref<4xf32>' value of 'memref.alloca' is live across a barrier or warp collective; only scalars, vectors and side-effect-free views can be}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %p = memref.alloca() : memref<4xf32>
    gpu.barrier
    %x = memref.load %p[%c0] : memref<4xf32>
    memref.store %x, %m[%tx] : memref<32xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @partial_warp(%m: memref<48xf32>) {
  %c1 = arith.constant 1 : index
  %c48 = arith.constant 48 : index
  %off = arith.constant 1 : i32
  %width = arith.constant 32 : i32
  // expected-error @+1 {{a warp collective needs a static block of whole warps (a multiple of 32 threads)}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c48, %sy = %c1, %sz = %c1) {
    %x = memref.load %m[%tx] : memref<48xf32>
    %y, %valid = gpu.shuffle xor %x, %off, %width : f32
    memref.store %y, %m[%tx] : memref<48xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @all_reduce(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{it uses 'gpu.all_reduce', which the emulation does not model}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %x = memref.load %m[%tx] : memref<32xf32>
    %s = gpu.all_reduce add %x {} : (f32) -> (f32)
    memref.store %s, %m[%tx] : memref<32xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @mma_int8(%a: memref<32xvector<4x4xi8>>, %b: memref<32xvector<2x4xi8>>, %d: memref<32xvector<2x2xi32>>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{'nvgpu.mma.sync' with shape [16, 8, 32] on 'vector<4x4xi8>' x 'vector<2x4xi8>' + 'vector<2x2xi32>' is not modelled}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %av = memref.load %a[%tx] : memref<32xvector<4x4xi8>>
    %bv = memref.load %b[%tx] : memref<32xvector<2x4xi8>>
    %cv = arith.constant dense<0> : vector<2x2xi32>
    %dv = nvgpu.mma.sync (%av, %bv, %cv) {mmaShape = [16, 8, 32]} : (vector<4x4xi8>, vector<2x4xi8>, vector<2x2xi32>) -> vector<2x2xi32>
    memref.store %dv, %d[%tx] : memref<32xvector<2x2xi32>>
    gpu.terminator
  }
  return
}

// -----

func.func @private_memory(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{it has private memory attributions}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1)
             private(%p : memref<4xf32, #gpu.address_space<private>>) {
    gpu.terminator
  }
  return
}

// -----

func.func @async_token_in_loop(%m: memref<32xf32>, %n: index) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{an async copy token reaches 'scf.for'; only nvgpu.device_async_create_group and nvgpu.device_async_wait may take one}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1)
             workgroup(%s : memref<32xf32, #gpu.address_space<workgroup>>) {
    %t0 = nvgpu.device_async_copy %m[%tx], %s[%tx], 1 : memref<32xf32> to memref<32xf32, #gpu.address_space<workgroup>>
    %t = scf.for %i = %c0 to %n step %c1 iter_args(%tok = %t0) -> (!nvgpu.device.async.token) {
      %next = nvgpu.device_async_copy %m[%tx], %s[%tx], 1 : memref<32xf32> to memref<32xf32, #gpu.address_space<workgroup>>
      scf.yield %next : !nvgpu.device.async.token
    }
    gpu.terminator
  }
  return
}

// -----

func.func @clusters(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{posenc-emulate-gpu-launch: cannot run on the host: it has thread block clusters}}
  gpu.launch clusters(%cx, %cy, %cz) in (%ux = %c1, %uy = %c1, %uz = %c1)
             blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    gpu.terminator
  }
  return
}

// -----

memref.global "private" @smem : memref<32xf32, #gpu.address_space<workgroup>>
func.func @shared_global(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{it uses 'memref.get_global', which the emulation does not model}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %s = memref.get_global @smem : memref<32xf32, #gpu.address_space<workgroup>>
    %x = memref.load %s[%tx] : memref<32xf32, #gpu.address_space<workgroup>>
    memref.store %x, %m[%tx] : memref<32xf32>
    gpu.terminator
  }
  return
}

// -----

func.func private @helper(index)
func.func @call_in_kernel(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{it uses 'func.call', which the emulation does not model}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    func.call @helper(%tx) : (index) -> ()
    gpu.terminator
  }
  return
}

// -----

func.func @nvvm_barrier(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{it uses 'nvvm.barrier0', which the emulation does not model}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    nvvm.barrier0
    gpu.terminator
  }
  return
}

// -----

func.func @reduce_cluster_past_warp(%m: memref<32xf32>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{'gpu.subgroup_reduce' has clusters of 16 lanes 4 apart, beyond a warp of 32}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %x = memref.load %m[%tx] : memref<32xf32>
    %s = gpu.subgroup_reduce add %x cluster(size = 16, stride = 4) : (f32) -> f32
    memref.store %s, %m[%tx] : memref<32xf32>
    gpu.terminator
  }
  return
}

// -----

func.func @bf16_with_f16_accumulator(%a: memref<32xvector<4x2xbf16>>, %b: memref<32xvector<2x2xbf16>>, %d: memref<32xvector<2x2xf16>>) {
  %c1 = arith.constant 1 : index
  %c32 = arith.constant 32 : index
  // expected-error @+1 {{is not modelled (m16n8k8 and m16n8k16 on f16 or bf16, m16n8k4 and m16n8k8 on tf32, f32 accumulators or f16 ones for f16)}}
  gpu.launch blocks(%bx, %by, %bz) in (%gx = %c1, %gy = %c1, %gz = %c1)
             threads(%tx, %ty, %tz) in (%sx = %c32, %sy = %c1, %sz = %c1) {
    %av = memref.load %a[%tx] : memref<32xvector<4x2xbf16>>
    %bv = memref.load %b[%tx] : memref<32xvector<2x2xbf16>>
    %cv = arith.constant dense<0.0> : vector<2x2xf16>
    %dv = nvgpu.mma.sync (%av, %bv, %cv) {mmaShape = [16, 8, 16]} : (vector<4x2xbf16>, vector<2x2xbf16>, vector<2x2xf16>) -> vector<2x2xf16>
    memref.store %dv, %d[%tx] : memref<32xvector<2x2xf16>>
    gpu.terminator
  }
  return
}
