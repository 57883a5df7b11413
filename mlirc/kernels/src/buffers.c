/* mlirc's kernel library: memory. The buffer cache, for the compiled code's
 * own buffers and the convolutions' scratch; the arena of lasting packed
 * and transformed weights; call sites' slots.
 *
 * With BLAS offload on, the llvm stage lowers memref.alloc and
 * memref.dealloc to _mlir_memref_to_llvm_alloc / _free (MLIR's
 * finalize-memref-to-llvm{use-generic-functions}), defined here. Buffers of
 * 64 KB or more go back into a small cache when freed and the next
 * allocation they fit (no more than twice its size) takes the one freed
 * last: with buffers freed after their last use (mlirc-free-after-last-use)
 * a layer then writes memory a layer before it just used, still in the
 * caches, where malloc's bins handed out memory untouched since the
 * previous call. ResNet-50 1.5% faster (A/B in one process, 2026-12-01).
 * The cache holds at most CACHED_BLOCKS blocks, the oldest freed for good
 * when it is full. */

#include "kernels.h"
enum { CACHED_MIN_BYTES = 1 << 16, CACHED_BLOCKS = 64, BUFFER_HEADER = 64 };

/* Each block starts with a header holding its capacity (0: a small block,
 * straight from malloc), the memory handed out 64 bytes after it. */
static struct {
  pthread_mutex_t lock;
  char *blocks[CACHED_BLOCKS]; /* freed, most recent last */
  int count;
} buffer_cache = {PTHREAD_MUTEX_INITIALIZER, {0}, 0};

static size_t block_capacity(const char *block) { return *(const size_t *)block; }

static char *cached_block(size_t size) {
  char *found = NULL;
  pthread_mutex_lock(&buffer_cache.lock);
  for (int i = buffer_cache.count - 1; i >= 0 && !found; --i) {
    size_t capacity = block_capacity(buffer_cache.blocks[i]);
    if (capacity >= size && capacity <= 2 * size) {
      found = buffer_cache.blocks[i];
      memmove(buffer_cache.blocks + i, buffer_cache.blocks + i + 1,
              sizeof(char *) * (size_t)(buffer_cache.count - i - 1));
      --buffer_cache.count;
    }
  }
  pthread_mutex_unlock(&buffer_cache.lock);
  return found;
}

INTERNAL char *cached_alloc(size_t size) {
  size_t rounded = (size + 63) / 64 * 64, capacity = size < CACHED_MIN_BYTES ? 0 : rounded;
  char *block = capacity ? cached_block(size) : NULL;
  if (!block) {
    block = aligned_alloc(64, BUFFER_HEADER + rounded);
    if (!block) return NULL;
    *(size_t *)block = capacity;
  }
  return block + BUFFER_HEADER;
}

INTERNAL void cached_free(char *pointer) {
  if (!pointer) return;
  char *block = pointer - BUFFER_HEADER, *evicted = NULL;
  if (!block_capacity(block)) {
    free(block);
    return;
  }
  pthread_mutex_lock(&buffer_cache.lock);
  if (buffer_cache.count == CACHED_BLOCKS) {
    evicted = buffer_cache.blocks[0];
    memmove(buffer_cache.blocks, buffer_cache.blocks + 1, sizeof(char *) * (CACHED_BLOCKS - 1));
    --buffer_cache.count;
  }
  buffer_cache.blocks[buffer_cache.count++] = block;
  pthread_mutex_unlock(&buffer_cache.lock);
  free(evicted);
}

void *_mlir_memref_to_llvm_alloc(size_t size) { return cached_alloc(size); }

void _mlir_memref_to_llvm_free(void *pointer) { cached_free(pointer); }

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;

/* Packed and transformed weights live as long as the process. They are
 * carved out of chunks aligned to 2 MB that the kernel may back with huge
 * pages (MADV_HUGEPAGE; transparent huge pages are `madvise` here): the
 * weights stream from memory at every call, ResNet-50's 124 MB through
 * 62 TLB entries instead of 31,000, and the model ran 1% faster (A/B in
 * one process). A chunk's pages that no weights reach are never touched.
 * Called under slot_lock (by the slots' make functions). */
enum { HUGE_PAGE = 2 << 20, WEIGHT_CHUNK = 32 << 20 };

static struct {
  char *next, *end;
} weight_arena;

INTERNAL void *lasting_alloc(size_t bytes) {
  bytes = (bytes + 63) / 64 * 64;
  if ((size_t)(weight_arena.end - weight_arena.next) < bytes) {
    size_t chunk = bytes > WEIGHT_CHUNK ? (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE
                                        : WEIGHT_CHUNK;
    char *start = aligned_alloc(HUGE_PAGE, chunk);
    if (!start) return NULL;
    madvise(start, chunk, MADV_HUGEPAGE); /* advice: no harm where it is refused */
    weight_arena.next = start;
    weight_arena.end = start + chunk;
  }
  void *data = weight_arena.next;
  weight_arena.next += bytes;
  return data;
}

static __thread char *call_scratch[SCRATCH_KINDS];

INTERNAL void release_call_scratch(void) {
  for (int kind = SCRATCH_KINDS - 1; kind >= 0; --kind) {
    cached_free(call_scratch[kind]);
    call_scratch[kind] = NULL;
  }
}

/* At least `floats` floats, 64-byte aligned, of `kind` for this call. */
INTERNAL float *scratch(int kind, size_t floats) {
  cached_free(call_scratch[kind]);
  call_scratch[kind] = cached_alloc(floats * sizeof(float));
  return (float *)call_scratch[kind];
}

/* The data a call site keeps in its slot (a zero-initialised i64 global that
 * the blas-offload pass adds for it): made by make(args) at the site's first
 * call, once even when threads race to it. */
INTERNAL const float *slot_data(int64_t *slot, float *(*make)(const void *args), const void *args) {
  const float *ready = (const float *)__atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (ready) return ready;
  pthread_mutex_lock(&slot_lock);
  if (!*slot) __atomic_store_n(slot, (int64_t)(intptr_t)make(args), __ATOMIC_RELEASE);
  pthread_mutex_unlock(&slot_lock);
  return (const float *)(intptr_t)*slot;
}
