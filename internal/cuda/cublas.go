//go:build foldkit_cuda && !foldkit_cudaemu

package cuda

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdlib.h>

// The cuBLAS entry points foldkit uses, declared by hand (with the ABI of
// cublas_api.h in CUDA 11, 12 and 13) so that nothing links against cuBLAS:
// the library is opened at run time with dlopen.
typedef int (*fk_create_t)(void **handle);
typedef int (*fk_destroy_t)(void *handle);
typedef int (*fk_set_stream_t)(void *handle, void *stream);
typedef int (*fk_get_version_t)(void *handle, int *version);
typedef int (*fk_sgemm_sb_t)(void *h, int ta, int tb, int m, int n, int k,
	const float *alpha, const float *a, int lda, long long sa,
	const float *b, int ldb, long long sb,
	const float *beta, float *c, int ldc, long long sc, int batch);
typedef int (*fk_dgemm_sb_t)(void *h, int ta, int tb, int m, int n, int k,
	const double *alpha, const double *a, int lda, long long sa,
	const double *b, int ldb, long long sb,
	const double *beta, double *c, int ldc, long long sc, int batch);
typedef int (*fk_gemm_ex_sb_t)(void *h, int ta, int tb, int m, int n, int k,
	const void *alpha, const void *a, int atype, int lda, long long sa,
	const void *b, int btype, int ldb, long long sb,
	const void *beta, void *c, int ctype, int ldc, long long sc, int batch,
	int compute, int algo);

typedef struct {
	void *lib;
	fk_create_t create;
	fk_destroy_t destroy;
	fk_set_stream_t set_stream;
	fk_get_version_t get_version;
	fk_sgemm_sb_t sgemm_sb;
	fk_dgemm_sb_t dgemm_sb;
	fk_gemm_ex_sb_t gemm_ex_sb;
} fk_cublas;

// fk_cublas_open dlopens name and resolves the entry points. It returns 0,
// or 1 if the library cannot be opened, or 2 + the index of the first
// missing symbol (*missing names it).
static int fk_cublas_open(fk_cublas *t, const char *name, const char **missing) {
	// The exported names, and the names without _v2 that a future cuBLAS
	// may export instead.
	static const char *syms[7][2] = {
		{"cublasCreate_v2", "cublasCreate"},
		{"cublasDestroy_v2", "cublasDestroy"},
		{"cublasSetStream_v2", "cublasSetStream"},
		{"cublasGetVersion_v2", "cublasGetVersion"},
		{"cublasSgemmStridedBatched", "cublasSgemmStridedBatched"},
		{"cublasDgemmStridedBatched", "cublasDgemmStridedBatched"},
		{"cublasGemmStridedBatchedEx", "cublasGemmStridedBatchedEx"},
	};
	void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		return 1;
	}
	void *f[7];
	for (int i = 0; i < 7; i++) {
		f[i] = dlsym(lib, syms[i][0]);
		if (f[i] == NULL) {
			f[i] = dlsym(lib, syms[i][1]);
		}
		if (f[i] == NULL) {
			*missing = syms[i][0];
			dlclose(lib);
			return 2 + i;
		}
	}
	t->lib = lib;
	t->create = (fk_create_t)f[0];
	t->destroy = (fk_destroy_t)f[1];
	t->set_stream = (fk_set_stream_t)f[2];
	t->get_version = (fk_get_version_t)f[3];
	t->sgemm_sb = (fk_sgemm_sb_t)f[4];
	t->dgemm_sb = (fk_dgemm_sb_t)f[5];
	t->gemm_ex_sb = (fk_gemm_ex_sb_t)f[6];
	return 0;
}

static const char *fk_dlerror(void) {
	const char *e = dlerror();
	return e ? e : "unknown dlopen error";
}

static void fk_cublas_close(fk_cublas *t) {
	if (t->lib) {
		dlclose(t->lib);
		t->lib = NULL;
	}
}

static int fk_create(fk_cublas *t, void **h) { return t->create(h); }
static int fk_destroy(fk_cublas *t, void *h) { return t->destroy(h); }
static int fk_set_stream(fk_cublas *t, void *h, void *s) { return t->set_stream(h, s); }
static int fk_get_version(fk_cublas *t, void *h, int *v) { return t->get_version(h, v); }

static int fk_sgemm_sb(fk_cublas *t, void *h, int ta, int tb, int m, int n, int k,
		float alpha, unsigned long long a, int lda, long long sa,
		unsigned long long b, int ldb, long long sb,
		float beta, unsigned long long c, int ldc, long long sc, int batch) {
	return t->sgemm_sb(h, ta, tb, m, n, k, &alpha, (const float *)a, lda, sa,
		(const float *)b, ldb, sb, &beta, (float *)c, ldc, sc, batch);
}

static int fk_dgemm_sb(fk_cublas *t, void *h, int ta, int tb, int m, int n, int k,
		double alpha, unsigned long long a, int lda, long long sa,
		unsigned long long b, int ldb, long long sb,
		double beta, unsigned long long c, int ldc, long long sc, int batch) {
	return t->dgemm_sb(h, ta, tb, m, n, k, &alpha, (const double *)a, lda, sa,
		(const double *)b, ldb, sb, &beta, (double *)c, ldc, sc, batch);
}

