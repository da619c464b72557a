// Bias + activation forward, activation backward, and activation backward fused with the
// bias gradient. Twin: activation.py. `act` is the activation's code (below, as in
// gpuad.backends.base.ACTIVATION_CODES), `slope` leaky_relu's negative slope.
#include "common.cuh"

#define RELU 0
#define LEAKY_RELU 1
#define GELU 2
#define TANH 3
#define SIGMOID 4

template <typename T>
__device__ __forceinline__ T act_forward(T h, int act, T slope) {
  switch (act) {
    case RELU: return h <= T(0) ? T(0) : h;  // NaN stays NaN
    case LEAKY_RELU: return h > T(0) ? h : h * slope;
    case GELU: return h * (T(0.5) * (T(1) + erf_(h * T(0.7071067811865476))));
    case TANH: return tanh_(h);
    default: {  // SIGMOID, without overflow for large |h|
      const T e = exp_(-abs_(h));
      return h >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    }
  }
}

// dL/dh from g = dL/dy and s: the output (relu, leaky_relu, tanh, sigmoid) or the input (gelu)
template <typename T>
__device__ __forceinline__ T act_backward(T g, T s, int act, T slope) {
  switch (act) {
    case RELU: return g * T(s > T(0));
    case LEAKY_RELU: return s > T(0) ? g : g * slope;
    case GELU: {
      const T cdf = T(0.5) * (T(1) + erf_(s * T(0.7071067811865476)));
      const T pdf = exp_(T(-0.5) * s * s) * T(0.3989422804014327);
      return g * (cdf + s * pdf);
    }
    case TANH: return g * (T(1) - s * s);
    default: return g * s * (T(1) - s);
  }
}

// y = act(z + b[col]) over n elements in rows of c; z keeps z + b unless y is z (in place).
template <typename T>
__device__ void bias_act(T* z, const T* b, T* y, long long n, long long c, int act, T slope) {
  const long long stride = (long long)blockDim.x * gridDim.x;
  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
  long long col = i % c;
  const long long step = stride % c;  // the column advances by this much per stride
  for (; i < n; i += stride) {
    const T h = z[i] + b[col];
    if (y != z) z[i] = h;
    y[i] = act_forward(h, act, slope);
    col += step;
    if (col >= c) col -= c;
  }
}

template <typename T>
__device__ void act_backward_kernel(const T* g, const T* s, T* out, long long n, int act,
                                    T slope) {
  GRID_STRIDE_LOOP(i, n) out[i] = act_backward(g[i], s[i], act, slope);
}

// act_backward over (rows, c), and partial[k * c + col]: the sum of out[:, col] over the k-th
// block of chunk_rows rows (the caller adds the partial rows into the bias gradient).
// Threads run along columns (coalesced), blocks of the y grid along row blocks.
template <typename T>
__device__ void act_bias_backward(const T* g, const T* s, T* out, T* partial, long long rows,
                                  long long c, long long chunk_rows, int act, T slope) {
  const long long chunks = (rows + chunk_rows - 1) / chunk_rows;
  for (long long k = blockIdx.y; k < chunks; k += gridDim.y) {
    const long long lo = k * chunk_rows;
    const long long hi = lo + chunk_rows < rows ? lo + chunk_rows : rows;
    for (long long col = (long long)blockIdx.x * blockDim.x + threadIdx.x; col < c;
         col += (long long)blockDim.x * gridDim.x) {
      T acc = T(0);
      for (long long r = lo; r < hi; ++r) {
        const long long i = r * c + col;
        const T v = act_backward(g[i], s[i], act, slope);
        out[i] = v;
        acc += v;
      }
      partial[k * c + col] = acc;
    }
  }
}

#define ENTRY_POINTS(T, SUFFIX)                                                          \
  extern "C" __global__ void bias_act_##SUFFIX(T* z, const T* b, T* y, long long n,       \
                                               long long c, int act, T slope) {          \
    bias_act(z, b, y, n, c, act, slope);                                                 \
  }                                                                                      \
  extern "C" __global__ void act_backward_##SUFFIX(const T* g, const T* s, T* out,        \
                                                   long long n, int act, T slope) {      \
    act_backward_kernel(g, s, out, n, act, slope);                                       \
  }                                                                                      \
  extern "C" __global__ void act_bias_backward_##SUFFIX(                                  \
      const T* g, const T* s, T* out, T* partial, long long rows, long long c,            \
      long long chunk_rows, int act, T slope) {                                          \
    act_bias_backward(g, s, out, partial, rows, c, chunk_rows, act, slope);              \
  }

ENTRY_POINTS(float, f32)
ENTRY_POINTS(double, f64)
