/*
 * test_cuda_abi.c — scheduler/cuda.h mirrors the Driver API's ABI without including the
 * toolkit's cuda.h (fusor builds without CUDA); this test includes both, when the
 * toolkit is installed, and checks every value and layout fusor relies on.  Without the
 * toolkit it says so and passes.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "cuda.h"

#if defined(__has_include)
#if __has_include("/usr/local/cuda/include/cuda.h")
#define HAVE_CUDA_H 1
#include "/usr/local/cuda/include/cuda.h"
#endif
#endif

/* The two headers' enumerations are distinct types: compare their values as ints. */
#define SAME(a, b) CHECK((int)(a) == (int)(b))

int main(void) {
#ifdef HAVE_CUDA_H
    printf("checking against CUDA %d.%d's cuda.h\n", CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
    CHECK(sizeof(cudrv_ptr) == sizeof(CUdeviceptr));
    CHECK(sizeof(cudrv_result) == sizeof(CUresult) && sizeof(cudrv_device) == sizeof(CUdevice));
    CHECK(__builtin_types_compatible_p(cudrv_ptr, CUdeviceptr));
    /* results */
    SAME(CUDRV_SUCCESS, CUDA_SUCCESS);
    SAME(CUDRV_ERROR_INVALID_VALUE, CUDA_ERROR_INVALID_VALUE);
    SAME(CUDRV_ERROR_OUT_OF_MEMORY, CUDA_ERROR_OUT_OF_MEMORY);
    SAME(CUDRV_ERROR_NOT_INITIALIZED, CUDA_ERROR_NOT_INITIALIZED);
    SAME(CUDRV_ERROR_STUB_LIBRARY, CUDA_ERROR_STUB_LIBRARY);
    SAME(CUDRV_ERROR_NO_DEVICE, CUDA_ERROR_NO_DEVICE);
    SAME(CUDRV_ERROR_INVALID_DEVICE, CUDA_ERROR_INVALID_DEVICE);
    SAME(CUDRV_ERROR_INVALID_PTX, CUDA_ERROR_INVALID_PTX);
    SAME(CUDRV_ERROR_UNSUPPORTED_PTX_VERSION, CUDA_ERROR_UNSUPPORTED_PTX_VERSION);
    SAME(CUDRV_ERROR_NOT_FOUND, CUDA_ERROR_NOT_FOUND);
    SAME(CUDRV_ERROR_NOT_READY, CUDA_ERROR_NOT_READY);
    SAME(CUDRV_ERROR_LAUNCH_FAILED, CUDA_ERROR_LAUNCH_FAILED);
    SAME(CUDRV_ERROR_NOT_SUPPORTED, CUDA_ERROR_NOT_SUPPORTED);
    SAME(CUDRV_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN);
    /* device attributes */
    SAME(CUDRV_ATTR_MAX_THREADS_PER_BLOCK, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    SAME(CUDRV_ATTR_CLOCK_RATE, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
    SAME(CUDRV_ATTR_MULTIPROCESSOR_COUNT, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    SAME(CUDRV_ATTR_PCI_BUS_ID, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID);
    SAME(CUDRV_ATTR_MEMORY_CLOCK_RATE, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
    SAME(CUDRV_ATTR_GLOBAL_MEMORY_BUS_WIDTH, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
    SAME(CUDRV_ATTR_L2_CACHE_SIZE, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    SAME(CUDRV_ATTR_MAX_THREADS_PER_MULTIPROCESSOR,
         CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR);
    SAME(CUDRV_ATTR_ASYNC_ENGINE_COUNT, CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT);
    SAME(CUDRV_ATTR_UNIFIED_ADDRESSING, CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING);
    SAME(CUDRV_ATTR_COMPUTE_CAPABILITY_MAJOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    SAME(CUDRV_ATTR_COMPUTE_CAPABILITY_MINOR, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    SAME(CUDRV_ATTR_MANAGED_MEMORY, CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY);
    SAME(CUDRV_ATTR_MEMORY_POOLS_SUPPORTED, CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED);
    /* JIT options, pool attributes, flags */
    SAME(CUDRV_JIT_WALL_TIME, CU_JIT_WALL_TIME);
    SAME(CUDRV_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER);
    SAME(CUDRV_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES);
    SAME(CUDRV_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER);
    SAME(CUDRV_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES);
    SAME(CUDRV_JIT_LOG_VERBOSE, CU_JIT_LOG_VERBOSE);
    SAME(CUDRV_JIT_INPUT_PTX, CU_JIT_INPUT_PTX);
    SAME(CUDRV_STREAM_CAPTURE_MODE_THREAD_LOCAL, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL);
    SAME(CUDRV_POOL_ATTR_RELEASE_THRESHOLD, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD);
    SAME(CUDRV_POOL_ATTR_RESERVED_MEM_CURRENT, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT);
    SAME(CUDRV_POOL_ATTR_RESERVED_MEM_HIGH, CU_MEMPOOL_ATTR_RESERVED_MEM_HIGH);
    SAME(CUDRV_POOL_ATTR_USED_MEM_CURRENT, CU_MEMPOOL_ATTR_USED_MEM_CURRENT);
    SAME(CUDRV_POOL_ATTR_USED_MEM_HIGH, CU_MEMPOOL_ATTR_USED_MEM_HIGH);
    SAME(CUDRV_MEM_ALLOCATION_TYPE_PINNED, CU_MEM_ALLOCATION_TYPE_PINNED);
    SAME(CUDRV_MEM_LOCATION_TYPE_DEVICE, CU_MEM_LOCATION_TYPE_DEVICE);
    SAME(CUDRV_MEM_ATTACH_GLOBAL, CU_MEM_ATTACH_GLOBAL);
    SAME(CUDRV_EVENT_DISABLE_TIMING, CU_EVENT_DISABLE_TIMING);
    SAME(CUDRV_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK);
    SAME(CUDRV_FUNC_ATTRIBUTE_NUM_REGS, CU_FUNC_ATTRIBUTE_NUM_REGS);
    SAME(CUDRV_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_MEMORY_TYPE);
    SAME(CUDRV_POINTER_ATTRIBUTE_DEVICE_ORDINAL, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL);
    SAME(CUDRV_MEMORYTYPE_HOST, CU_MEMORYTYPE_HOST);
    SAME(CUDRV_MEMORYTYPE_DEVICE, CU_MEMORYTYPE_DEVICE);
    SAME(CUDRV_MEMORYTYPE_UNIFIED, CU_MEMORYTYPE_UNIFIED);
    /* CUmemPoolProps */
    CHECK(sizeof(cudrv_pool_props) == sizeof(CUmemPoolProps));
    CHECK(offsetof(cudrv_pool_props, alloc_type) == offsetof(CUmemPoolProps, allocType));
    CHECK(offsetof(cudrv_pool_props, handle_types) == offsetof(CUmemPoolProps, handleTypes));
    CHECK(offsetof(cudrv_pool_props, location) == offsetof(CUmemPoolProps, location));
    CHECK(offsetof(cudrv_pool_props, location.id) == offsetof(CUmemPoolProps, location.id));
    CHECK(offsetof(cudrv_pool_props, win32_security_attributes) ==
          offsetof(CUmemPoolProps, win32SecurityAttributes));
    CHECK(offsetof(cudrv_pool_props, max_size) == offsetof(CUmemPoolProps, maxSize));
    CHECK(offsetof(cudrv_pool_props, usage) == offsetof(CUmemPoolProps, usage));
    /* The versioned names the loader falls back to are the ones cuda.h selects. */
#define NAME_OF(x) #x
#define STR(x)     NAME_OF(x)
    CHECK(!strcmp(STR(cuMemAlloc), "cuMemAlloc_v2"));
    CHECK(!strcmp(STR(cuMemFree), "cuMemFree_v2"));
    CHECK(!strcmp(STR(cuMemAllocHost), "cuMemAllocHost_v2"));
    CHECK(!strcmp(STR(cuMemGetInfo), "cuMemGetInfo_v2"));
    CHECK(!strcmp(STR(cuDeviceTotalMem), "cuDeviceTotalMem_v2"));
    CHECK(!strcmp(STR(cuStreamDestroy), "cuStreamDestroy_v2"));
    CHECK(!strcmp(STR(cuEventDestroy), "cuEventDestroy_v2"));
    CHECK(!strcmp(STR(cuDevicePrimaryCtxRelease), "cuDevicePrimaryCtxRelease_v2"));
    CHECK(!strcmp(STR(cuMemcpyHtoDAsync), "cuMemcpyHtoDAsync_v2"));
    CHECK(!strcmp(STR(cuMemcpyDtoHAsync), "cuMemcpyDtoHAsync_v2"));
    CHECK(!strcmp(STR(cuMemcpyDtoDAsync), "cuMemcpyDtoDAsync_v2"));
    CHECK(!strcmp(STR(cuLinkCreate), "cuLinkCreate_v2"));
    CHECK(!strcmp(STR(cuLinkAddData), "cuLinkAddData_v2"));
    CHECK(!strcmp(STR(cuStreamBeginCapture), "cuStreamBeginCapture_v2"));
    CHECK(!strcmp(STR(cuGraphInstantiate), "cuGraphInstantiateWithFlags"));
#else
    printf("SKIP: the CUDA toolkit's cuda.h is not installed; nothing to compare\n");
#endif
    return check_done();
}
