/* pm_inpaint: input checks, the working region around the hole, the pyramid,
 * and the coarse-to-fine expectation-maximisation of Wexler et al. (2007)
 * with PatchMatch (Barnes et al. 2009) as the nearest-neighbour search. */
#define _POSIX_C_SOURCE 200809L

#include <stdlib.h>
#ifdef PM_DEBUG
#include <stdio.h>
#endif
#include <string.h>
#include <time.h>

#include "internal.h"

/* Tuning constants, measured with bench/bench_inpaint.py; each can be
 * overridden for experiments, e.g. make OPT="-O3 -DPM_CONVERGED=0.2". */

/* The pyramid stops once the hole's inscribed radius is at most this many
 * patch sizes: there the smooth initial fill is a fair start. */
#ifndef PM_COARSEST_RADIUS_PATCHES
#define PM_COARSEST_RADIUS_PATCHES 1.0
#endif
/* A coarser level is kept only with at least this many source patches. */
#ifndef PM_MIN_SOURCES
#define PM_MIN_SOURCES 64
#endif
/* An EM loop stops early once a vote changes the hole by less than this
 * (mean absolute change per channel, in 8-bit levels). */
#ifndef PM_CONVERGED
#define PM_CONVERGED 0.35
#endif

typedef struct region {
    int x, y, w, h;
} region;

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int pm_should_stop(const pm_context *ctx)
{
    if (ctx->cancel && __atomic_load_n(ctx->cancel, __ATOMIC_RELAXED))
        return PM_ERR_CANCELLED;
    if (ctx->deadline_ns && monotonic_ns() >= ctx->deadline_ns)
        return PM_ERR_TIMEOUT;
    return PM_OK;
}

void pm_default_options(pm_options *options)
{
    options->patch_size = 9;
    options->em_iterations = 3;
    options->pm_iterations = 2;
    options->context = 1.0;
    options->seed = 0;
    options->deadline_ms = 0;
    options->cancel = NULL;
}

int pm_abi_version(void) { return PM_ABI_VERSION; }

const char *pm_status_message(int status)
{
    switch (status) {
    case PM_OK:
        return "ok";
    case PM_ERR_NULL_ARGUMENT:
        return "a required buffer is missing (null pointer)";
    case PM_ERR_EMPTY_IMAGE:
        return "the image has zero width or height";
    case PM_ERR_TOO_LARGE:
        return "the image is too large for the engine (longest side 16384, 2^26 pixels)";
    case PM_ERR_MASK_SIZE:
        return "the mask's size differs from the image's";
    case PM_ERR_NOTHING_TO_SAMPLE:
        return "the mask covers the whole image: nothing to sample from";
    case PM_ERR_BAD_OPTION:
        return "an option is out of range (patch size must be odd, 3 to 21)";
    case PM_ERR_NO_MEMORY:
        return "out of memory";
    case PM_ERR_CANCELLED:
        return "cancelled";
    case PM_ERR_TIMEOUT:
        return "the deadline passed before the fill was done";
    default:
        return "unknown status";
    }
}

static int check_options(const pm_options *o)
{
    if (o->patch_size < PM_PATCH_SIZE_MIN || o->patch_size > PM_PATCH_SIZE_MAX ||
        o->patch_size % 2 == 0)
        return PM_ERR_BAD_OPTION;
    if (o->em_iterations < PM_EM_ITERATIONS_MIN || o->em_iterations > PM_EM_ITERATIONS_MAX)
        return PM_ERR_BAD_OPTION;
    if (o->pm_iterations < PM_PM_ITERATIONS_MIN || o->pm_iterations > PM_PM_ITERATIONS_MAX)
        return PM_ERR_BAD_OPTION;
    if (!(o->context >= PM_CONTEXT_MIN && o->context <= PM_CONTEXT_MAX))
        return PM_ERR_BAD_OPTION; /* also refuses NaN */
    return PM_OK;
}

/* Copies the region of the image and mask into the finest level and indexes it. */
static int load_finest(pm_context *ctx, const uint8_t *image, const uint8_t *mask, int width,
                       region roi)
{
    pm_level *level = &ctx->level[0];
    pm_level_free(level);
    ctx->roi_x = roi.x;
    ctx->roi_y = roi.y;
    int status = pm_level_alloc(level, roi.w, roi.h);
    if (status != PM_OK)
        return status;
    for (int y = 0; y < roi.h; y++) {
        size_t from = (size_t)(roi.y + y) * width + roi.x;
        memcpy(level->rgb + 3 * (size_t)y * roi.w, image + 3 * from, 3 * (size_t)roi.w);
        for (int x = 0; x < roi.w; x++)
            level->hole[y * roi.w + x] = mask[from + x] != 0;
    }
    return pm_level_index(level, ctx->radius);
}

