// The gradient of the squared error, g = 2 * scale * (x - t), in one pass. Twin: mse.py.
// scale lives on the device (the loss's gradient over N): no host sync.
#include "common.cuh"

template <typename T>
__device__ void mse_backward(const T* x, const T* t, const T* scale, T* g, long long n) {
  const T s2 = T(2) * scale[0];
  GRID_STRIDE_LOOP(i, n) g[i] = (x[i] - t[i]) * s2;
}

#define ENTRY_POINTS(T, SUFFIX)                                                          \
  extern "C" __global__ void mse_backward_##SUFFIX(const T* x, const T* t, const T* scale, \
                                                   T* g, long long n) {                  \
    mse_backward(x, t, scale, g, n);                                                     \
  }

ENTRY_POINTS(float, f32)
ENTRY_POINTS(double, f64)
