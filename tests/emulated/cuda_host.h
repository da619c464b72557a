// The CUDA execution model on the CPU, for gpuad's tests only (tests/emulated/): g++
// compiles a kernels/*.cu source behind this header, and the module links against the
// scheduler in cuda_host_runtime.cpp.
//
// Blocks run one after another, each as blockDim threads of its own (stack, registers,
// threadIdx). By default they are fibers that take turns on the launching thread: one runs
// until it reaches a synchronisation point (__syncthreads, a warp shuffle, __syncwarp, its
// end), then the next ready one, in an order that alternates between ascending and
// descending thread index from one release to the next, so a missing barrier shows up
// deterministically as a read of poisoned shared memory. Built with GPUAD_EMU_FREE_THREADS
// (the sanitizer builds) they are OS threads running concurrently. What a GPU leaves
// undefined stops the launch with a message: threads waiting at different __syncthreads
// calls, a thread that returned while others wait at a barrier or a shuffle, a shuffle mask
// naming lanes that do not exist or have returned, reading a lane outside the mask, and
// deadlock. __shared__ variables are filled with 0xFF bytes (NaN in float and double, -1 in
// integers) before every block. tests/test_kernels_emulated.py says what this cannot show.
#pragma once

#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>

#include "cuda_host_abi.h"

#define threadIdx (static_cast<const uint3&>(gpuad_emu_thread_idx))
#define blockIdx (static_cast<const uint3&>(gpuad_emu_block_idx))
#define blockDim (static_cast<const dim3&>(gpuad_emu_block_dim))
#define gridDim (static_cast<const dim3&>(gpuad_emu_grid_dim))
#define warpSize 32

#define __global__
#define __device__
#define __host__
#define __constant__ static
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
// Block-shared: one instance, serving the block that runs now (blocks run one at a time).
// kernel_build.py finds these function-local statics in the built module and hands them to
// the scheduler, which poisons them before each block.
#define __shared__ static

#define __syncthreads() gpuad_emu_sync_threads(__LINE__)
#define __syncwarp(...) ::gpuad_emu::sync_warp(__LINE__, ##__VA_ARGS__)
#define __shfl_sync(...) ::gpuad_emu::shuffle(__LINE__, 0, "__shfl_sync", __VA_ARGS__)
#define __shfl_up_sync(...) ::gpuad_emu::shuffle(__LINE__, 1, "__shfl_up_sync", __VA_ARGS__)
#define __shfl_down_sync(...) ::gpuad_emu::shuffle(__LINE__, 2, "__shfl_down_sync", __VA_ARGS__)
#define __shfl_xor_sync(...) ::gpuad_emu::shuffle(__LINE__, 3, "__shfl_xor_sync", __VA_ARGS__)

// --- math: CUDA's float overloads and intrinsics --------------------------------------------
using std::abs, std::ceil, std::cos, std::erf, std::exp, std::expm1, std::fabs, std::floor,
    std::fmax, std::fmin, std::isfinite, std::isinf, std::isnan, std::log, std::log1p, std::pow,
    std::sin, std::sqrt, std::tan, std::tanh;
inline float __int_as_float(int v) { return std::bit_cast<float>(v); }
inline int __float_as_int(float v) { return std::bit_cast<int>(v); }
inline double __longlong_as_double(long long v) { return std::bit_cast<double>(v); }
inline long long __double_as_longlong(double v) { return std::bit_cast<long long>(v); }
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __fdividef(float a, float b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline float __saturatef(float x) { return x < 0.0f ? 0.0f : (x > 1.0f ? 1.0f : x); }
template <typename T> inline T __ldg(const T* p) { return *p; }
template <typename T> inline T min(T a, T b) { return b < a ? b : a; }
template <typename T> inline T max(T a, T b) { return a < b ? b : a; }
inline void __threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }
inline void __threadfence_block() { std::atomic_thread_fence(std::memory_order_seq_cst); }