/* The finest level: the hole's bounding box grown by `context` times its
 * larger side (at least two patches), or the whole image when that region
 * holds no source patch; smaller patches as a last resort when even the whole
 * image has none (a mask leaving only slivers). */
static int build_finest(pm_context *ctx, const uint8_t *image, const uint8_t *mask, int width,
                        int height, region box, const pm_options *o)
{
    int bigger = box.w > box.h ? box.w : box.h;
    double grown = o->context * bigger;
    int margin = grown > 2.0 * width + 2.0 * height ? 2 * (width + height) : (int)(grown + 0.5);
    if (margin < 2 * o->patch_size)
        margin = 2 * o->patch_size;
    int x0 = box.x - margin < 0 ? 0 : box.x - margin;
    int y0 = box.y - margin < 0 ? 0 : box.y - margin;
    int x1 = box.x + box.w + margin > width ? width : box.x + box.w + margin;
    int y1 = box.y + box.h + margin > height ? height : box.y + box.h + margin;
    region roi = {x0, y0, x1 - x0, y1 - y0};
    region whole = {0, 0, width, height};

    for (ctx->patch = o->patch_size; ctx->patch >= 1; ctx->patch -= 2) {
        ctx->radius = ctx->patch / 2;
        int status = load_finest(ctx, image, mask, width, roi);
        if (status != PM_OK)
            return status;
        if (ctx->level[0].n_sources == 0 && (roi.w != width || roi.h != height)) {
            roi = whole;
            status = load_finest(ctx, image, mask, width, roi);
            if (status != PM_OK)
                return status;
        }
        if (ctx->level[0].n_sources > 0)
            return PM_OK;
    }
    return PM_ERR_NOTHING_TO_SAMPLE; /* unreachable: a 1x1 patch at a known pixel */
}

/* Adds coarser levels until the hole is about a patch across. */
static int build_pyramid(pm_context *ctx)
{
    const pm_level *finest = &ctx->level[0];
    int32_t deepest = 0;
    for (int k = 0; k < finest->n_holes; k++)
        if (finest->dist[finest->holes[k]] > deepest)
            deepest = finest->dist[finest->holes[k]];
    double hole_radius = (double)deepest / PM_CHAMFER_UNIT;

    ctx->n_levels = 1;
    while (ctx->n_levels < PM_MAX_LEVELS &&
           hole_radius > PM_COARSEST_RADIUS_PATCHES * ctx->patch) {
        const pm_level *fine = &ctx->level[ctx->n_levels - 1];
        pm_level *coarse = &ctx->level[ctx->n_levels];
        int status = pm_level_alloc(coarse, (fine->w + 1) / 2, (fine->h + 1) / 2);
        if (status == PM_OK) {
            pm_level_downsample(fine, coarse);
            status = pm_level_index(coarse, ctx->radius);
        }
        if (status != PM_OK)
            return status;
        int enough = coarse->n_sources >= PM_MIN_SOURCES &&
                     coarse->n_sources >= coarse->n_holes / 4 && coarse->n_holes > 0;
        if (!enough) {
            pm_level_free(coarse);
            break;
        }
        ctx->n_levels++;
        hole_radius /= 2.0;
    }
    return PM_OK;
}

/* E-steps (PatchMatch sweeps) and M-steps (votes) at one level. */
static int em_level(pm_context *ctx, pm_level *level, int em_steps, int pm_sweeps,
                    int use_similarity)
{
    int backward = 0;
    for (int step = 0; step < em_steps; step++) {
        pm_nnf_measure(ctx, level); /* the estimate changed since the last search */
        for (int s = 0; s < pm_sweeps; s++) {
            int status = pm_nnf_sweep(ctx, level, backward);
            if (status != PM_OK)
                return status;
            backward = !backward;
        }
        double change = pm_vote(ctx, level, use_similarity);
#ifdef PM_DEBUG
        fprintf(stderr, "  level %dx%d step %d change %.2f\n", level->w, level->h, step, change);
#endif
        int status = pm_should_stop(ctx);
        if (status != PM_OK)
            return status;
        if (change < PM_CONVERGED)
            break;
    }
    return PM_OK;
}

