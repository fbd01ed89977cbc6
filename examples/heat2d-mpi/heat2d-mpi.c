/*
 * heat2d-mpi.c — the plate of examples/heat2d.c split by rows across MPI ranks, fusor
 * computing each rank's part; checked at the end against one process doing the whole plate.
 *
 * The N-2 inner rows are dealt out to the ranks as evenly as possible (the first
 * (N-2) mod P ranks get one more).  A rank holds its own rows plus one row above and one
 * below: a copy of the neighbouring rank's edge row (a halo) or, on the first and last
 * rank, the plate's fixed top or bottom edge.  Each step runs heat2d.c's kernel, whose
 * input is `interior`, on the rank's block: it writes only the rank's own rows (and not
 * the fixed left and right columns).  Then two MPI_Sendrecv calls trade edge rows with
 * the neighbours.  The first and last rank trade with MPI_PROC_NULL on their outer side,
 * which MPI turns into nothing, so the plate's top and bottom edges are never written and
 * no rank needs code of its own.
 *
 * A rank runs on a GPU when fusor sees one (the GPU ordinal is the rank's number on its
 * node modulo the GPUs; the halo rows go through pinned host buffers), else on the CPU
 * with the node's cores shared among the ranks on it.  Rank 0 then gathers the plate,
 * computes it again alone, on the CPU, and compares: bit for bit when every rank ran on
 * the CPU, within a tolerance it prints when some rank ran on a GPU.  It prints the time
 * per step of both and exits non-zero on a mismatch.
 *
 *   mpirun -np P example_heat2d_mpi [N [steps [auto|cpu|gpu]]]
 *
 * auto (the default) takes a GPU where there is one and falls back to the CPU, saying why,
 * when the GPU cannot run the kernel; gpu insists (exit 77, skipped, without a GPU); cpu
 * never uses one.  Built when CMake finds MPI; CTest runs it on 2 and 3 ranks.
 */
#include <float.h>
#include <hwloc.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fusor.h"

static const char *source =
    "kernel heat_step(u: f64[n, m] interior, r: f64) -> (out: f64[]) {\n"
    "    out = u + r * (u[-1, 0] + u[1, 0] + u[0, -1] + u[0, 1] - 4.0 * u)\n"
    "}\n";

static int world_rank;

/* A failed call on one rank would leave the others waiting in MPI forever: stop them all. */
static void die(const char *what) {
    fprintf(stderr, "rank %d: %s failed: %s\n", world_rank, what, fusor_last_error());
    MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}
