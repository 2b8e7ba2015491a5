/* The maximisation step of Wexler et al. (2007): every hole pixel becomes the
 * weighted mean of the colours that the overlapping target patches' matches
 * put there. A patch's weight grows with its match quality (similarity) and
 * with the closeness of its centre to the known region (distance falloff). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Wexler et al. use gamma = 1.3 per pixel of distance to the boundary. */
#ifndef PM_FALLOFF_GAMMA
#define PM_FALLOFF_GAMMA 1.3
#endif
/* Similarity weights below exp(-30) add nothing but underflow risks. */
#define PM_MAX_EXPONENT 30.0f

/* Patch centre and pixel are at most `radius` apart (Chebyshev), so their
 * chamfer distances to the boundary differ by at most 4 * radius: the weight
 * gamma^-(d_centre - d_pixel) is a table lookup. Relative to the pixel's own
 * distance, it never underflows however deep the hole is. */
int pm_falloff_init(pm_context *ctx)
{
    const int span = 4 * ctx->radius;
    ctx->falloff = malloc(sizeof(float) * (size_t)(2 * span + 1));
    if (!ctx->falloff)
        return PM_ERR_NO_MEMORY;
    ctx->falloff_offset = span;
    for (int k = -span; k <= span; k++)
        ctx->falloff[k + span] =
            (float)pow(PM_FALLOFF_GAMMA, -(double)k / (double)PM_CHAMFER_UNIT);
    return PM_OK;
}

/* The k-th smallest of values[0..n) (reorders them), Hoare's selection. */
static int64_t select_kth(int64_t *values, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int64_t pivot = values[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (values[i] < pivot)
                i++;
            while (values[j] > pivot)
                j--;
            if (i <= j) {
                int64_t tmp = values[i];
                values[i++] = values[j];
                values[j--] = tmp;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            break;
    }
    return values[k];
}

/* 1 / (2 sigma^2), with sigma^2 the 75th percentile of the match distances
 * (Wexler et al.): the better three quarters of the matches dominate. */
static float similarity_scale(pm_context *ctx, const pm_level *level)
{
    memcpy(ctx->scratch, level->nnd, sizeof(int64_t) * (size_t)level->n_targets);
    int64_t p75 = select_kth(ctx->scratch, level->n_targets, (level->n_targets * 3) / 4);
    return 1.0f / (2.0f * (float)(p75 > 1 ? p75 : 1));
}

double pm_vote(pm_context *ctx, pm_level *level, int use_similarity)
{
    const int w = level->w, h = level->h, r = ctx->radius;
    const float *falloff = ctx->falloff;
    const int offset = ctx->falloff_offset;
    float *acc = ctx->acc;
    if (level->n_holes == 0 || level->n_targets == 0)
        return 0.0;
    for (int k = 0; k < level->n_holes; k++)
        memset(acc + 4 * (size_t)level->target_of[level->holes[k]], 0, 4 * sizeof(float));
    const float scale = use_similarity ? similarity_scale(ctx, level) : 0.0f;

    for (int i = 0; i < level->n_targets; i++) {
        const int t = level->targets[i], tx = t % w, ty = t / w;
        const int sx = level->nnx[i], sy = level->nny[i];
        float sim = 1.0f;
        if (use_similarity) {
            float e = (float)level->nnd[i] * scale;
            sim = expf(-(e < PM_MAX_EXPONENT ? e : PM_MAX_EXPONENT));
        }
        const int32_t d_centre = level->dist[t];
        const int y0 = ty - r < 0 ? -ty : -r, y1 = ty + r >= h ? h - 1 - ty : r;
        const int x0 = tx - r < 0 ? -tx : -r, x1 = tx + r >= w ? w - 1 - tx : r;
        for (int dy = y0; dy <= y1; dy++) {
            const size_t row = (size_t)(ty + dy) * w;
            const uint8_t *src = level->rgb + 3 * ((size_t)(sy + dy) * w + sx);
            for (int dx = x0; dx <= x1; dx++) {
                const size_t q = row + tx + dx;
                if (!level->hole[q])
                    continue;
                int diff = d_centre - level->dist[q];
                diff = diff < -offset ? -offset : (diff > offset ? offset : diff);
                const float weight = sim * falloff[diff + offset];
                const uint8_t *s = src + 3 * dx;
                float *a = acc + 4 * (size_t)level->target_of[q];
                a[0] += weight * s[0];
                a[1] += weight * s[1];
                a[2] += weight * s[2];
                a[3] += weight;
            }
        }
    }

    long change = 0;
    for (int k = 0; k < level->n_holes; k++) {
        const size_t q = (size_t)level->holes[k];
        const float *a = acc + 4 * (size_t)level->target_of[q];
        if (!(a[3] > 0.0f))
            continue; /* cannot happen: the patch centred on q votes for it */
        uint8_t *p = level->rgb + 3 * q;
        for (int c = 0; c < 3; c++) {
            int v = (int)(a[c] / a[3] + 0.5f);
            v = v < 0 ? 0 : (v > 255 ? 255 : v);
            change += abs(v - (int)p[c]);
            p[c] = (uint8_t)v;
        }
    }
    return (double)change / (3.0 * level->n_holes);
}
