// What gpuad's kernels share: float/double overloads of the math they use, NaN and -inf,
// and the grid-stride loop. No system headers, so that every kernels/*.cu compiles as it is
// with nvcc and with NVRTC (CuPy's compiler; gpuad inlines this file into the source).
#ifndef GPUAD_COMMON_CUH
#define GPUAD_COMMON_CUH

__device__ __forceinline__ float exp_(float x) { return expf(x); }
__device__ __forceinline__ double exp_(double x) { return exp(x); }
__device__ __forceinline__ float log_(float x) { return logf(x); }
__device__ __forceinline__ double log_(double x) { return log(x); }
__device__ __forceinline__ float erf_(float x) { return erff(x); }
__device__ __forceinline__ double erf_(double x) { return erf(x); }
__device__ __forceinline__ float tanh_(float x) { return tanhf(x); }
__device__ __forceinline__ double tanh_(double x) { return tanh(x); }
__device__ __forceinline__ float sqrt_(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_(double x) { return sqrt(x); }
__device__ __forceinline__ float abs_(float x) { return fabsf(x); }
__device__ __forceinline__ double abs_(double x) { return fabs(x); }

template <typename T> __device__ __forceinline__ T nan_();
template <> __device__ __forceinline__ float nan_<float>() { return __int_as_float(0x7fc00000); }
template <> __device__ __forceinline__ double nan_<double>() {
  return __longlong_as_double(0x7ff8000000000000LL);
}
template <typename T> __device__ __forceinline__ T neg_inf_();
template <> __device__ __forceinline__ float neg_inf_<float>() {
  return __int_as_float(0xff800000);
}
template <> __device__ __forceinline__ double neg_inf_<double>() {
  return __longlong_as_double(0xfff0000000000000LL);
}

// Each thread starts at its global index and strides by the whole grid, so any launch size
// covers all n items (64-bit indices: n may exceed 2^31).
#define GRID_STRIDE_LOOP(i, n)                                                  \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (long long)blockDim.x * gridDim.x)

#endif  // GPUAD_COMMON_CUH
