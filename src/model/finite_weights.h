// Weights that hold NaN or infinity make every logit they touch NaN, and a
// top-k of NaNs is a silently wrong answer. The loader does not scan values
// (it maps the file), so the places that read weights into floats for the
// map and the decoder check them as they go.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "neuronlens/error.h"

namespace neuronlens {

// Throws an Error of `kind` naming the first non-finite value of v[0, n):
// "<where(index)> holds NaN<after>". The default is a model file's weights.
template <typename Where>
void require_finite(const float* v, int64_t n, Where where, ErrorKind kind = ErrorKind::BadFile,
                    const char* after = "; the model file's weights are broken") {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(v[i])) throw Error(kind, where(i) + " holds " + (std::isnan(v[i]) ? "NaN" : "infinity") + after);
  }
}

}  // namespace neuronlens
