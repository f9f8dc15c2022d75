#!/usr/bin/env bash
# experiment_clamp.sh: does clamping one neuron make the model talk about a
# concept? (the test of Davies, arXiv 2501.02688, "clamp the dog neuron").
#
# Usage:
#   scripts/experiment_clamp.sh MODEL LAYER:NEURON VALUE REGEX PROMPT [PROBE_TOKEN ...]
#
#   MODEL        GGUF file or Hugging Face folder
#   LAYER:NEURON the neuron to clamp (MLP post-activation act(gate)*up)
#   VALUE        the clamp value, or FACTORx (e.g. 2x, -1.5x): FACTOR times the
#                neuron's max |activation| recorded over a corpus in $ATLAS
#                (`neuronlens record MODEL --corpus FILE -o ATLAS`); without a
#                record, choose it from the neuron's activation range:
#                `neuronlens probe MODEL -p TEXT --tokens ' dog' --show-neuron L:I`
#   REGEX        the concept, an extended regex matched case-insensitively
#                against each answer, e.g. 'dog|puppy|pupp'
#   PROMPT       the user message (rendered with the model's chat template)
#   PROBE_TOKEN  single tokens whose next-token probability at the end of the
#                chat prompt is printed without/with the clamp (default " dog")
#
# For seeds 1..SEEDS it runs `neuronlens generate --chat` with sampling at
# TEMP, once without and once with --clamp, and counts the answers that match
# REGEX. Everything goes through the neuronlens CLI; the rest is bash, grep,
# awk.
#
# Environment: NEURONLENS (the CLI, default build-exp/neuronlens), ATLAS (an
# atlas with a record of MODEL, for VALUE FACTORx), SEEDS (20),
# TEMP (0.7), NTOK (tokens per answer, 40), JOBS (parallel generate runs, 1),
# OUTDIR (where answers are kept, default a new temporary folder),
# EXAMPLES (answers printed per side, 3), WEIGHTS (generate/probe --weights,
# quantized).
set -euo pipefail

if [[ $# -lt 5 ]]; then
  sed -n '2,31p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
MODEL=$1 NEURON=$2 VALUE=$3 REGEX=$4 PROMPT=$5
shift 5
TOKENS=("$@")
[[ ${#TOKENS[@]} -eq 0 ]] && TOKENS=(" dog")

CLI=${NEURONLENS:-build-exp/neuronlens}
SEEDS=${SEEDS:-20}
TEMP=${TEMP:-0.7}
NTOK=${NTOK:-40}
JOBS=${JOBS:-1}
EXAMPLES=${EXAMPLES:-3}
WEIGHTS=${WEIGHTS:-quantized}
OUTDIR=${OUTDIR:-$(mktemp -d)}
mkdir -p "$OUTDIR"
if [[ $VALUE =~ ^(-?[0-9]*\.?[0-9]+)x$ ]]; then
  FACTOR=${BASH_REMATCH[1]}
  [[ -n ${ATLAS:-} ]] || { echo "VALUE $VALUE needs ATLAS, an atlas with a record of the model" >&2; exit 2; }
  MAX_ABS=$("$CLI" show --json "$ATLAS" "${NEURON%%:*}:gate:${NEURON##*:}" --contexts 0 |
    grep -o '"max_abs": *[-0-9.eE+]*' | head -1 | awk '{print $2}')
  [[ -n $MAX_ABS ]] || { echo "$ATLAS holds no record of neuron $NEURON (run neuronlens record)" >&2; exit 2; }
  VALUE=$(awk -v f="$FACTOR" -v m="$MAX_ABS" 'BEGIN { printf "%.4g", f * m }')
  echo "value:   ${FACTOR} x the recorded max |activation| ${MAX_ABS} = $VALUE"
fi
CLAMP="$NEURON=$VALUE"
# Parallel runs share the cores: give each its share of threads, or their
# OpenMP teams spin against each other (2 runs x 2 threads on 2 cores ran
# ten times slower than one run at a time).
if [[ -z ${OMP_NUM_THREADS:-} ]]; then
  OMP_NUM_THREADS=$(($(nproc) / JOBS))
  ((OMP_NUM_THREADS < 1)) && OMP_NUM_THREADS=1
  export OMP_NUM_THREADS
fi

echo "model:   $MODEL"
echo "prompt:  $PROMPT (chat)"
echo "clamp:   $CLAMP"
echo "concept: /$REGEX/i"
echo "runs:    seeds 1..$SEEDS, temperature $TEMP, $NTOK tokens; answers in $OUTDIR"

# One generate run; its answer goes to $OUTDIR/<side>-<seed>.txt.
run_one() {
  local side=$1 seed=$2
  local extra=()
  [[ $side == with ]] && extra=(--clamp "$CLAMP")
  "$CLI" generate "$MODEL" --weights "$WEIGHTS" --chat -p "$PROMPT" --seed "$seed" --temperature "$TEMP" -n "$NTOK" "${extra[@]}" \
    >"$OUTDIR/$side-$seed.txt"
}

for side in without with; do
  for ((seed = 1; seed <= SEEDS; seed++)); do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n; done
    run_one "$side" "$seed" &
  done
done
wait

echo
printf '%-8s %s\n' side "answers mentioning /$REGEX/i"
for side in without with; do
  hits=0
  for ((seed = 1; seed <= SEEDS; seed++)); do
    if grep -Eiq -- "$REGEX" "$OUTDIR/$side-$seed.txt"; then hits=$((hits + 1)); fi
  done
  printf '%-8s %d/%d\n' "$side" "$hits" "$SEEDS"
done

echo
echo "next-token probability at the end of the chat prompt (probe):"
probe_args=()
for t in "${TOKENS[@]}"; do probe_args+=(--tokens "$t"); done
"$CLI" probe "$MODEL" --weights "$WEIGHTS" --chat -p "$PROMPT" "${probe_args[@]}" --clamp "$CLAMP" --json |
  awk '
    /"p_with":/    { gsub(/[ ,]/, "", $2); with = $2 }
    /"p_without":/ { gsub(/[ ,]/, "", $2); without = $2 }
    /"text":/ && with != "" {
      sub(/^[^:]*: /, ""); sub(/,$/, "")
      printf "  %-12s without %-12.4g with %.4g\n", $0, without, with
      with = ""
    }'

for side in without with; do
  echo
  echo "example answers $side the clamp:"
  for ((seed = 1; seed <= SEEDS && seed <= EXAMPLES; seed++)); do
    printf '  [seed %d] %s\n' "$seed" "$(tr '\n' ' ' <"$OUTDIR/$side-$seed.txt")"
  done
done
