#!/usr/bin/env bash
# sppo-bench as a CI regression gate: evaluate the candidate checkpoint, check it against the published card (or a
# reference JSON, or an earlier run directory), publish the markdown table as the job summary and the JUnit XML as a
# test report, and fail the job (exit 1) on a regression. Copy it next to your workflow (sppo-bench-regression.yml).
#
# Environment (set in the workflow):
#   CANDIDATE        the checkpoint to evaluate: a local folder or a hub id (required)
#   REFERENCE        the published card (.md), a reference JSON, or a run directory (required)
#   LABEL            the candidate's row label; must be the reference's model name (check pairs rows by label)
#   SUITES           comma-separated suites (default: ifeval,alpaca_eval,mt_bench)
#   EVAL_ARGS        more `sppo-bench eval` options (judge, backend, --suite-limit ...), word-split
#   CHECK_ARGS       more `sppo-bench check` options (--abs-tol, --sigma, --allow-partial ...), word-split
#   OUT              where the run, the table and the JUnit XML go (default: sppo-ci)
#   SPPO_BENCH_HOME  the data home and the content caches (answers, judgments): restore it between runs
#   GITHUB_STEP_SUMMARY  set by GitHub Actions; elsewhere the summary is written to $OUT/summary.md
set -euo pipefail
: "${CANDIDATE:?set CANDIDATE to the checkpoint to evaluate}" "${REFERENCE:?set REFERENCE to the published card}"
: "${LABEL:?set LABEL to the model name on the reference card}"
OUT=${OUT:-sppo-ci}
SUITES=${SUITES:-ifeval,alpaca_eval,mt_bench}
summary=${GITHUB_STEP_SUMMARY:-$OUT/summary.md}
mkdir -p "$OUT"
rm -f "$OUT/check.md" "$OUT/check.err" "$OUT/junit.xml"

# 1. evaluate (a rerun resumes: finished units are kept, answers and judgments come from the restored caches)
# shellcheck disable=SC2086
if ! sppo-bench eval "$CANDIDATE" --label "$LABEL" --suites "$SUITES" --out "$OUT/run" ${EVAL_ARGS:-} 2> "$OUT/eval.err"; then
  cat "$OUT/eval.err" >&2
  { echo "## sppo-bench: evaluation of \`$CANDIDATE\` failed"; echo; echo '```'; tail -n 5 "$OUT/eval.err"; echo '```'; } >> "$summary"
  exit 2
fi

# 2. check against the reference: exit 0 pass, 1 regression, 2 bad input
set +e
# shellcheck disable=SC2086
sppo-bench check --reference "$REFERENCE" --results "$OUT/run" --junit "$OUT/junit.xml" ${CHECK_ARGS:-} \
  > "$OUT/check.md" 2> "$OUT/check.err"
rc=$?
set -e

# 3. the job summary: the table (with the reason of every failing row) or the one-line error
{
  echo "## sppo-bench regression check: \`$LABEL\` against \`$(basename "$REFERENCE")\`"
  echo
  if [ -s "$OUT/check.md" ]; then cat "$OUT/check.md"; fi
  if [ -s "$OUT/check.err" ]; then echo '```'; cat "$OUT/check.err"; echo '```'; fi
  case $rc in
    0) echo; echo "**passed**: no metric dropped beyond its tolerance." ;;
    1) echo; echo "**regression**: the REGRESSION rows above dropped beyond their tolerance; the job fails." ;;
    *) echo; echo "**check could not run** (exit $rc)." ;;
  esac
} >> "$summary"
cat "$OUT/check.md"
cat "$OUT/check.err" >&2
exit $rc
