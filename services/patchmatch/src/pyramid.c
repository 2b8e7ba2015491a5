/* The image pyramid of the working region: allocation, downsampling, the
 * per-level index of hole pixels, target patches and source patches, and the
 * smooth initial fill of the coarsest level. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int pm_level_alloc(pm_level *level, int w, int h)
{
    size_t n = (size_t)w * (size_t)h;
    memset(level, 0, sizeof *level);
    level->w = w;
    level->h = h;
    level->rgb = malloc(n * 3);
    level->hole = calloc(n, 1);
    level->valid = calloc(n, 1);
    level->cost = malloc(n);
    level->dist = malloc(n * sizeof *level->dist);
    level->target_of = malloc(n * sizeof *level->target_of);
    if (!level->rgb || !level->hole || !level->valid || !level->cost || !level->dist || !level->target_of)
        return PM_ERR_NO_MEMORY;
    return PM_OK;
}

void pm_level_free(pm_level *level)
{
    free(level->rgb);
    free(level->hole);
    free(level->valid);
    free(level->cost);
    free(level->dist);
    free(level->target_of);
    free(level->holes);
    free(level->targets);
    free(level->sources);
    free(level->nnx);
    free(level->nny);
    free(level->nnd);
    memset(level, 0, sizeof *level);
}

/* Halves the level with a 2x2 box filter. A coarse pixel is unknown as soon as
 * one of its fine pixels is: coarse sources then hold only real image content,
 * and the coarse hole covers every fine hole pixel. */
void pm_level_downsample(const pm_level *fine, pm_level *coarse)
{
    for (int y = 0; y < coarse->h; y++) {
        for (int x = 0; x < coarse->w; x++) {
            int sum[3] = {0, 0, 0};
            int count = 0, unknown = 0;
            for (int dy = 0; dy < 2; dy++) {
                int fy = 2 * y + dy;
                if (fy >= fine->h)
                    continue;
                for (int dx = 0; dx < 2; dx++) {
                    int fx = 2 * x + dx;
                    if (fx >= fine->w)
                        continue;
                    int i = fy * fine->w + fx;
                    if (fine->hole[i]) {
                        unknown = 1;
                        continue;
                    }
                    for (int c = 0; c < 3; c++)
                        sum[c] += fine->rgb[3 * i + c];
                    count++;
                }
            }
            int o = y * coarse->w + x;
            coarse->hole[o] = (uint8_t)unknown;
            for (int c = 0; c < 3; c++)
                coarse->rgb[3 * o + c] = count ? (uint8_t)((sum[c] + count / 2) / count) : 0;
        }
    }
}

static inline int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

/* Two-pass 3-4 chamfer distance from every pixel to the nearest known pixel. */
static void chamfer_distance(pm_level *level)
{
    const int w = level->w, h = level->h;
    const int32_t far = INT32_MAX / 4;
    int32_t *d = level->dist;
    for (int i = 0; i < w * h; i++)
        d[i] = level->hole[i] ? far : 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int32_t *p = &d[y * w + x];
            if (x > 0)
                *p = min32(*p, p[-1] + 3);
            if (y > 0) {
                *p = min32(*p, p[-w] + 3);
                if (x > 0)
                    *p = min32(*p, p[-w - 1] + 4);
                if (x < w - 1)
                    *p = min32(*p, p[-w + 1] + 4);
            }
        }
    }
    for (int y = h - 1; y >= 0; y--) {
        for (int x = w - 1; x >= 0; x--) {
            int32_t *p = &d[y * w + x];
            if (x < w - 1)
                *p = min32(*p, p[1] + 3);
            if (y < h - 1) {
                *p = min32(*p, p[w] + 3);
                if (x < w - 1)
                    *p = min32(*p, p[w + 1] + 4);
                if (x > 0)
                    *p = min32(*p, p[w - 1] + 4);
            }
        }
    }
}

/* near[i] = 1 when a hole pixel lies within `radius` (Chebyshev) of pixel i,
 * that is when the patch centred at i overlaps the hole. Separable: a sliding
 * count along the rows, then along the columns. */
static int dilate_hole(const pm_level *level, int radius, uint8_t *near)
{
    const int w = level->w, h = level->h;
    uint8_t *rows = malloc((size_t)w * h);
    int32_t *prefix = malloc(sizeof *prefix * (size_t)((w > h ? w : h) + 1));
    if (!rows || !prefix) {
        free(rows);
        free(prefix);
        return PM_ERR_NO_MEMORY;
    }
    for (int y = 0; y < h; y++) {
        const uint8_t *hole = level->hole + (size_t)y * w;
        prefix[0] = 0;
        for (int x = 0; x < w; x++)
            prefix[x + 1] = prefix[x] + hole[x];
        for (int x = 0; x < w; x++) {
            int lo = x - radius < 0 ? 0 : x - radius;
            int hi = x + radius >= w ? w - 1 : x + radius;
            rows[(size_t)y * w + x] = prefix[hi + 1] - prefix[lo] > 0;
        }
    }
    for (int x = 0; x < w; x++) {
        prefix[0] = 0;
        for (int y = 0; y < h; y++)
            prefix[y + 1] = prefix[y] + rows[(size_t)y * w + x];
        for (int y = 0; y < h; y++) {
            int lo = y - radius < 0 ? 0 : y - radius;
            int hi = y + radius >= h ? h - 1 : y + radius;
            near[(size_t)y * w + x] = prefix[hi + 1] - prefix[lo] > 0;
        }
    }
    free(rows);
    free(prefix);
    return PM_OK;
}

