/* Unit tests of the PatchMatch engine, run under AddressSanitizer and
 * UndefinedBehaviorSanitizer by `make -C services/patchmatch test-c`.
 * Each test prints one line; the process exits non-zero if any check fails. */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "patchmatch.h"

static int failures = 0;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "  FAILED %s:%d: %s\n", __FILE__, __LINE__, #cond);    \
            failures++;                                                            \
        }                                                                          \
    } while (0)

#define CHECK_STATUS(got, want)                                                    \
    do {                                                                           \
        int got_ = (got), want_ = (want);                                          \
        if (got_ != want_) {                                                       \
            fprintf(stderr, "  FAILED %s:%d: status %d (%s), expected %d (%s)\n",  \
                    __FILE__, __LINE__, got_, pm_status_message(got_), want_,      \
                    pm_status_message(want_));                                     \
            failures++;                                                            \
        }                                                                          \
    } while (0)

typedef struct image {
    int w, h;
    uint8_t *rgb;
    uint8_t *mask;
} image;

/* Horizontal stripes of period 8 over a soft gradient: a texture with an
 * exact answer that a coherent fill reproduces. */
static image make_stripes(int w, int h)
{
    image im = {w, h, malloc((size_t)w * h * 3), calloc((size_t)w * h, 1)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = im.rgb + 3 * ((size_t)y * w + x);
            int band = (y / 4) % 2;
            p[0] = (uint8_t)(band ? 200 : 40);
            p[1] = (uint8_t)(band ? 60 : 180);
            p[2] = (uint8_t)(90 + (x * 40) / w);
        }
    return im;
}

static void free_image(image *im)
{
    free(im->rgb);
    free(im->mask);
}

static void mask_disk(image *im, double cx, double cy, double r)
{
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) <= r * r)
                im->mask[y * im->w + x] = 1;
}

static void mask_rect(image *im, int x0, int y0, int x1, int y1)
{
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            im->mask[y * im->w + x] = 255;
}

/* Paints the masked pixels magenta, a colour found nowhere else. */
static void paint_hole(image *im)
{
    for (int i = 0; i < im->w * im->h; i++)
        if (im->mask[i]) {
            im->rgb[3 * i] = 255;
            im->rgb[3 * i + 1] = 0;
            im->rgb[3 * i + 2] = 255;
        }
}

static int run(const image *im, uint8_t *out, uint64_t seed)
{
    pm_options o;
    pm_default_options(&o);
    o.seed = seed;
    return pm_inpaint(im->rgb, im->w, im->h, im->mask, im->w, im->h, out, &o);
}

/* Outside the mask the output equals the input byte for byte; inside, no
 * pixel is left magenta. */
static void check_fill(const image *im, const uint8_t *out)
{
    int outside_changed = 0, magenta = 0;
    for (int i = 0; i < im->w * im->h; i++) {
        const uint8_t *a = im->rgb + 3 * i, *b = out + 3 * i;
        if (!im->mask[i])
            outside_changed += memcmp(a, b, 3) != 0;
        else
            magenta += b[0] == 255 && b[1] == 0 && b[2] == 255;
    }
    CHECK(outside_changed == 0);
    CHECK(magenta == 0);
}

static void test_fill_continues_stripes(void)
{
    image im = make_stripes(96, 80);
    image truth = make_stripes(96, 80);
    mask_disk(&im, 48, 40, 14);
    paint_hole(&im);
    uint8_t *out = malloc((size_t)im.w * im.h * 3);
    CHECK_STATUS(run(&im, out, 1), PM_OK);
    check_fill(&im, out);
    double err = 0;
    int n = 0;
    for (int i = 0; i < im.w * im.h; i++)
        if (im.mask[i]) {
            for (int c = 0; c < 3; c++)
                err += fabs((double)out[3 * i + c] - truth.rgb[3 * i + c]);
            n += 3;
        }
    /* the stripes alternate by 140-160 levels: a smeared fill is far off */
    CHECK(err / n < 20.0);
    printf("fill continues stripes: mean abs error %.2f\n", err / n);
    free(out);
    free_image(&im);
    free_image(&truth);
}

static void test_determinism(void)
{
    image im = make_stripes(64, 64);
    mask_rect(&im, 20, 18, 44, 40);
    size_t bytes = (size_t)im.w * im.h * 3;
    uint8_t *a = malloc(bytes), *b = malloc(bytes);
    CHECK_STATUS(run(&im, a, 42), PM_OK);
    CHECK_STATUS(run(&im, b, 42), PM_OK);
    CHECK(memcmp(a, b, bytes) == 0);
    CHECK_STATUS(run(&im, b, 43), PM_OK); /* another seed: valid, may differ */
    check_fill(&im, b);
    printf("same seed, same output\n");
    free(a);
    free(b);
    free_image(&im);
}

