#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang with AddressSanitizer + UBSan)
# in build-fuzz/ and runs each for SECONDS (default 60), starting from the
# committed seeds in fuzz/corpus/<target>/ and what earlier runs found in
# build-fuzz/corpus/<target>/. Fails if any target finds a crash, a leak, a
# timeout (-timeout) or an allocation past -rss_limit_mb / -malloc_limit_mb;
# the input that did it is in build-fuzz/findings/<target>/. Prints each
# target's executions.
#   scripts/fuzz.sh [SECONDS] [TARGET ...]   (CI runs scripts/fuzz.sh 30)
# A finding becomes a regression case: add the input to the broken-file
# corpus (scripts/fixtures/gen_bad_files.py) with its expected message.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
shift || true
JOBS=${JOBS:-$(nproc)}
ALL_TARGETS=(fuzz_gguf_model fuzz_hf_safetensors fuzz_hf_config fuzz_hf_tokenizer_json fuzz_tokenize
  fuzz_chat_template fuzz_atlas fuzz_http_routes)
[ $# -gt 0 ] && TARGETS=("$@") || TARGETS=("${ALL_TARGETS[@]}")

CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DNEURONLENS_FUZZ=ON \
  -DNEURONLENS_BUILD_TESTS=OFF -DNEURONLENS_BUILD_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS" --target "${TARGETS[@]}"

# The server target serves the tiny fixture model and its atlas, made here
# by the Release CLI (scripts/test.sh has built it; else it is built now).
fixtures=build-fuzz/fixtures
mkdir -p "$fixtures"
if [ ! -f "$fixtures/tiny.db" ]; then
  [ -x build/neuronlens ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null &&
    cmake --build build -j"$JOBS" --target neuronlens; }
  .venv/bin/python scripts/fixtures/gen_tiny_llama.py --out "$fixtures" >/dev/null
  build/neuronlens map "$fixtures/tiny_llama.gguf" -o "$fixtures/tiny.db" >/dev/null
fi
if [ ! -f "$fixtures/tiny-record.db" ]; then  # the atlas target's second seed: a map with a record
  cp "$fixtures/tiny.db" "$fixtures/tiny-record.db"
  build/neuronlens record "$fixtures/tiny_llama.gguf" --corpus data/corpus/sentences.txt -o "$fixtures/tiny-record.db" \
    --seq-len 32 --contexts 2 --window 2 --max-tokens 400 >/dev/null
fi
export NEURONLENS_FUZZ_ATLAS="$PWD/$fixtures/tiny.db" NEURONLENS_FUZZ_MODEL="$PWD/$fixtures/tiny_llama.gguf"
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1
export OMP_NUM_THREADS=1  # one input at a time; threads only blur a report

dict_for() {
  case $1 in
    fuzz_gguf_model) echo fuzz/dict/gguf.dict ;;
    fuzz_http_routes) echo fuzz/dict/http.dict ;;
    fuzz_hf_config | fuzz_hf_tokenizer_json | fuzz_hf_safetensors | fuzz_chat_template) echo fuzz/dict/json.dict ;;
    *) echo "" ;;
  esac
}

failed=0
printf '%-24s %10s %8s %s\n' target executions exec/s result
for t in "${TARGETS[@]}"; do
  corpus=build-fuzz/corpus/$t findings=build-fuzz/findings/$t log=build-fuzz/logs/$t.log
  mkdir -p "$corpus" "$findings" build-fuzz/logs
  # Committed seeds where a target has them (git keeps no empty folder; the
  # atlas target's seed is the tiny atlas copied in below).
  seeds=()
  [ -d "fuzz/corpus/${t#fuzz_}" ] && seeds=(fuzz/corpus/"${t#fuzz_}")
  [ "$t" = fuzz_atlas ] && cp "$fixtures/tiny.db" "$fixtures/tiny-record.db" "$corpus/"
  dict=$(dict_for "$t")
  args=(-max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -malloc_limit_mb=4096 -timeout=10 -max_len=16384
    -print_final_stats=1 -artifact_prefix="$findings/")
  [ -n "$dict" ] && args+=(-dict="$dict")
  rc=0
  build-fuzz/fuzz/"$t" "${args[@]}" "$corpus" "${seeds[@]}" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  if [ "$rc" -eq 0 ]; then result=ok; else result="FAILED (exit $rc; see $log, input in $findings/)"; failed=1; fi
  printf '%-24s %10s %8s %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
  if [ "$rc" -ne 0 ]; then grep -m1 -A12 -E '^==[0-9]+==ERROR|runtime error|deadly signal|out-of-memory|timeout' "$log" || tail -20 "$log"; fi
done
exit $failed