/* Builds the lists of hole pixels, target patches (those overlapping the
 * hole) and source patches (inside the level and fully known), and the
 * distance map. Frees lists of an earlier call, so it can be re-run. */
int pm_level_index(pm_level *level, int radius)
{
    const int w = level->w, h = level->h;
    const size_t n = (size_t)w * h;
    free(level->holes);
    free(level->targets);
    free(level->sources);
    free(level->nnx);
    free(level->nny);
    free(level->nnd);
    level->holes = level->targets = level->sources = NULL;
    level->nnx = level->nny = NULL;
    level->nnd = NULL;
    level->n_holes = level->n_targets = level->n_sources = 0;

    chamfer_distance(level);
    uint8_t *near = malloc(n);
    if (!near || dilate_hole(level, radius, near) != PM_OK) {
        free(near);
        return PM_ERR_NO_MEMORY;
    }
    int n_holes = 0, n_targets = 0, n_sources = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            int inside = x >= radius && x < w - radius && y >= radius && y < h - radius;
            level->valid[i] = (uint8_t)(inside && !near[i]);
            level->cost[i] = level->hole[i] ? 1 : PM_KNOWN_WEIGHT;
            n_holes += level->hole[i];
            n_targets += near[i];
            n_sources += level->valid[i];
        }
    }
    level->holes = malloc(sizeof(int32_t) * (size_t)(n_holes ? n_holes : 1));
    level->targets = malloc(sizeof(int32_t) * (size_t)(n_targets ? n_targets : 1));
    level->sources = malloc(sizeof(int32_t) * (size_t)(n_sources ? n_sources : 1));
    level->nnx = malloc(sizeof(int32_t) * (size_t)(n_targets ? n_targets : 1));
    level->nny = malloc(sizeof(int32_t) * (size_t)(n_targets ? n_targets : 1));
    level->nnd = malloc(sizeof(int64_t) * (size_t)(n_targets ? n_targets : 1));
    if (!level->holes || !level->targets || !level->sources || !level->nnx || !level->nny ||
        !level->nnd) {
        free(near);
        return PM_ERR_NO_MEMORY;
    }
    for (size_t i = 0; i < n; i++) {
        level->target_of[i] = -1;
        if (level->hole[i])
            level->holes[level->n_holes++] = (int32_t)i;
        if (near[i]) {
            level->target_of[i] = level->n_targets;
            level->targets[level->n_targets++] = (int32_t)i;
        }
        if (level->valid[i])
            level->sources[level->n_sources++] = (int32_t)i;
    }
    free(near);
    return PM_OK;
}

/* Onion-peel fill: layer by layer from the hole's boundary inwards, each hole
 * pixel takes the mean of its already-filled 8-neighbours. A smooth start for
 * the coarsest level, where the hole is only a few pixels across. Requires at
 * least one known pixel. */
int pm_level_fill_onion(pm_level *level)
{
    int status = PM_ERR_NO_MEMORY;
    const int w = level->w, h = level->h;
    const size_t n = (size_t)w * h;
    /* state: 0 = filled or known, 1 = hole not yet queued, 2 = queued */
    uint8_t *state = malloc(n);
    int32_t *layer = malloc(sizeof(int32_t) * n);
    int32_t *next = malloc(sizeof(int32_t) * n);
    uint8_t *values = malloc(n * 3);
    if (!state || !layer || !next || !values)
        goto done;
    int n_layer = 0;
    for (size_t i = 0; i < n; i++)
        state[i] = level->hole[i];
    for (int k = 0; k < level->n_holes; k++) {
        int i = level->holes[k], x = i % w, y = i / w;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || nx >= w || ny >= h || state[i] != 1)
                    continue;
                if (state[ny * w + nx] == 0) {
                    state[i] = 2;
                    layer[n_layer++] = i;
                }
            }
    }
    while (n_layer > 0) {
        for (int k = 0; k < n_layer; k++) {
            int i = layer[k], x = i % w, y = i / w, sum[3] = {0, 0, 0}, count = 0;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h || state[ny * w + nx] != 0)
                        continue;
                    for (int c = 0; c < 3; c++)
                        sum[c] += level->rgb[3 * (ny * w + nx) + c];
                    count++;
                }
            for (int c = 0; c < 3; c++)
                values[3 * k + c] = (uint8_t)((sum[c] + count / 2) / count);
        }
        for (int k = 0; k < n_layer; k++) {
            memcpy(level->rgb + 3 * (size_t)layer[k], values + 3 * k, 3);
            state[layer[k]] = 0;
        }
        int n_next = 0;
        for (int k = 0; k < n_layer; k++) {
            int i = layer[k], x = i % w, y = i / w;
            for (int dy = -1; dy <= 1; dy++)
                for (int dx = -1; dx <= 1; dx++) {
                    int nx = x + dx, ny = y + dy;
                    if (nx < 0 || ny < 0 || nx >= w || ny >= h || state[ny * w + nx] != 1)
                        continue;
                    state[ny * w + nx] = 2;
                    next[n_next++] = ny * w + nx;
                }
        }
        int32_t *swap = layer;
        layer = next;
        next = swap;
        n_layer = n_next;
    }
    status = PM_OK;
done:
    free(state);
    free(layer);
    free(next);
    free(values);
    return status;
}
