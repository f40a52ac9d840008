// CDNNL: the oneDNN 2.6 C API (Debian libdnnl-dev) for Swift.
// Swift-visible forms of the C macros that do not import; no logic beyond that.
#ifndef CDNNL_SHIM_H
#define CDNNL_SHIM_H

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <dlfcn.h>

/// DNNL_RUNTIME_F32_VAL: a scale whose value is given at execution time.
static inline float cdnnl_runtime_f32_val(void) { return DNNL_RUNTIME_F32_VAL; }
/// DNNL_RUNTIME_S32_VAL: a zero point whose value is given at execution time.
static inline int32_t cdnnl_runtime_s32_val(void) { return DNNL_RUNTIME_S32_VAL; }
/// DNNL_RUNTIME_DIM_VAL: a dimension known only at execution time.
static inline dnnl_dim_t cdnnl_runtime_dim_val(void) { return DNNL_RUNTIME_DIM_VAL; }
/// DNNL_MEMORY_ALLOCATE: ask dnnl_memory_create to allocate the buffer.
static inline void *cdnnl_memory_allocate(void) { return DNNL_MEMORY_ALLOCATE; }
/// DNNL_MEMORY_NONE: a memory object without a buffer.
static inline void *cdnnl_memory_none(void) { return DNNL_MEMORY_NONE; }
/// DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx): execution argument of the idx-th post-op.
static inline int cdnnl_arg_attr_multiple_post_op(int idx) {
    return DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx);
}

// Debian's oneDNN runs on OpenMP (libgomp), loaded with libdnnl. oneDNN 2.6 has no thread
// API of its own, so the OpenMP calls are looked up at run time: the package then needs no
// link flag for libgomp, whose development symlink lives in a compiler-private folder.

/// omp_set_num_threads on the calling thread; returns 0, or -1 when OpenMP is not loaded.
static inline int cdnnl_set_num_threads(int n) {
    void (*f)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "omp_set_num_threads");
    if (!f) return -1;
    f(n);
    return 0;
}
/// omp_get_max_threads on the calling thread; -1 when OpenMP is not loaded.
static inline int cdnnl_get_max_threads(void) {
    int (*f)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "omp_get_max_threads");
    return f ? f() : -1;
}

#endif
