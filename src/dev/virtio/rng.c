/* virtio-rng: requests are served at once on the notifying hart's thread (getrandom on a
 * booted host does not block); each chain gets at most RNG_MAX_CHUNK bytes. */
#include "dev/virtio/rng.h"
#include "util/log.h"
#include "util/ratelimit.h"
#include <pthread.h>
#include <stdlib.h>
#include <sys/random.h>

#define RNG_MAX_CHUNK 4096

struct vrng {
    struct virtio_mmio *t;
    pthread_mutex_t lock;
    bool running;
    struct vq_chain chain;
    uint64_t requests, bytes, bad_requests; /* under lock; logged at destroy (debug) */
};

static void rng_notify(void *dev, unsigned qi)
{
    struct vrng *r = dev;
    bool notify = false, broken = false;
    pthread_mutex_lock(&r->lock);
    struct vq *q = virtio_mmio_queue(r->t, qi);
    while (r->running && q && !q->broken) {
        int n = vq_pop_or_arm(q, &r->chain);
        if (n == 0) break;
        if (n < 0) {
            broken = true;
            r->bad_requests++;
            break;
        }
        uint32_t done = 0;
        for (unsigned s = r->chain.nread; s < r->chain.nseg && done < RNG_MAX_CHUNK; s++) {
            struct vq_seg *sg = &r->chain.seg[s];
            size_t want = sg->len < RNG_MAX_CHUNK - done ? sg->len : RNG_MAX_CHUNK - done;
            ssize_t got = getrandom(sg->ptr, want, GRND_NONBLOCK);
            if (got <= 0) break;
            done += (uint32_t)got;
            if ((size_t)got < want) break;
        }
        vq_push(q, r->chain.head, done);
        r->requests++;
        r->bytes += done;
        notify |= vq_should_notify(q);
    }
    pthread_mutex_unlock(&r->lock);
    if (broken) {
        log_warn_ratelimited("virtio-rng: malformed request from the guest; device needs reset");
        virtio_mmio_set_needs_reset(r->t);
    }
    if (notify) virtio_mmio_interrupt(r->t, VIRTIO_INT_USED);
}

static void rng_start(void *dev, uint64_t features)
{
    struct vrng *r = dev;
    (void)features;
    pthread_mutex_lock(&r->lock);
    r->running = true;
    pthread_mutex_unlock(&r->lock);
}

static bool rng_reset(void *dev)
{
    struct vrng *r = dev;
    pthread_mutex_lock(&r->lock);
    r->running = false;
    pthread_mutex_unlock(&r->lock);
    return true; /* requests complete inside notify: nothing is ever in flight */
}

static uint32_t rng_cfg_read(void *dev, uint32_t off, unsigned size)
{
    (void)dev, (void)off, (void)size;
    return 0;
}

static void rng_cfg_write(void *dev, uint32_t off, uint32_t val, unsigned size)
{
    (void)dev, (void)off, (void)val, (void)size;
}

static const struct virtio_device_ops rng_ops = {
    .device_id = 4,
    .features = 0,
    .num_queues = 1,
    .queue_max = 64,
    .config_size = 0,
    .config_read = rng_cfg_read,
    .config_write = rng_cfg_write,
    .start = rng_start,
    .notify = rng_notify,
    .reset = rng_reset,
};

struct vrng *vrng_create(const struct guest_mem *gm, struct irq_line irq)
{
    struct vrng *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    pthread_mutex_init(&r->lock, NULL);
    r->t = virtio_mmio_create(&rng_ops, r, gm, irq);
    if (!r->t) {
        pthread_mutex_destroy(&r->lock);
        free(r);
        return NULL;
    }
    return r;
}

void vrng_destroy(struct vrng *r)
{
    if (!r) return;
    struct virtio_mmio_stats ts;
    virtio_mmio_get_stats(r->t, &ts);
    log_debug("virtio-rng: %llu requests, %llu bytes, %llu malformed, %llu resets, %llu "
              "needs-reset",
              (unsigned long long)r->requests, (unsigned long long)r->bytes,
              (unsigned long long)r->bad_requests, (unsigned long long)ts.resets,
              (unsigned long long)ts.needs_reset);
    virtio_mmio_destroy(r->t);
    pthread_mutex_destroy(&r->lock);
    free(r);
}

struct virtio_mmio *vrng_transport(struct vrng *r)
{
    return r->t;
}