// fk_sgemm_ex_sb is a float32 strided batched product through
// cublasGemmStridedBatchedEx with the given compute type (CUDA_R_32F data).
static int fk_sgemm_ex_sb(fk_cublas *t, void *h, int ta, int tb, int m, int n, int k,
		float alpha, unsigned long long a, int lda, long long sa,
		unsigned long long b, int ldb, long long sb,
		float beta, unsigned long long c, int ldc, long long sc, int batch, int compute) {
	const int r32f = 0;         // CUDA_R_32F
	const int algo_default = -1; // CUBLAS_GEMM_DEFAULT
	return t->gemm_ex_sb(h, ta, tb, m, n, k, &alpha, (const void *)a, r32f, lda, sa,
		(const void *)b, r32f, ldb, sb, &beta, (void *)c, r32f, ldc, sc, batch,
		compute, algo_default);
}
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gorgonia.org/cu"
)

// cublas is a cuBLAS library opened at run time and a handle bound to the
// Device's stream.
type cublas struct {
	t       C.fk_cublas
	h       unsafe.Pointer
	name    string
	version int
}

// openCUBLAS loads cuBLAS (name, or the first of cublasNames that opens),
// creates a handle and binds it to stream. The context is current.
func openCUBLAS(name string, stream cu.Stream) (*cublas, error) {
	names := cublasNames
	if name != "" {
		names = []string{name}
	}
	b := &cublas{}
	var tried []string
	for _, n := range names {
		cn := C.CString(n)
		var missing *C.char
		rc := C.fk_cublas_open(&b.t, cn, &missing)
		C.free(unsafe.Pointer(cn))
		switch {
		case rc == 0:
			b.name = n
		case rc == 1:
			tried = append(tried, C.GoString(C.fk_dlerror()))
			continue
		default:
			tried = append(tried, fmt.Sprintf("%s lacks %s", n, C.GoString(missing)))
			continue
		}
		break
	}
	if b.name == "" {
		return nil, &Error{Call: "dlopen(libcublas)", Err: fmt.Errorf("%w (set LD_LIBRARY_PATH or Options.CUBLAS): %v", ErrNoCUBLAS, tried)}
	}
	if err := blasErr(int(C.fk_create(&b.t, &b.h))); err != nil {
		C.fk_cublas_close(&b.t)
		return nil, callErr("cublasCreate ("+b.name+")", err)
	}
	if err := blasErr(int(C.fk_set_stream(&b.t, b.h, unsafe.Pointer(stream.C())))); err != nil {
		b.close()
		return nil, callErr("cublasSetStream", err)
	}
	var v C.int
	if err := blasErr(int(C.fk_get_version(&b.t, b.h, &v))); err != nil {
		b.close()
		return nil, callErr("cublasGetVersion", err)
	}
	b.version = int(v)
	return b, nil
}

// close destroys the handle and closes the library.
func (b *cublas) close() {
	if b.h != nil {
		C.fk_destroy(&b.t, b.h)
		b.h = nil
	}
	C.fk_cublas_close(&b.t)
}

// cublasComputeType maps m to cublasComputeType_t.
func (m Math) cublasComputeType() C.int {
	switch m {
	case MathTF32:
		return 77 // CUBLAS_COMPUTE_32F_FAST_TF32
	case MathBF16:
		return 75 // CUBLAS_COMPUTE_32F_FAST_16BF
	}
	return 68 // CUBLAS_COMPUTE_32F
}

// gemmStridedBatched queues the column-major product
// C_i = alpha·op(A_i)·op(B_i) + beta·C_i, i < batch, on the Device's stream.
// The context is current and d.mu held.
func gemmStridedBatched[T interface{ ~float32 | ~float64 }](b *cublas, math Math, ta, tb bool, m, n, k int, alpha T, a cu.DevicePtr, lda int, sa int64, bp cu.DevicePtr, ldb int, sb int64, beta T, c cu.DevicePtr, ldc int, sc int64, batch int) error {
	if !dimOK(m, n, k, lda, ldb, ldc, batch) {
		return &Error{Call: "cublasGemmStridedBatched", Err: errGemmDims}
	}
	op := func(t bool) C.int {
		if t {
			return 1 // CUBLAS_OP_T
		}
		return 0 // CUBLAS_OP_N
	}
	var z T
	var rc C.int
	var call string
	if unsafe.Sizeof(z) == 4 {
		if math == MathFP32 {
			call = "cublasSgemmStridedBatched"
			rc = C.fk_sgemm_sb(&b.t, b.h, op(ta), op(tb), C.int(m), C.int(n), C.int(k),
				C.float(alpha), C.ulonglong(a), C.int(lda), C.longlong(sa),
				C.ulonglong(bp), C.int(ldb), C.longlong(sb),
				C.float(beta), C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch))
		} else {
			call = "cublasGemmStridedBatchedEx[" + math.String() + "]"
			rc = C.fk_sgemm_ex_sb(&b.t, b.h, op(ta), op(tb), C.int(m), C.int(n), C.int(k),
				C.float(alpha), C.ulonglong(a), C.int(lda), C.longlong(sa),
				C.ulonglong(bp), C.int(ldb), C.longlong(sb),
				C.float(beta), C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch),
				math.cublasComputeType())
		}
	} else {
		call = "cublasDgemmStridedBatched"
		rc = C.fk_dgemm_sb(&b.t, b.h, op(ta), op(tb), C.int(m), C.int(n), C.int(k),
			C.double(alpha), C.ulonglong(a), C.int(lda), C.longlong(sa),
			C.ulonglong(bp), C.int(ldb), C.longlong(sb),
			C.double(beta), C.ulonglong(c), C.int(ldc), C.longlong(sc), C.int(batch))
	}
	return callErr(fmt.Sprintf("%s(ta=%v tb=%v m=%d n=%d k=%d lda=%d ldb=%d ldc=%d batch=%d)", call, ta, tb, m, n, k, lda, ldb, ldc, batch), blasErr(int(rc)))
}
