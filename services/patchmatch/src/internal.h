/* Data shared by the engine's translation units; not part of the public API. */
#ifndef PM_INTERNAL_H
#define PM_INTERNAL_H

#include <stdint.h>

#include "patchmatch.h"

#define PM_MAX_LEVELS 12

/* Chamfer distances are in thirds of a pixel (3 for a side step, 4 for a
 * diagonal one), an integer approximation of the Euclidean distance. */
#define PM_CHAMFER_UNIT 3

/* In patch distances a known pixel counts this many times as much as an
 * estimated one: matches must agree with the real image around the hole
 * first, and with the current guess inside it only second (the guess still
 * decides between patches that lie wholly inside the hole). */
#ifndef PM_KNOWN_WEIGHT
#define PM_KNOWN_WEIGHT 255
#endif
/* A row of a patch distance, 21 pixels * 3 * 255^2 * weight, fits an int32;
 * whole patches are summed in 64 bits. */
_Static_assert((long long)PM_PATCH_SIZE_MAX * 3 * 255 * 255 * PM_KNOWN_WEIGHT < 2147483647LL,
               "a patch row's distance must fit in an int32");
_Static_assert(PM_KNOWN_WEIGHT >= 1 && PM_KNOWN_WEIGHT <= 255, "the weight map is 8-bit");

/* One scale of the working region (the hole's neighbourhood). */
typedef struct pm_level {
    int w, h;
    uint8_t *rgb;       /* w*h*3; hole pixels hold the current estimate */
    uint8_t *hole;      /* w*h; 1 = unknown pixel */
    uint8_t *valid;     /* w*h; 1 = centre of a source patch: inside, fully known */
    uint8_t *cost;      /* w*h; weight of the pixel in patch distances */
    int32_t *dist;      /* w*h; chamfer distance to the nearest known pixel */
    int32_t *holes;     /* indices of the hole pixels */
    int n_holes;
    int32_t *targets;   /* centres of the patches overlapping the hole, raster order */
    int n_targets;
    int32_t *target_of; /* w*h; index into targets, or -1 */
    int32_t *sources;   /* indices of the valid centres */
    int n_sources;
    int32_t *nnx, *nny; /* per target: centre of its nearest source patch */
    int64_t *nnd;       /* per target: weighted sum of squared differences to it */
} pm_level;

typedef struct pm_context {
    pm_level level[PM_MAX_LEVELS];
    int n_levels;
    int roi_x, roi_y; /* the finest level's origin in the image */
    int patch;  /* odd side of the patches */
    int radius; /* patch / 2 */
    uint64_t rng;
    int64_t deadline_ns; /* CLOCK_MONOTONIC time to give up at; 0 = none */
    const int32_t *cancel;
    float *acc;           /* voting sums: r, g, b, weight per target (every hole
                           * pixel is the centre of a target patch) */
    int64_t *scratch;     /* one distance per target, for the percentile */
    float *falloff;       /* boundary weights indexed by a chamfer difference */
    int falloff_offset;   /* index of a zero difference in falloff */
} pm_context;

/* The per-call random generator, inline so the search loops stay tight. */
static inline uint64_t pm_rng_next(uint64_t *state)
{
    /* xorshift64* (Marsaglia; Vigna's multiplier): fast, and good enough to
     * pick candidate offsets. The state is never zero (see pm_rng_seed). */
    uint64_t x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static inline uint64_t pm_rng_seed(uint64_t seed)
{
    /* splitmix64 spreads nearby seeds apart; never return the zero state. */
    uint64_t z = seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    return z ? z : 0x9E3779B97F4A7C15ULL;
}

/* Uniform integer in [0, n) for n > 0 (Lemire's multiply-shift). */
static inline int pm_rng_below(uint64_t *state, uint32_t n)
{
    return (int)(((pm_rng_next(state) >> 32) * (uint64_t)n) >> 32);
}

/* pyramid.c */
int pm_level_alloc(pm_level *level, int w, int h);
void pm_level_free(pm_level *level);
void pm_level_downsample(const pm_level *fine, pm_level *coarse);
int pm_level_index(pm_level *level, int radius);
int pm_level_fill_onion(pm_level *level);

/* nnf.c */
int64_t pm_patch_ssd(const pm_level *level, int radius, int tx, int ty, int sx, int sy,
                     int64_t limit);
void pm_nnf_random(pm_context *ctx, pm_level *level);
void pm_nnf_upsample(pm_context *ctx, const pm_level *coarse, pm_level *fine);
void pm_nnf_measure(pm_context *ctx, pm_level *level);
int pm_nnf_sweep(pm_context *ctx, pm_level *level, int backward);

/* vote.c */
int pm_falloff_init(pm_context *ctx);
double pm_vote(pm_context *ctx, pm_level *level, int use_similarity);

/* inpaint.c: PM_OK, or PM_ERR_CANCELLED / PM_ERR_TIMEOUT when it is time to stop. */
int pm_should_stop(const pm_context *ctx);

#endif /* PM_INTERNAL_H */
