/*
 * Exemplar-based image completion: PatchMatch nearest-neighbour search
 * (Barnes et al., SIGGRAPH 2009) inside the multi-scale expectation-
 * maximisation completion of Wexler, Shechtman & Irani (PAMI 2007).
 *
 * The library has no global state: every call builds its own context, draws
 * its random numbers from a generator seeded by `seed`, and frees everything
 * before returning, so concurrent calls from several threads are safe and the
 * output depends only on the inputs and the options.
 */
#ifndef PATCHMATCH_H
#define PATCHMATCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; only these symbols are exported. */
#if defined(PM_BUILDING_LIBRARY) && defined(__GNUC__)
#define PM_API __attribute__((visibility("default")))
#else
#define PM_API
#endif

/* Bumped whenever pm_options or a function signature changes, so a binding
 * can refuse a library built from other sources. */
#define PM_ABI_VERSION 1

/* Largest image the engine accepts (indices are 32-bit). */
#define PM_MAX_SIDE 16384
#define PM_MAX_PIXELS (1L << 26)

/* Ranges of the options (inclusive). */
#define PM_PATCH_SIZE_MIN 3
#define PM_PATCH_SIZE_MAX 21
#define PM_EM_ITERATIONS_MIN 1
#define PM_EM_ITERATIONS_MAX 20
#define PM_PM_ITERATIONS_MIN 1
#define PM_PM_ITERATIONS_MAX 10
#define PM_CONTEXT_MIN 0.0
#define PM_CONTEXT_MAX 10.0

enum pm_status {
    PM_OK = 0,
    PM_ERR_NULL_ARGUMENT = -1,    /* a required pointer is NULL */
    PM_ERR_EMPTY_IMAGE = -2,      /* width or height is zero or negative */
    PM_ERR_TOO_LARGE = -3,        /* a side > PM_MAX_SIDE or pixels > PM_MAX_PIXELS */
    PM_ERR_MASK_SIZE = -4,        /* the mask's size differs from the image's */
    PM_ERR_NOTHING_TO_SAMPLE = -5, /* the mask covers every pixel */
    PM_ERR_BAD_OPTION = -6,       /* an option is outside its range (or patch size even) */
    PM_ERR_NO_MEMORY = -7,
    PM_ERR_CANCELLED = -8,        /* *cancel became non-zero */
    PM_ERR_TIMEOUT = -9           /* the deadline passed */
};

typedef struct pm_options {
    /* Side of the square patches, odd (default 9). */
    int32_t patch_size;
    /* EM steps (search + vote) at each pyramid level; the coarsest level gets
     * twice as many (default 3). A level stops early once a vote hardly
     * changes the fill. */
    int32_t em_iterations;
    /* PatchMatch sweeps (propagation + random search) per EM step (default 2). */
    int32_t pm_iterations;
    /* Sources are drawn from the hole's bounding box grown by this many times
     * its larger side (default 1.0); the whole image if none is found there. */
    double context;
    /* Seed of the per-call random generator. */
    uint64_t seed;
    /* Give up with PM_ERR_TIMEOUT after this many milliseconds (<= 0: never). */
    int64_t deadline_ms;
    /* Polled between iterations; non-zero means give up with PM_ERR_CANCELLED.
     * May be NULL. Read atomically, so another thread may set it. */
    const int32_t *cancel;
} pm_options;

/* Fills `options` with the defaults. */
PM_API void pm_default_options(pm_options *options);

/*
 * Fills the pixels of `image` where `mask` is non-zero.
 *
 * image: width*height*3 bytes, packed RGB rows, not modified.
 * mask:  mask_width*mask_height bytes, non-zero = unknown pixel to fill.
 * out:   width*height*3 bytes; may be the same buffer as image. On success the
 *        masked pixels hold the fill and every other pixel equals the input's.
 *        On error it is not written.
 * Returns PM_OK or a negative pm_status.
 */
PM_API int pm_inpaint(const uint8_t *image, int32_t width, int32_t height, const uint8_t *mask,
                      int32_t mask_width, int32_t mask_height, uint8_t *out,
                      const pm_options *options);

/* A static English sentence describing a status code. */
PM_API const char *pm_status_message(int status);

/* PM_ABI_VERSION of the built library. */
PM_API int pm_abi_version(void);

#ifdef __cplusplus
}
#endif

#endif /* PATCHMATCH_H */
