// Softmax cross-entropy forward (per-row stats and loss) and backward. Twin:
// softmax_xent.py. One block per row (grid-stride over rows); blockDim.x must be a multiple
// of 32 (whole warps), at most 1024. Targets are int64; one outside [0, C) gives its row a
// NaN loss and NaN gradients, and is never read past. A row's stats are its max m and
// log(sum(exp(x - m))), kept apart: m + log-sum would round away the small part of large
// logits (1e6 + 1.3 in float).
#include "common.cuh"

struct MaxOp {
  template <typename T> __device__ T operator()(T a, T b) const { return a > b ? a : b; }
};
struct SumOp {
  template <typename T> __device__ T operator()(T a, T b) const { return a + b; }
};

// The reduction of v over the block, returned to every thread.
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T warp_results[32];
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31;
  __syncthreads();  // an earlier call's readers are done with warp_results
  if (lane == 0) warp_results[threadIdx.x >> 5] = v;
  __syncthreads();
  v = lane < (int)((blockDim.x + 31) >> 5) ? warp_results[lane] : identity;
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

template <typename T>
__device__ void xent_forward(const T* x, const long long* t, T* stats, T* loss, long long n,
                             long long c) {
  for (long long row = blockIdx.x; row < n; row += gridDim.x) {  // uniform per block
    const T* xr = x + row * c;
    T m = neg_inf_<T>();
    for (long long j = threadIdx.x; j < c; j += blockDim.x) m = xr[j] > m ? xr[j] : m;
    m = block_reduce(m, MaxOp(), neg_inf_<T>());
    T total = T(0);
    for (long long j = threadIdx.x; j < c; j += blockDim.x) total += exp_(xr[j] - m);
    total = block_reduce(total, SumOp(), T(0));
    if (threadIdx.x == 0) {
      const T log_sum = log_(total);
      const long long k = t[row];
      stats[2 * row] = m;
      stats[2 * row + 1] = log_sum;
      loss[row] = (k >= 0 && k < c) ? log_sum - (xr[k] - m) : nan_<T>();
    }
  }
}

// g = (softmax(x) - onehot(t)) * scale[0]; scale lives on the device (no host sync).
template <typename T>
__device__ void xent_backward(const T* x, const T* stats, const long long* t, const T* scale,
                              T* g, long long n, long long c) {
  const T sc = scale[0];
  for (long long row = blockIdx.x; row < n; row += gridDim.x) {
    const long long k = t[row];
    const T m = stats[2 * row], log_sum = stats[2 * row + 1];
    const T row_sc = (k >= 0 && k < c) ? sc : nan_<T>();
    for (long long j = threadIdx.x; j < c; j += blockDim.x) {
      T e = exp_((x[row * c + j] - m) - log_sum);
      if (j == k) e -= T(1);
      g[row * c + j] = e * row_sc;
    }
  }
}

#define ENTRY_POINTS(T, SUFFIX)                                                          \
  extern "C" __global__ void xent_forward_##SUFFIX(const T* x, const long long* t,       \
                                                   T* stats, T* loss, long long n,       \
                                                   long long c) {                        \
    xent_forward(x, t, stats, loss, n, c);                                               \
  }                                                                                      \
  extern "C" __global__ void xent_backward_##SUFFIX(const T* x, const T* stats,           \
                                                    const long long* t, const T* scale,  \
                                                    T* g, long long n, long long c) {    \
    xent_backward(x, stats, t, scale, g, n, c);                                          \
  }

ENTRY_POINTS(float, f32)
ENTRY_POINTS(double, f64)
