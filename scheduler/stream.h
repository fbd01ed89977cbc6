/*
 * stream.h — fusor streams and events (the public fusor_stream / fusor_event), and what
 * the GPU launcher needs of them.
 *
 * A stream is an in-order queue run by one worker thread of its own, started on first
 * use.  Host work (a CPU launch, a host call, a host-to-host copy) runs on that thread;
 * GPU work issued from it goes to the stream's CUDA stream, so the worker moves on as
 * soon as the work is queued on the device.  Before host work that follows GPU work the
 * worker synchronises the CUDA stream: the queue is in order whichever side runs each
 * item.
 *
 * An event records (stream, sequence number) — reached when the worker has passed that
 * item — plus, when GPU work was pending at that point, a CUDA event recorded there.
 * Waiting for an event from another stream is a queue item that blocks that stream's
 * worker until the host part is reached and then makes its CUDA stream wait for the
 * CUDA event (cuStreamWaitEvent), so GPU-to-GPU dependencies never stall the host.
 */
#ifndef FUSOR_SCHED_STREAM_H
#define FUSOR_SCHED_STREAM_H

#include "cuda.h"
#include "fusor.h"

/* The stream whose worker is running the calling thread's current item, or NULL. */
fusor_stream *sched_stream_current(void);
/* Queues run(s, arg) on s like a launch (skipped while an error is pending); drop(arg),
 * if given, runs after it, or at once when queuing fails. */
fusor_status sched_stream_enqueue(fusor_stream *s, fusor_status (*run)(fusor_stream *, void *),
                                  void (*drop)(void *), void *arg);
/* The stream's CUDA stream on `device` (created on first use; a stream that moves to
 * another device synchronises and replaces it).  Call from the stream's worker. */
fusor_status sched_stream_cu(fusor_stream *s, int device, cudrv_stream *out);
/* Marks GPU work queued on the stream's CUDA stream: host items after it wait for it. */
void sched_stream_gpu_issued(fusor_stream *s);
/* Waits for GPU work queued so far, if any (before host work), then runs the functions
 * queued by sched_stream_after_gpu.  From the worker. */
fusor_status sched_stream_host_barrier(fusor_stream *s);
/* Queues fn(arg, ok) to run on the worker at the next host barrier, after the GPU work
 * queued so far (ok: it succeeded), in the order queued: how a queued launch hands over
 * values it copies back asynchronously (scalar outputs) without waiting for them.  The
 * barrier comes before host work, at a synchronisation, before an event is recorded and
 * when the stream is destroyed.  From the worker; `note` is the caller's storage (it must
 * live until fn runs). */
typedef struct sched_after_gpu {
    void (*fn)(void *arg, int ok);
    void *arg;
    struct sched_after_gpu *next;
} sched_after_gpu;
void sched_stream_after_gpu(fusor_stream *s, sched_after_gpu *note);

/* A CUDA stream for one synchronous launch on `device` (from a small per-device pool);
 * give it back, synchronised, with sched_sync_stream_put. */
fusor_status sched_sync_stream_get(int device, cudrv_stream *out);
void sched_sync_stream_put(int device, cudrv_stream s);
/* The same for a stream this thread has just synchronised without error, with the
 * device's context current: no second synchronisation, no context switch. */
void sched_sync_stream_put_synced(int device, cudrv_stream s);
/* Called on driver reload: destroys pooled synchronous streams. */
void sched_sync_streams_forget(void);

/* A device buffer of at least `bytes` that belongs to the CUDA stream `s` of `device`, for
 * a launch's parameter blocks, slots, scalar outputs and partials.  Only work on `s` may
 * use it, from the one thread that issues to `s` (a pooled stream's borrower, a fusor
 * stream's worker): launches on one stream run in order, so each overwrites the last
 * one's (its copy in is ordered after the kernels before it) and a launch costs no
 * allocation.  It grows (after synchronising `s`) and lives until `s` is destroyed; plain
 * driver memory, not the pool's, so pool statistics stay those of arrays and temporaries. */
typedef struct sched_scratch sched_scratch;
fusor_status sched_stream_scratch(int device, cudrv_stream s, size_t bytes, sched_scratch **out);
cudrv_ptr sched_scratch_ptr(const sched_scratch *e);
/* Copies `image` (len bytes) to the start of the buffer on its stream, unless the same
 * image is there already (kernels write that part only where every launch writes before it
 * reads, the reductions' slots, or where they put back what they found, the tickets). */
fusor_status sched_scratch_upload(sched_scratch *e, const void *image, size_t len);
/* Page-locked host memory for the scalar outputs of launches on the buffer's stream, one
 * block per key (a queued launch's argument set; NULL for synchronous launches), found
 * by the one thread that issues to the stream.  The kernels write the outputs straight
 * into it (the device reaches it at the same address under unified addressing): no copy
 * back on the stream, and since a key always gets the same block, a repeated launch's
 * parameter image does not change.  Read it once the stream has passed the launch.
 * `pending`, `note`, `args` and `ir` are the launcher's (a queued launch's hand-over at
 * the stream's next host barrier, sched_after_gpu above).  FUSOR_ERROR_UNSUPPORTED when
 * every slot is taken by other keys, or the key's block must grow while its hand-over is
 * pending: then copy back instead.  Plain driver memory, outside the pinned pool's
 * statistics; freed with the stream. */
typedef struct sched_outs_slot {
    const void *key;
    void *host;
    size_t bytes;
    int pending;
    sched_after_gpu note;
    void *args;
    const void *ir;
} sched_outs_slot;
fusor_status sched_scratch_outs(sched_scratch *e, const void *key, size_t bytes,
                                sched_outs_slot **out);

/* The context's default stream, made on first use (or NULL when it has none yet:
 * `create` 0). */
fusor_status sched_context_stream(fusor_context *c, int create, fusor_stream **out);
/* Frees the context's default stream (context destruction). */
void sched_context_stream_free(fusor_stream *s);

#endif