typedef struct job {
    const image *im;
    uint8_t *out;
    int status;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->status = run(j->im, j->out, 7);
    return NULL;
}

static void test_concurrent_calls(void)
{
    image im = make_stripes(80, 64);
    mask_disk(&im, 30, 30, 12);
    size_t bytes = (size_t)im.w * im.h * 3;
    uint8_t *serial = malloc(bytes);
    CHECK_STATUS(run(&im, serial, 7), PM_OK);
    job jobs[3];
    pthread_t threads[3];
    for (int k = 0; k < 3; k++) {
        jobs[k] = (job){&im, malloc(bytes), -100};
        CHECK(pthread_create(&threads[k], NULL, run_job, &jobs[k]) == 0);
    }
    for (int k = 0; k < 3; k++) {
        pthread_join(threads[k], NULL);
        CHECK_STATUS(jobs[k].status, PM_OK);
        CHECK(memcmp(jobs[k].out, serial, bytes) == 0);
        free(jobs[k].out);
    }
    printf("concurrent calls match the serial one\n");
    free(serial);
    free_image(&im);
}

static void test_border_masks(void)
{
    const int boxes[][4] = {
        {0, 0, 12, 10},   /* top-left corner */
        {50, 0, 64, 64},  /* the whole right edge, top to bottom */
        {0, 54, 64, 64},  /* the whole bottom edge */
        {0, 20, 3, 30},   /* a sliver on the left edge */
    };
    for (size_t k = 0; k < sizeof boxes / sizeof boxes[0]; k++) {
        image im = make_stripes(64, 64);
        mask_rect(&im, boxes[k][0], boxes[k][1], boxes[k][2], boxes[k][3]);
        paint_hole(&im);
        uint8_t *out = malloc((size_t)im.w * im.h * 3);
        CHECK_STATUS(run(&im, out, 3), PM_OK);
        check_fill(&im, out);
        free(out);
        free_image(&im);
    }
    printf("masks touching the borders\n");
}

static void test_one_pixel_mask(void)
{
    image im = make_stripes(40, 30);
    im.mask[15 * 40 + 20] = 1;
    paint_hole(&im);
    uint8_t *out = malloc((size_t)im.w * im.h * 3);
    CHECK_STATUS(run(&im, out, 0), PM_OK);
    check_fill(&im, out);
    image corner = make_stripes(40, 30);
    corner.mask[0] = 1;
    paint_hole(&corner);
    CHECK_STATUS(run(&corner, out, 0), PM_OK);
    check_fill(&corner, out);
    printf("one-pixel masks\n");
    free(out);
    free_image(&im);
    free_image(&corner);
}

static void test_all_zero_mask(void)
{
    image im = make_stripes(32, 24);
    size_t bytes = (size_t)im.w * im.h * 3;
    uint8_t *out = malloc(bytes);
    CHECK_STATUS(run(&im, out, 0), PM_OK);
    CHECK(memcmp(out, im.rgb, bytes) == 0);
    /* in place: out aliases the image */
    memcpy(out, im.rgb, bytes);
    CHECK_STATUS(run(&im, im.rgb, 0), PM_OK);
    CHECK(memcmp(out, im.rgb, bytes) == 0);
    printf("empty mask leaves the image unchanged\n");
    free(out);
    free_image(&im);
}

static void test_all_ones_mask(void)
{
    image im = make_stripes(32, 24);
    memset(im.mask, 1, (size_t)im.w * im.h);
    size_t bytes = (size_t)im.w * im.h * 3;
    uint8_t *out = malloc(bytes);
    memset(out, 0xAB, bytes);
    CHECK_STATUS(run(&im, out, 0), PM_ERR_NOTHING_TO_SAMPLE);
    int untouched = 1;
    for (size_t i = 0; i < bytes; i++)
        untouched &= out[i] == 0xAB;
    CHECK(untouched);
    printf("full mask: %s\n", pm_status_message(PM_ERR_NOTHING_TO_SAMPLE));
    free(out);
    free_image(&im);
}

static void test_almost_full_mask(void)
{
    /* known pixels too few for any 9x9 patch: smaller patches take over */
    image im = make_stripes(30, 30);
    memset(im.mask, 1, (size_t)im.w * im.h);
    im.mask[5 * 30 + 5] = 0;
    im.mask[5 * 30 + 6] = 0;
    paint_hole(&im);
    uint8_t *out = malloc((size_t)im.w * im.h * 3);
    CHECK_STATUS(run(&im, out, 0), PM_OK);
    check_fill(&im, out);
    printf("two known pixels are enough to fill from\n");
    free(out);
    free_image(&im);
}

