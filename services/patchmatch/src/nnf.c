/* The nearest-neighbour field (NNF) of PatchMatch (Barnes et al. 2009): for
 * every target patch (one overlapping the hole) the centre of a similar
 * source patch (fully known), improved by propagation from the neighbours and
 * by a random search at exponentially shrinking radii. */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Sum of squared RGB differences between the patch centred at (tx, ty) and
 * the one at (sx, sy), over the part of the target patch inside the level (the
 * source patch is always inside). Stops early once the sum reaches `limit`. */
int64_t pm_patch_ssd(const pm_level *level, int radius, int tx, int ty, int sx, int sy,
                     int64_t limit)
{
    const int w = level->w;
    const int y0 = ty - radius < 0 ? -ty : -radius;
    const int y1 = ty + radius >= level->h ? level->h - 1 - ty : radius;
    const int x0 = tx - radius < 0 ? -tx : -radius;
    const int x1 = tx + radius >= w ? w - 1 - tx : radius;
    const int cols = x1 - x0 + 1;
    int64_t sum = 0;
    for (int dy = y0; dy <= y1; dy++) {
        const size_t t_row = (size_t)(ty + dy) * w + tx + x0;
        const uint8_t *a = level->rgb + 3 * t_row;
        const uint8_t *b = level->rgb + 3 * ((size_t)(sy + dy) * w + sx + x0);
        const uint8_t *weight = level->cost + t_row;
        int row = 0;
        for (int k = 0; k < cols; k++) {
            int d0 = (int)a[3 * k] - (int)b[3 * k];
            int d1 = (int)a[3 * k + 1] - (int)b[3 * k + 1];
            int d2 = (int)a[3 * k + 2] - (int)b[3 * k + 2];
            row += (d0 * d0 + d1 * d1 + d2 * d2) * weight[k];
        }
        sum += row;
        if (sum >= limit)
            return sum;
    }
    return sum;
}

static inline int is_source(const pm_level *level, int radius, int x, int y)
{
    return x >= radius && y >= radius && x < level->w - radius && y < level->h - radius &&
           level->valid[y * level->w + x];
}

static void random_source(pm_context *ctx, const pm_level *level, int32_t *x, int32_t *y)
{
    int s = level->sources[pm_rng_below(&ctx->rng, (uint32_t)level->n_sources)];
    *x = s % level->w;
    *y = s / level->w;
}

void pm_nnf_random(pm_context *ctx, pm_level *level)
{
    for (int i = 0; i < level->n_targets; i++)
        random_source(ctx, level, &level->nnx[i], &level->nny[i]);
    pm_nnf_measure(ctx, level);
}

/* Starts the finer level's field from the coarser one: the match of the
 * coarse parent, scaled by two, keeping the pixel's position in its 2x2 block.
 * Distances are left for pm_nnf_measure once the estimate exists. */
void pm_nnf_upsample(pm_context *ctx, const pm_level *coarse, pm_level *fine)
{
    const int r = ctx->radius;
    for (int i = 0; i < fine->n_targets; i++) {
        int t = fine->targets[i], x = t % fine->w, y = t / fine->w;
        int cx = x >> 1, cy = y >> 1;
        if (cx >= coarse->w)
            cx = coarse->w - 1;
        if (cy >= coarse->h)
            cy = coarse->h - 1;
        int j = coarse->target_of[cy * coarse->w + cx];
        int found = 0;
        if (j >= 0) {
            /* the exact child first, then the block's other corners */
            for (int k = 0; k < 4 && !found; k++) {
                int px = (x & 1) ^ (k & 1), py = (y & 1) ^ (k >> 1);
                int sx = 2 * coarse->nnx[j] + px, sy = 2 * coarse->nny[j] + py;
                if (is_source(fine, r, sx, sy)) {
                    fine->nnx[i] = sx;
                    fine->nny[i] = sy;
                    found = 1;
                }
            }
        }
        if (!found)
            random_source(ctx, fine, &fine->nnx[i], &fine->nny[i]);
        fine->nnd[i] = INT64_MAX;
    }
}

void pm_nnf_measure(pm_context *ctx, pm_level *level)
{
    const int w = level->w, r = ctx->radius;
    for (int i = 0; i < level->n_targets; i++) {
        int t = level->targets[i];
        level->nnd[i] =
            pm_patch_ssd(level, r, t % w, t / w, level->nnx[i], level->nny[i], INT64_MAX);
    }
}

typedef struct match {
    int x, y;
    int64_t d;
} match;

/* Replaces *best by the source patch at (cx, cy) if that one is closer. */
static inline void try_match(const pm_level *level, int r, int tx, int ty, match *best, int cx,
                             int cy)
{
    if ((cx == best->x && cy == best->y) || !is_source(level, r, cx, cy))
        return;
    int64_t d = pm_patch_ssd(level, r, tx, ty, cx, cy, best->d);
    if (d < best->d) {
        best->x = cx;
        best->y = cy;
        best->d = d;
    }
}

/* One PatchMatch sweep over the targets, in raster order (or reversed):
 * propagation from the left and upper neighbours (right and lower when
 * reversed), then random search around the best match at radii halving from
 * the level's size down to one pixel. Checks the deadline every few hundred
 * targets. Returns PM_OK or the reason to stop. */
int pm_nnf_sweep(pm_context *ctx, pm_level *level, int backward)
{
    const int w = level->w, h = level->h, r = ctx->radius;
    const int n = level->n_targets, step = backward ? -1 : 1;
    const int max_radius = w > h ? w : h;
    for (int k = 0; k < n; k++) {
        if ((k & 511) == 0) {
            int stop = pm_should_stop(ctx);
            if (stop != PM_OK)
                return stop;
        }
        const int i = backward ? n - 1 - k : k;
        const int t = level->targets[i], tx = t % w, ty = t / w;
        match best = {level->nnx[i], level->nny[i], level->nnd[i]};

        const int px = tx - step, py = ty - step;
        if (px >= 0 && px < w) {
            int j = level->target_of[t - step];
            if (j >= 0)
                try_match(level, r, tx, ty, &best, level->nnx[j] + step, level->nny[j]);
        }
        if (py >= 0 && py < h) {
            int j = level->target_of[t - step * w];
            if (j >= 0)
                try_match(level, r, tx, ty, &best, level->nnx[j], level->nny[j] + step);
        }
        for (int radius = max_radius; radius >= 1; radius >>= 1) {
            /* uniform in the square around the best match, cut to the level */
            int x_lo = best.x - radius < r ? r : best.x - radius;
            int x_hi = best.x + radius > w - 1 - r ? w - 1 - r : best.x + radius;
            int y_lo = best.y - radius < r ? r : best.y - radius;
            int y_hi = best.y + radius > h - 1 - r ? h - 1 - r : best.y + radius;
            int cx = x_lo + pm_rng_below(&ctx->rng, (uint32_t)(x_hi - x_lo + 1));
            int cy = y_lo + pm_rng_below(&ctx->rng, (uint32_t)(y_hi - y_lo + 1));
            try_match(level, r, tx, ty, &best, cx, cy);
        }
        level->nnx[i] = best.x;
        level->nny[i] = best.y;
        level->nnd[i] = best.d;
    }
    return PM_OK;
}