#define CHECK(call)                                                                                \
    do {                                                                                           \
        if ((call) != FUSOR_OK)                                                                    \
            die(#call);                                                                            \
    } while (0)
/* In set-up, where a GPU failure is a reason to fall back to the CPU rather than stop. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        fusor_status st_ = (call);                                                                 \
        if (st_ != FUSOR_OK)                                                                       \
            return st_;                                                                            \
    } while (0)

/* The initial plate of heat2d.c at row i, column j: 0 inside, the left edge at 100, the
 * other edges rising from 0 to 25 along them. */
static double initial(int i, int j, int n) {
    if (j == 0)
        return 100.0;
    if (i == 0 || i == n - 1 || j == n - 1)
        return 25.0 * j / (n - 1);
    return 0.0;
}

/* The inner rows [*first, *first + *rows) that rank r of p updates. */
static void split(int n, int p, int r, int *first, int *rows) {
    int inner = n - 2, base = inner / p, extra = inner % p;
    *rows = base + (r < extra);
    *first = 1 + r * base + (r < extra ? r : extra);
}

/* The rows a block trades: the halo above, its first and last own rows, the halo below. */
enum { HALO_UP, OWN_FIRST, OWN_LAST, HALO_DOWN, NEDGES };

/* One rank's block: global rows first-1 .. first+rows, in two buffers that ping-pong. */
typedef struct {
    int n, first, rows;
    int up, down;                 /* neighbour ranks, MPI_PROC_NULL at the plate's edges */
    int device;                   /* the GPU ordinal, or -1 on the CPU */
    double *host[2];              /* CPU: the buffers; GPU: NULL */
    double *start;                /* the initial block (GPU: copied in; then the result) */
    fusor_array *start_arr;       /* `start` wrapped */
    fusor_array *buf[2];          /* the buffers as arrays, in host or device memory */
    fusor_args *step[2];          /* step[b] reads buf[b] and writes buf[1 - b] */
    fusor_array *edge[2][NEDGES]; /* GPU: the traded rows of each buffer, as views */
    fusor_array *stage[NEDGES];   /* GPU: pinned host rows that MPI sends and receives */
    double exchange_s;            /* time spent trading rows */
} block;

static int64_t edge_row(const block *B, int e) {
    return e == HALO_UP ? 0 : e == OWN_FIRST ? 1 : e == OWN_LAST ? B->rows : B->rows + 1;
}

/* Where MPI reads or writes traded row e of buffer b. */
static double *mpi_row(block *B, int b, int e) {
    if (B->device < 0)
        return B->host[b] + edge_row(B, e) * B->n;
    return fusor_array_data(B->stage[e]);
}

static void fill_initial(double *u, const block *B) {
    for (int i = 0; i < B->rows + 2; i++)
        for (int j = 0; j < B->n; j++)
            u[(size_t)i * B->n + j] = initial(B->first - 1 + i, j, B->n);
}

/* Both buffers back to the initial block. */
static fusor_status block_reset(block *B) {
    if (B->device < 0) {
        fill_initial(B->host[0], B);
        fill_initial(B->host[1], B);
        return FUSOR_OK;
    }
    TRY(fusor_array_copy(B->buf[0], B->start_arr, NULL));
    return fusor_array_copy(B->buf[1], B->start_arr, NULL);
}

static void block_free(block *B) {
    for (int b = 0; b < 2; b++) {
        fusor_args_destroy(B->step[b]);
        fusor_array_destroy(B->buf[b]);
        free(B->host[b]);
        for (int e = 0; e < NEDGES; e++)
            fusor_array_destroy(B->edge[b][e]);
    }
    for (int e = 0; e < NEDGES; e++)
        fusor_array_destroy(B->stage[e]);
    fusor_array_destroy(B->start_arr);
    free(B->start);
    memset(B->step, 0, sizeof B->step), memset(B->buf, 0, sizeof B->buf);
    memset(B->host, 0, sizeof B->host), memset(B->edge, 0, sizeof B->edge);
    memset(B->stage, 0, sizeof B->stage);
    B->start_arr = NULL, B->start = NULL;
}

/* Makes the block's buffers (on GPU `device`, or on the CPU when it is -1), binds both
 * argument sets once, and runs one step so that the kernel is compiled (and, on a GPU,
 * loaded) before the clock starts.  After a failure the caller frees what was made
 * (block_free). */
static fusor_status block_setup(block *B, fusor_context *ctx, fusor_kernel *k, double r,
                                int device) {
    int64_t shape[2] = {B->rows + 2, B->n}, row = B->n;
    size_t cells = (size_t)shape[0] * B->n;
    B->device = device;
    B->start = malloc(cells * sizeof(double));
    if (!B->start)
        return FUSOR_ERROR_OUT_OF_MEMORY;
    fill_initial(B->start, B);
    TRY(fusor_array_wrap(ctx, B->start, FUSOR_F64, 2, shape, NULL, &B->start_arr));
    for (int b = 0; b < 2; b++) {
        if (device < 0) {
            if (!(B->host[b] = malloc(cells * sizeof(double))))
                return FUSOR_ERROR_OUT_OF_MEMORY;
            TRY(fusor_array_wrap(ctx, B->host[b], FUSOR_F64, 2, shape, NULL, &B->buf[b]));
            continue;
        }
        TRY(fusor_array_create_on(ctx, FUSOR_MEMORY_DEVICE, device, FUSOR_F64, 2, shape,
                                  &B->buf[b]));
        /* Views of the traded rows: a device array's data is its device address. */
        uint64_t base = (uint64_t)(uintptr_t)fusor_array_data(B->buf[b]);
        for (int e = 0; e < NEDGES; e++)
            TRY(fusor_array_wrap_device(ctx, base + (uint64_t)(edge_row(B, e) * row) * 8, device,
                                        FUSOR_F64, 1, &row, NULL, &B->edge[b][e]));
    }
    for (int e = 0; device >= 0 && e < NEDGES; e++)
        TRY(fusor_array_create_on(ctx, FUSOR_MEMORY_PINNED, 0, FUSOR_F64, 1, &row, &B->stage[e]));
    for (int b = 0; b < 2; b++) {
        TRY(fusor_args_create(k, &B->step[b]));
        TRY(fusor_args_set_array(B->step[b], "u", B->buf[b]));
        TRY(fusor_args_set_array(B->step[b], "out", B->buf[1 - b]));
        TRY(fusor_args_set_f64(B->step[b], "r", r));
    }
    TRY(block_reset(B));
    TRY(fusor_launch(k, B->step[0]));
    return block_reset(B);
}

/* After a step wrote buffer b: send the own edge rows to the neighbours and receive theirs
 * into the halo rows.  Rows go up first, then down; MPI_PROC_NULL makes the plate's
 * edges no-ops. */
static void exchange(block *B, int b) {
    double t0 = MPI_Wtime();
    int gpu = B->device >= 0;
    if (gpu && B->up != MPI_PROC_NULL)
        CHECK(fusor_array_copy(B->stage[OWN_FIRST], B->edge[b][OWN_FIRST], NULL));
    if (gpu && B->down != MPI_PROC_NULL)
        CHECK(fusor_array_copy(B->stage[OWN_LAST], B->edge[b][OWN_LAST], NULL));
    MPI_Sendrecv(mpi_row(B, b, OWN_FIRST), B->n, MPI_DOUBLE, B->up, 0, mpi_row(B, b, HALO_DOWN),
                 B->n, MPI_DOUBLE, B->down, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Sendrecv(mpi_row(B, b, OWN_LAST), B->n, MPI_DOUBLE, B->down, 1, mpi_row(B, b, HALO_UP),
                 B->n, MPI_DOUBLE, B->up, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (gpu && B->up != MPI_PROC_NULL)
        CHECK(fusor_array_copy(B->edge[b][HALO_UP], B->stage[HALO_UP], NULL));
    if (gpu && B->down != MPI_PROC_NULL)
        CHECK(fusor_array_copy(B->edge[b][HALO_DOWN], B->stage[HALO_DOWN], NULL));
    B->exchange_s += MPI_Wtime() - t0;
}

/* The ranks on this node: Open MPI says so in the environment; other MPIs are asked. */
static void node_ranks(int *local_rank, int *local_size) {
    const char *r = getenv("OMPI_COMM_WORLD_LOCAL_RANK"), *s = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (r && s && atoi(s) > 0) {
        *local_rank = atoi(r), *local_size = atoi(s);
        return;
    }
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
}

/* CPU threads per rank: the node's cores shared among its ranks, and no more than the
 * cores this rank may run on (fusor's default follows the affinity mask mpirun set, e.g.
 * with --map-by slot:PE=4 --bind-to core).  FUSOR_NUM_THREADS overrides both. */
static int threads_per_rank(int local_size, int *node_cores) {
    int cores = 0;
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) == 0) {
        if (hwloc_topology_load(topo) == 0)
            cores = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
        hwloc_topology_destroy(topo);
    }
    if (cores < 1)
        cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    *node_cores = cores;
    int mine = fusor_default_num_threads(), t = cores / local_size;
    if (getenv("FUSOR_NUM_THREADS") || t > mine)
        t = mine;
    return t < 1 ? 1 : t;
}

/* The whole plate on this process alone, on the CPU: the reference.  Returns the final
 * plate (malloc'd), the seconds the steps took and the threads they used. */
static double *serial_run(fusor_context *ctx, fusor_kernel *k, int n, int steps, double r,
                          double *seconds, int *threads) {
    block W = {.n = n, .first = 1, .rows = n - 2, .up = MPI_PROC_NULL, .down = MPI_PROC_NULL};
    CHECK(fusor_context_set_target(ctx, FUSOR_TARGET_CPU));
    CHECK(block_setup(&W, ctx, k, r, -1));
    double t0 = MPI_Wtime();
    for (int s = 0; s < steps; s++)
        CHECK(fusor_launch(k, W.step[s % 2]));
    *seconds = MPI_Wtime() - t0;
    *threads = fusor_args_last_threads(W.step[0]);
    double *result = W.host[steps % 2];
    W.host[steps % 2] = NULL;
    block_free(&W);
    return result;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int ranks;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &ranks);
    int n = argc > 1 ? atoi(argv[1]) : 512, steps = argc > 2 ? atoi(argv[2]) : 200;
    const char *mode = argc > 3 ? argv[3] : "auto";
    int want_gpu = !strcmp(mode, "gpu"), no_gpu = !strcmp(mode, "cpu");
    if (n < 3 || steps < 1 || ranks > n - 2 || (!want_gpu && !no_gpu && strcmp(mode, "auto"))) {
        if (world_rank == 0)
            fprintf(stderr, "usage: mpirun -np P %s [N >= P + 2 [steps >= 1 [auto|cpu|gpu]]]\n",
                    argv[0]);
        MPI_Finalize();
        return 2;
    }
    const double r = 0.2; /* alpha * dt / dx^2, below the stability limit 0.25 */
    int local_rank, local_size, node_cores;
    node_ranks(&local_rank, &local_size);
    int gpus = no_gpu ? 0 : fusor_gpu_count();
    if (want_gpu && gpus == 0) {
        if (world_rank == 0)
            printf("SKIP: no usable GPU: %s\n",
                   fusor_gpu_status() == FUSOR_OK ? "none" : fusor_last_error());
        MPI_Finalize();
        return 77;
    }
    int threads = threads_per_rank(local_size, &node_cores);
    CHECK(fusor_set_num_threads(threads));

    /* This rank's block: its neighbours are the ranks before and after it. */
    block B = {.n = n,
               .device = -1,
               .up = world_rank > 0 ? world_rank - 1 : MPI_PROC_NULL,
               .down = world_rank < ranks - 1 ? world_rank + 1 : MPI_PROC_NULL};
    split(n, ranks, world_rank, &B.first, &B.rows);
    fusor_context *ctx;
    fusor_kernel *k;
    fusor_context_options opt = {.target = gpus > 0 ? FUSOR_TARGET_AUTO : FUSOR_TARGET_CPU};
    CHECK(fusor_context_create(&opt, &ctx));
    CHECK(fusor_kernel_compile(ctx, source, "heat2d.fu", NULL, &k));
    char where[384], note[256] = "";
    if (gpus > 0) {
        /* Device arrays: fusor's placement runs the kernel where they live. */
        int device = local_rank % gpus;
        fusor_status st = block_setup(&B, ctx, k, r, device);
        if (st != FUSOR_OK) {
            if (want_gpu)
                die("the kernel on the GPU");
            snprintf(note, sizeof note, " (GPU %d refused it: %.220s)", device, fusor_last_error());
            block_free(&B);
            CHECK(fusor_context_set_target(ctx, FUSOR_TARGET_CPU));
        }
    }
    if (!B.buf[0])
        CHECK(block_setup(&B, ctx, k, r, -1));
    fusor_placement pl;
    CHECK(fusor_args_last_placement(B.step[0], &pl));
    int used = fusor_args_last_threads(B.step[0]);
    if (pl.target == FUSOR_TARGET_GPU)
        snprintf(where, sizeof where, "GPU %d (%.100s)", pl.device, pl.reason);
    else
        snprintf(where, sizeof where, "CPU, %d thread%s%s", used, used == 1 ? "" : "s", note);
    int on_gpu = pl.target == FUSOR_TARGET_GPU, any_gpu;
    MPI_Allreduce(&on_gpu, &any_gpu, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);

    /* The time loop: a step on this block, then the halo trade, every step. */
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int s = 0; s < steps; s++) {
        CHECK(fusor_launch(k, B.step[s % 2]));
        exchange(&B, 1 - s % 2);
    }
    double mine[2] = {MPI_Wtime() - t0, B.exchange_s}, slowest[2];
    MPI_Reduce(mine, slowest, 2, MPI_DOUBLE, MPI_MAX, 0, MPI_COMM_WORLD);

    /* Gather the plate on rank 0: each rank sends its own rows, the first and the last
     * also the plate's fixed edge they hold, so that the edges are checked too. */
    int last = steps % 2, lo = world_rank == 0 ? 0 : 1;
    int hi = world_rank == ranks - 1 ? B.rows + 2 : B.rows + 1;
    const double *mine_rows;
    if (B.device >= 0) {
        CHECK(fusor_array_copy(B.start_arr, B.buf[last], NULL));
        mine_rows = B.start + (size_t)lo * n;
    } else {
        mine_rows = B.host[last] + (size_t)lo * n;
    }
    int *counts = NULL, *displs = NULL;
    double *plate = NULL;
    char *wheres = NULL;
    if (world_rank == 0) {
        counts = malloc((size_t)ranks * sizeof *counts);
        displs = malloc((size_t)ranks * sizeof *displs);
        plate = malloc((size_t)n * n * sizeof *plate);
        wheres = malloc((size_t)ranks * sizeof where);
        if (!counts || !displs || !plate || !wheres)
            MPI_Abort(MPI_COMM_WORLD, 1);
        for (int q = 0; q < ranks; q++) {
            int first, rows;
            split(n, ranks, q, &first, &rows);
            int qlo = q == 0 ? 0 : 1, qhi = q == ranks - 1 ? rows + 2 : rows + 1;
            counts[q] = (qhi - qlo) * n;
            displs[q] = (first - 1 + qlo) * n;
        }
    }
    MPI_Gatherv(mine_rows, (hi - lo) * n, MPI_DOUBLE, plate, counts, displs, MPI_DOUBLE, 0,
                MPI_COMM_WORLD);
    MPI_Gather(where, sizeof where, MPI_CHAR, wheres, sizeof where, MPI_CHAR, 0, MPI_COMM_WORLD);

    /* Rank 0 computes the whole plate alone and compares. */
    int ok = 1;
    if (world_rank == 0) {
        double serial_s;
        int serial_threads;
        double *ref = serial_run(ctx, k, n, steps, r, &serial_s, &serial_threads);
        /* On a GPU the compiler may fuse multiply-adds the CPU code rounds separately.  Each
         * step mixes neighbours with weights 0.2 (r) and 0.2 (1 - 4r), so it does not
         * amplify earlier differences: a few ulps of the hottest value per step bound
         * them. */
        double tol = any_gpu ? steps * 4 * DBL_EPSILON * 100.0 : 0.0, maxdiff = 0.0;
        size_t cells = (size_t)n * n, differ = 0;
        for (size_t c = 0; c < cells; c++) {
            double d = fabs(plate[c] - ref[c]);
            differ += memcmp(&plate[c], &ref[c], sizeof(double)) != 0;
            if (d > maxdiff || d != d)
                maxdiff = d;
        }
        ok = any_gpu ? maxdiff <= tol : differ == 0;
        int fewest, most, first;
        split(n, ranks, ranks - 1, &first, &fewest);
        split(n, ranks, 0, &first, &most);
        printf("heat2d-mpi %dx%d, %d steps on %d ranks (%d..%d rows each); %d cores and %d "
               "rank%s on this node\n",
               n, n, steps, ranks, fewest, most, node_cores, local_size,
               local_size == 1 ? "" : "s");
        for (int q = 0; q < ranks && q < 16; q++)
            printf("  rank %d: %s\n", q, wheres + (size_t)q * sizeof where);
        char label[64];
        snprintf(label, sizeof label, "%d ranks:", ranks);
        printf("  %-30s%8.1f us/step (the slowest rank; %.1f of it in the halo trade, waits "
               "included)\n",
               label, 1e6 * slowest[0] / steps, 1e6 * slowest[1] / steps);
        snprintf(label, sizeof label, "rank 0 alone (CPU, %d thread%s):", serial_threads,
                 serial_threads == 1 ? "" : "s");
        printf("  %-30s%8.1f us/step\n", label, 1e6 * serial_s / steps);
        if (any_gpu)
            printf("  max |difference| %.3g (tolerance %.3g), %zu of %zu values differ bitwise: "
                   "%s\n",
                   maxdiff, tol, differ, cells, ok ? "OK" : "MISMATCH");
        else
            printf("  max |difference| %.3g, %zu of %zu values differ bitwise: %s\n", maxdiff,
                   differ, cells, ok ? "OK" : "MISMATCH");
        free(ref), free(plate), free(counts), free(displs), free(wheres);
    }
    MPI_Bcast(&ok, 1, MPI_INT, 0, MPI_COMM_WORLD);

    block_free(&B);
    fusor_kernel_destroy(k);
    fusor_context_destroy(ctx);
    MPI_Finalize();
    return ok ? 0 : 1;
}