static void test_bad_arguments(void)
{
    image im = make_stripes(16, 16);
    uint8_t out[16 * 16 * 3];
    pm_options o;
    pm_default_options(&o);
    CHECK_STATUS(pm_inpaint(im.rgb, 0, 16, im.mask, 0, 16, out, &o), PM_ERR_EMPTY_IMAGE);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, -1, im.mask, 16, -1, out, &o), PM_ERR_EMPTY_IMAGE);
    CHECK_STATUS(pm_inpaint(im.rgb, PM_MAX_SIDE + 1, 1, im.mask, PM_MAX_SIDE + 1, 1, out, &o),
                 PM_ERR_TOO_LARGE);
    CHECK_STATUS(pm_inpaint(im.rgb, 10000, 10000, im.mask, 10000, 10000, out, &o),
                 PM_ERR_TOO_LARGE);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 15, out, &o), PM_ERR_MASK_SIZE);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 15, 16, out, &o), PM_ERR_MASK_SIZE);
    CHECK_STATUS(pm_inpaint(NULL, 16, 16, im.mask, 16, 16, out, &o), PM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, NULL, 16, 16, out, &o), PM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, NULL, &o), PM_ERR_NULL_ARGUMENT);
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, NULL), PM_ERR_NULL_ARGUMENT);
    pm_options bad = o;
    bad.patch_size = 8;
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, &bad), PM_ERR_BAD_OPTION);
    bad = o;
    bad.patch_size = PM_PATCH_SIZE_MAX + 2;
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, &bad), PM_ERR_BAD_OPTION);
    bad = o;
    bad.em_iterations = 0;
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, &bad), PM_ERR_BAD_OPTION);
    bad = o;
    bad.pm_iterations = PM_PM_ITERATIONS_MAX + 1;
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, &bad), PM_ERR_BAD_OPTION);
    bad = o;
    bad.context = NAN;
    CHECK_STATUS(pm_inpaint(im.rgb, 16, 16, im.mask, 16, 16, out, &bad), PM_ERR_BAD_OPTION);
    CHECK(strcmp(pm_status_message(-1000), "unknown status") == 0);
    CHECK(pm_abi_version() == PM_ABI_VERSION);
    printf("bad dimensions and options are refused\n");
    free_image(&im);
}

typedef struct canceller {
    int32_t *flag;
    long delay_ms;
} canceller;

static void *cancel_later(void *arg)
{
    canceller *c = arg;
    struct timespec ts = {c->delay_ms / 1000, (c->delay_ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
    __atomic_store_n(c->flag, 1, __ATOMIC_RELAXED);
    return NULL;
}

static void test_cancel_and_deadline(void)
{
    /* a job far longer than the delays below, even without the sanitizers */
    image im = make_stripes(1024, 1024);
    mask_rect(&im, 100, 100, 900, 900);
    uint8_t *out = malloc((size_t)im.w * im.h * 3);
    pm_options o;
    pm_default_options(&o);
    o.em_iterations = PM_EM_ITERATIONS_MAX;
    o.pm_iterations = PM_PM_ITERATIONS_MAX;

    int32_t flag = 1; /* already set: stops at the first check */
    o.cancel = &flag;
    CHECK_STATUS(pm_inpaint(im.rgb, im.w, im.h, im.mask, im.w, im.h, out, &o),
                 PM_ERR_CANCELLED);

    flag = 0; /* set by another thread while the engine runs */
    canceller c = {&flag, 50};
    pthread_t thread;
    CHECK(pthread_create(&thread, NULL, cancel_later, &c) == 0);
    CHECK_STATUS(pm_inpaint(im.rgb, im.w, im.h, im.mask, im.w, im.h, out, &o),
                 PM_ERR_CANCELLED);
    pthread_join(thread, NULL);

    o.cancel = NULL;
    o.deadline_ms = 30;
    CHECK_STATUS(pm_inpaint(im.rgb, im.w, im.h, im.mask, im.w, im.h, out, &o),
                 PM_ERR_TIMEOUT);
    printf("cancellation and deadline stop the engine\n");
    free(out);
    free_image(&im);
}

int main(void)
{
    test_fill_continues_stripes();
    test_determinism();
    test_concurrent_calls();
    test_border_masks();
    test_one_pixel_mask();
    test_all_zero_mask();
    test_all_ones_mask();
    test_almost_full_mask();
    test_bad_arguments();
    test_cancel_and_deadline();
    if (failures) {
        fprintf(stderr, "%d check(s) FAILED\n", failures);
        return 1;
    }
    printf("all PatchMatch C tests passed\n");
    return 0;
}
