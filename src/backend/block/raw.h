/* Raw image backend internals that tests reach (block.h is the public interface). */
#ifndef VESSEL_BACKEND_BLOCK_RAW_H
#define VESSEL_BACKEND_BLOCK_RAW_H
#include "backend/block/block.h"

/* Tests only: behave as if the filesystem refused to punch holes (fallocate fails with
 * EOPNOTSUPP): WRITE_ZEROES falls back to writing zeroes, DISCARD does nothing. */
void blk_debug_disable_punch(struct blk_backend *b);
/* Tests only: the next FLUSH whose fdatasync succeeds reports err (< 0) instead. */
void blk_debug_fail_next_flush(struct blk_backend *b, int err);
/* Tests only: end the VESSEL_TEST_BLOCK_STALL hook for this backend: the requests it holds
 * are started now (they complete as usual) and later ones are no longer held. */
void blk_debug_release_stalled(struct blk_backend *b);
#endif
