/* A console whose output and input are two backends (chr_split_create in chr.h). */
#include "backend/chr/chr.h"
#include <stdlib.h>

struct chr_split {
    struct chr base;
    struct chr *out, *in;
};

static void split_write(struct chr *c, const uint8_t *buf, size_t len)
{
    chr_write(((struct chr_split *)c)->out, buf, len);
}

static void split_rx_ready(struct chr *c)
{
    chr_rx_ready(((struct chr_split *)c)->in);
}

static void split_set_receiver(struct chr *c, chr_rx_fn rx, void *opaque)
{
    chr_set_receiver(((struct chr_split *)c)->in, rx, opaque);
}

static size_t split_held(struct chr *c, uint8_t *out, size_t max)
{
    return chr_held(((struct chr_split *)c)->in, out, max);
}

static void split_put_back(struct chr *c, const uint8_t *buf, size_t len)
{
    chr_put_back(((struct chr_split *)c)->in, buf, len);
}

static void split_destroy(struct chr *c)
{
    struct chr_split *s = (struct chr_split *)c;
    chr_set_receiver(s->in, NULL, NULL);
    chr_destroy(s->out);
    free(s);
}

static const struct chr_ops split_ops = {
    .write = split_write,
    .rx_ready = split_rx_ready,
    .destroy = split_destroy,
    .set_receiver = split_set_receiver,
    .held = split_held,
    .put_back = split_put_back,
};

struct chr *chr_split_create(struct chr *out, struct chr *in)
{
    struct chr_split *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->base.ops = &split_ops;
    s->out = out;
    s->in = in;
    return &s->base;
}
