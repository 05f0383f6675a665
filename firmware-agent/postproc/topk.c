/* SPDX-License-Identifier: MIT */
/*
 * Classifier post-processing: the k best classes of a float output vector, optionally as
 * softmax probabilities. Insertion into the caller's k-entry array, no allocation.
 */
#include "postproc.h"

#include <math.h>

/* Does value a (index ia) rank before value b (index ib)? NaN ranks last. */
static int ranks_before(float a, uint32_t ia, float b, uint32_t ib)
{
    if (isnan(a))
        return isnan(b) && ia < ib;
    if (isnan(b))
        return 1;
    if (a != b)
        return a > b;
    return ia < ib;
}

int kfa_topk(const float *values, size_t count, int softmax, struct kfa_class_score *out, size_t k)
{
    size_t n = 0;

    if ((!values && count) || (!out && k) || count > UINT32_MAX)
        return KFA_PP_E_ARG;
    if (k > count)
        k = count;
    if (k > (size_t)INT32_MAX)
        return KFA_PP_E_ARG;
    for (size_t i = 0; i < count && k; i++) {
        uint32_t id = (uint32_t)i;
        size_t pos;
        if (n == k && !ranks_before(values[i], id, out[n - 1].score, out[n - 1].class_id))
            continue;
        if (n < k)
            n++;
        pos = n - 1;
        while (pos > 0 && ranks_before(values[i], id, out[pos - 1].score, out[pos - 1].class_id)) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos].class_id = id;
        out[pos].score = values[i];
    }
    if (softmax && n) {
        float mx = -INFINITY, sum = 0.0f;
        for (size_t i = 0; i < count; i++)
            if (values[i] > mx)
                mx = values[i];
        for (size_t i = 0; i < count; i++)
            if (!isnan(values[i]))
                sum += expf(values[i] - mx);
        for (size_t i = 0; i < n; i++)
            out[i].score = isnan(out[i].score) ? 0.0f : expf(out[i].score - mx) / sum;
    }
    return (int)n;
}