// --- atomics: std::atomic_ref, returning the old value as CUDA's do ---------------------------
template <typename T> inline T atomicAdd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v); }
template <typename T> inline T atomicSub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v); }
template <typename T> inline T atomicExch(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <typename T> inline T atomicAnd(T* p, T v) { return std::atomic_ref<T>(*p).fetch_and(v); }
template <typename T> inline T atomicOr(T* p, T v) { return std::atomic_ref<T>(*p).fetch_or(v); }
template <typename T> inline T atomicXor(T* p, T v) { return std::atomic_ref<T>(*p).fetch_xor(v); }
template <typename T> inline T atomicCAS(T* p, T expected, T v) {
  std::atomic_ref<T>(*p).compare_exchange_strong(expected, v);
  return expected;
}
template <typename T, typename Pick> inline T atomic_pick(T* p, T v, Pick pick) {
  std::atomic_ref<T> r(*p);
  T old = r.load();
  while (!r.compare_exchange_weak(old, pick(old, v))) {
  }
  return old;
}
template <typename T> inline T atomicMax(T* p, T v) {
  return atomic_pick(p, v, [](T a, T b) { return a < b ? b : a; });
}
template <typename T> inline T atomicMin(T* p, T v) {
  return atomic_pick(p, v, [](T a, T b) { return b < a ? b : a; });
}

namespace gpuad_emu {

inline void sync_warp(int line, unsigned mask = 0xffffffffu) {
  gpuad_emu_warp_op(line, 4, "__syncwarp", mask, 0, 0, 32);
}

template <typename T>
inline T shuffle(int line, int kind, const char* name, unsigned mask, T var, int arg,
                 int width = 32) {
  static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffles move up to 8 bytes");
  unsigned long long in = 0;
  std::memcpy(&in, &var, sizeof(T));
  const unsigned long long out = gpuad_emu_warp_op(line, kind, name, mask, in, arg, width);
  T result;
  std::memcpy(&result, &out, sizeof(T));
  return result;
}

// --- what the Python side calls: a kernel's parameter types, and its launch ------------------
template <typename T> struct TypeName;
#define GPUAD_EMU_TYPE_NAME(T) \
  template <> struct TypeName<T> { static void put(char* s) { std::strcat(s, #T); } };
GPUAD_EMU_TYPE_NAME(bool)
GPUAD_EMU_TYPE_NAME(char)
GPUAD_EMU_TYPE_NAME(signed char)
GPUAD_EMU_TYPE_NAME(unsigned char)
GPUAD_EMU_TYPE_NAME(short)
GPUAD_EMU_TYPE_NAME(unsigned short)
GPUAD_EMU_TYPE_NAME(int)
GPUAD_EMU_TYPE_NAME(unsigned int)
GPUAD_EMU_TYPE_NAME(long)
GPUAD_EMU_TYPE_NAME(unsigned long)
GPUAD_EMU_TYPE_NAME(long long)
GPUAD_EMU_TYPE_NAME(unsigned long long)
GPUAD_EMU_TYPE_NAME(float)
GPUAD_EMU_TYPE_NAME(double)
GPUAD_EMU_TYPE_NAME(void)
template <typename T> struct TypeName<const T> {
  static void put(char* s) {
    std::strcat(s, "const ");
    TypeName<T>::put(s);
  }
};
template <typename T> struct TypeName<T*> {
  static void put(char* s) {
    TypeName<T>::put(s);
    std::strcat(s, "*");
  }
};

// The kernel's C parameter types, comma-separated, as the compiler sees them (into out,
// which holds at least 64 bytes a parameter).
template <typename... P> void signature(void (*)(P...), char* out) {
  out[0] = 0;
  ((out[0] ? std::strcat(out, ",") : out, TypeName<P>::put(out)), ...);
}

// Reads each parameter from its argument buffer as CUDA's launch does: sizeof(parameter)
// bytes from where the caller's value lies, whatever the caller put there.
template <typename... P, size_t... I>
std::tuple<P...> unpack(void** args, std::index_sequence<I...>) {
  std::tuple<P...> values;
  ((std::memcpy(&std::get<I>(values), args[I], sizeof(P))), ...);
  return values;
}

template <auto Kernel, typename... P> struct Launch {
  std::tuple<P...> values;
  static void body(void* self) { std::apply(Kernel, static_cast<Launch*>(self)->values); }
};

template <auto Kernel, typename... P>
int launch(void (*)(P...), void** args, const unsigned* dims, double timeout_s,
           char* const* shared, const unsigned long long* sizes, int n_shared, char* err,
           int errlen) {
  Launch<Kernel, P...> l{unpack<P...>(args, std::index_sequence_for<P...>{})};
  return gpuad_emu_run(&Launch<Kernel, P...>::body, &l, dims, timeout_s, shared, sizes,
                       n_shared, err, errlen);
}

}  // namespace gpuad_emu

// The module's __shared__ variables, found by kernel_build.py after the build.
static char* const* gpuad_emu_shared_ptrs = nullptr;
static const unsigned long long* gpuad_emu_shared_sizes = nullptr;
static int gpuad_emu_n_shared = 0;

GPUAD_EMU_API void gpuad_emu_set_shared(char* const* ptrs, const unsigned long long* sizes,
                                        int n) {
  gpuad_emu_shared_ptrs = ptrs, gpuad_emu_shared_sizes = sizes, gpuad_emu_n_shared = n;
}

// One per kernel: its parameter types, and its launch.
#define GPUAD_EMU_ENTRY(name)                                                                \
  GPUAD_EMU_API void gpuad_emu_signature_##name(char* out) {                                 \
    ::gpuad_emu::signature(&name, out);                                                      \
  }                                                                                          \
  GPUAD_EMU_API int gpuad_emu_launch_##name(void** args, const unsigned* dims,               \
                                            double timeout_s, char* err, int errlen) {       \
    return ::gpuad_emu::launch<&name>(&name, args, dims, timeout_s, gpuad_emu_shared_ptrs,   \
                                      gpuad_emu_shared_sizes, gpuad_emu_n_shared, err,       \
                                      errlen);                                               \
  }
