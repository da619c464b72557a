// Fused optimizer updates, in place, one launch per parameter. Twin: optim.py. The scalars
// are computed on the host as Backend.sgd_step / Backend.adam_step compute them.
#include "common.cuh"

// SGD with weight decay and momentum (damp_c = 1 - dampening); buf is not read when
// momentum is 0.
template <typename T>
__device__ void sgd_step(T* p, const T* g, T* buf, long long n, T lr, T momentum, T damp_c,
                         int nesterov, T weight_decay) {
  GRID_STRIDE_LOOP(i, n) {
    T d = g[i];
    if (weight_decay != T(0)) d = d + weight_decay * p[i];
    if (momentum != T(0)) {
      const T b = buf[i] * momentum + damp_c * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] = p[i] - lr * d;
  }
}

// Adam (l2: weight decay added to the gradient) or AdamW (decay: p's scale factor).
template <typename T>
__device__ void adam_step(T* p, const T* g, T* m, T* v, long long n, T beta1, T beta1_c,
                          T beta2, T beta2_c, T bias2_sqrt, T eps, T step_size, T l2,
                          T decay) {
  GRID_STRIDE_LOOP(i, n) {
    const T q = p[i] * decay;
    T d = g[i];
    if (l2 != T(0)) d = d + l2 * q;
    const T mi = m[i] * beta1 + beta1_c * d;
    const T vi = v[i] * beta2 + beta2_c * d * d;
    m[i] = mi;
    v[i] = vi;
    p[i] = q - step_size * mi / (sqrt_(vi) / bias2_sqrt + eps);
  }
}

#define ENTRY_POINTS(T, SUFFIX)                                                           \
  extern "C" __global__ void sgd_step_##SUFFIX(T* p, const T* g, T* buf, long long n, T lr, \
                                               T momentum, T damp_c, int nesterov,        \
                                               T weight_decay) {                          \
    sgd_step(p, g, buf, n, lr, momentum, damp_c, nesterov, weight_decay);                 \
  }                                                                                       \
  extern "C" __global__ void adam_step_##SUFFIX(                                           \
      T* p, const T* g, T* m, T* v, long long n, T beta1, T beta1_c, T beta2, T beta2_c,   \
      T bias2_sqrt, T eps, T step_size, T l2, T decay) {                                  \
    adam_step(p, g, m, v, n, beta1, beta1_c, beta2, beta2_c, bias2_sqrt, eps, step_size,  \
              l2, decay);                                                                 \
  }

ENTRY_POINTS(float, f32)
ENTRY_POINTS(double, f64)