static int complete(pm_context *ctx, const pm_options *o)
{
    int status = pm_falloff_init(ctx);
    if (status != PM_OK)
        return status;
    int max_targets = 1;
    for (int l = 0; l < ctx->n_levels; l++)
        if (ctx->level[l].n_targets > max_targets)
            max_targets = ctx->level[l].n_targets;
    ctx->scratch = malloc(sizeof(int64_t) * (size_t)max_targets);
    ctx->acc = malloc(4 * sizeof(float) * (size_t)max_targets);
    if (!ctx->scratch || !ctx->acc)
        return PM_ERR_NO_MEMORY;

    const int coarsest = ctx->n_levels - 1;
#ifdef PM_DEBUG
    for (int l = 0; l < ctx->n_levels; l++)
        fprintf(stderr, "level %d: %dx%d holes %d targets %d sources %d patch %d\n", l,
                ctx->level[l].w, ctx->level[l].h, ctx->level[l].n_holes,
                ctx->level[l].n_targets, ctx->level[l].n_sources, ctx->patch);
#endif
    status = pm_level_fill_onion(&ctx->level[coarsest]);
    if (status != PM_OK)
        return status;
    pm_nnf_random(ctx, &ctx->level[coarsest]);
    for (int l = coarsest; l >= 0; l--) {
        pm_level *level = &ctx->level[l];
        int em_steps = o->em_iterations;
        if (l == coarsest && coarsest > 0)
            em_steps = 2 * o->em_iterations;

        if (l < coarsest) {
            pm_nnf_upsample(ctx, &ctx->level[l + 1], level);
            pm_vote(ctx, level, 0);
        }
        /* Similarity-weighted votes pick structure at the coarse levels; the
         * finest level takes the plain mean of its matches (weighted only by
         * the distance falloff), which gives smoother, closer fills. */
        status = em_level(ctx, level, em_steps, o->pm_iterations, l > 0);
        if (status != PM_OK)
            return status;
    }
    return PM_OK;
}

int pm_inpaint(const uint8_t *image, int32_t width, int32_t height, const uint8_t *mask,
               int32_t mask_width, int32_t mask_height, uint8_t *out,
               const pm_options *options)
{
    const int64_t started = monotonic_ns();
    if (!image || !mask || !out || !options)
        return PM_ERR_NULL_ARGUMENT;
    if (width <= 0 || height <= 0)
        return PM_ERR_EMPTY_IMAGE;
    if (width > PM_MAX_SIDE || height > PM_MAX_SIDE || (int64_t)width * height > PM_MAX_PIXELS)
        return PM_ERR_TOO_LARGE;
    if (mask_width != width || mask_height != height)
        return PM_ERR_MASK_SIZE;
    int status = check_options(options);
    if (status != PM_OK)
        return status;

    const size_t n = (size_t)width * height;
    size_t n_masked = 0;
    int bx0 = width, by0 = height, bx1 = -1, by1 = -1;
    for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
            if (mask[(size_t)y * width + x]) {
                n_masked++;
                bx0 = x < bx0 ? x : bx0;
                bx1 = x > bx1 ? x : bx1;
                by0 = y < by0 ? y : by0;
                by1 = y > by1 ? y : by1;
            }
    if (n_masked == n)
        return PM_ERR_NOTHING_TO_SAMPLE;
    if (n_masked == 0) {
        if (out != image)
            memcpy(out, image, 3 * n);
        return PM_OK;
    }

    pm_context ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.rng = pm_rng_seed(options->seed);
    ctx.cancel = options->cancel;
    if (options->deadline_ms > 0)
        ctx.deadline_ns = started + options->deadline_ms * 1000000LL;

    region box = {bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1};
    status = build_finest(&ctx, image, mask, width, height, box, options);
    if (status == PM_OK)
        status = build_pyramid(&ctx);
    if (status == PM_OK)
        status = complete(&ctx, options);
    if (status == PM_OK) {
        /* Only now touch `out`: on any error it stays as it was. */
        const pm_level *finest = &ctx.level[0];
        const int rx = ctx.roi_x, ry = ctx.roi_y;
        if (out != image)
            memcpy(out, image, 3 * n);
        for (int k = 0; k < finest->n_holes; k++) {
            int q = finest->holes[k], x = q % finest->w, y = q / finest->w;
            memcpy(out + 3 * ((size_t)(ry + y) * width + rx + x), finest->rgb + 3 * (size_t)q,
                   3);
        }
    }
    for (int l = 0; l < PM_MAX_LEVELS; l++)
        pm_level_free(&ctx.level[l]);
    free(ctx.acc);
    free(ctx.scratch);
    free(ctx.falloff);
    return status;
}
