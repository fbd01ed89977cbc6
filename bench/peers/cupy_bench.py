"""CuPy's fused kernels beside fusor's GPU benchmarks (tests/gpu/bench_gpu.c).

Run by scripts/device-run.sh on a GPU machine where CuPy is installed: the same cases and
element count as bench_gpu (device arrays), each timed with CUDA events, best of 10 after
a warm-up that compiles.  GB/s counts bytes read plus written, as bench_gpu does.  Prints a
markdown table; not part of the test suite.

    python3 cupy_bench.py [ELEMENTS]
"""
import sys

import cupy as cp

N = int(float(sys.argv[1])) if len(sys.argv) > 1 else 100_000_000
REPEAT = 10


def best_ms(fn):
    fn()  # compile and warm up
    cp.cuda.Device().synchronize()
    best = float("inf")
    start, end = cp.cuda.Event(), cp.cuda.Event()
    for _ in range(REPEAT):
        start.record()
        fn()
        end.record()
        end.synchronize()
        best = min(best, cp.cuda.get_elapsed_time(start, end))
    return best


axpy = cp.ElementwiseKernel("T a, T x, T y", "T z", "z = a * x + y", "fusor_axpy")


@cp.fuse()
def sin_y_a(x, y, a):
    return cp.sin(x) * y + a


def main():
    rows = []
    for dt, name in ((cp.float32, "f32"), (cp.float64, "f64")):
        x = cp.arange(N, dtype=dt) % 1000 * dt(1e-3) + dt(1)
        y = cp.arange(N, dtype=dt) % 1000 * dt(1e-3) + dt(2)
        z = cp.empty_like(x)
        a = dt(0.5)
        ms = best_ms(lambda: axpy(a, x, y, z))
        rows.append((f"axpy {name} (ElementwiseKernel)", 3 * x.itemsize * N, ms))
        if dt == cp.float64:
            ms = best_ms(lambda: cp.sum(x))
            rows.append(("sum f64 (cupy.sum)", x.itemsize * N, ms))
        if dt == cp.float32:
            def fused():
                zz = sin_y_a(x, y, a)
                return cp.max(zz.astype(cp.float64))
            ms = best_ms(fused)
            rows.append(("sin*y+a, max f32 (cupy.fuse + max)", 3 * x.itemsize * N, ms))
        del x, y, z
        cp.get_default_memory_pool().free_all_blocks()
    dev = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    print(f"\nCuPy {cp.__version__} on {dev}, {N} elements per array, best of {REPEAT}\n")
    print("| case (CuPy) | MB moved | ms (best) | GB/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, nbytes, ms in rows:
        print(f"| {name} | {nbytes / 1e6:.1f} | {ms:.3f} | {nbytes / ms / 1e6:.1f} |")


if __name__ == "__main__":
    main()
