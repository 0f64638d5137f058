// Shared helpers of foldkit's CUDA kernels.
//
// Conventions: every kernel argument is 8 bytes wide (pointers, long long
// sizes and strides, double scalars), because gorgonia.org/cu's Launch
// passes each argument as 8 bytes. Each kernel is a template over the
// element type T, instantiated as NAME_f32 and NAME_f64 with extern "C"
// names, so that the Go side finds them by name. Matrices are row-major.
#pragma once

typedef long long i64;

#define FULL_MASK 0xffffffffu

// grid-stride loop over [0, n)
#define GRID_LOOP(i, n) \
	for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += (i64)blockDim.x * gridDim.x)

template <typename T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
	return v;
}

template <typename T>
__device__ __forceinline__ T warp_max(T v) {
#pragma unroll
	for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(FULL_MASK, v, o));
	return v;
}

// dexp is exp computed in double and rounded to T, as the CPU kernels'
// num.Exp and math.Exp do for float32.
template <typename T>
__device__ __forceinline__ T dexp(T x) { return (T)exp((double)x); }

// fexp is exp in T's own precision (expf for float32, error ≤ 2 ulp), for
// the compute-bound attention kernels.
__device__ __forceinline__ float fexp(float x) { return expf(x); }
__device__ __forceinline__ double fexp(double x) { return exp(x); }

template <typename T>
__device__ __forceinline__ T neg_inf();
template <>
__device__ __forceinline__ float neg_inf<float>() { return -__int_as_float(0x7f800000); }
template <>
__device__ __forceinline__ double neg_inf<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }

// sigmoid as nn.Sigmoid: 1/(1 + exp(−x)) in double, rounded to T (for
// x < −709 exp overflows to +Inf and the result is 0, never NaN).
template <typename T>
__device__ __forceinline__ T sigmoid(T x) {
	return (T)(1.0 / (1.0 + exp(-(double)x)));
}

// KERNEL_F32_F64(name, PARAMS, args) defines the extern "C" kernels
// name_f32 and name_f64, whose parameter lists are PARAMS(float) and
// PARAMS(double) (PARAMS is a function-like macro), and which call the
// device template name_impl<T> with args.
#define KERNEL_F32_F64(name, params, args)                                        \
	extern "C" __global__ void name##_f32 params(float) { name##_impl<float> args; } \
	extern "C" __global__ void name##_f64 params(double) { name##_impl<double> args; }
