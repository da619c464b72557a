// What cuda_host.h (compiled into each kernel module) and cuda_host_runtime.cpp (the
// scheduler, one shared library) share.
#pragma once

struct uint3 {
  unsigned int x, y, z;
};
struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int a = 1, unsigned int b = 1, unsigned int c = 1) : x(a), y(b), z(c) {}
};

#ifdef GPUAD_EMU_FREE_THREADS
#define GPUAD_EMU_PER_THREAD thread_local
#else
#define GPUAD_EMU_PER_THREAD  // fibers take turns on one OS thread; the scheduler sets these
#endif

#define GPUAD_EMU_API extern "C" __attribute__((visibility("default")))

GPUAD_EMU_API GPUAD_EMU_PER_THREAD uint3 gpuad_emu_thread_idx, gpuad_emu_block_idx;
GPUAD_EMU_API dim3 gpuad_emu_block_dim, gpuad_emu_grid_dim;

GPUAD_EMU_API void gpuad_emu_sync_threads(int line);
// A warp operation (kind: 0 idx, 1 up, 2 down, 3 xor, 4 syncwarp); returns what it read.
GPUAD_EMU_API unsigned long long gpuad_emu_warp_op(int line, int kind, const char* name,
                                                   unsigned mask, unsigned long long value,
                                                   int arg, int width);
// Runs body(ctx) as every thread of every block; the shared regions are filled with 0xFF
// before each block. Returns 0, or 1 with the reason in err.
GPUAD_EMU_API int gpuad_emu_run(void (*body)(void*), void* ctx, const unsigned* dims,
                                double timeout_s, char* const* shared,
                                const unsigned long long* sizes, int n_shared, char* err,
                                int errlen);
