# shellcheck shell=bash disable=SC2154  # the variables are scripts/gpu-check's
# Sourced by scripts/gpu-check: running a stage under its time limit and the
# whole run's budget, recording its status, and rewriting summary.txt after
# every stage, so that the summary reaches OUT even when a later stage (or the
# whole command) is cut off.
#
# A stage is a shell function in stages.sh, run in a child bash under
# `timeout`, its output appended to one log in OUT. It ends with
#   0   ok
#   77  skipped (no GPU, or --dry-run): its detail line says why
#   other: failed
# and writes its one-line detail with `detail TEXT` (and, optionally, lines
# for the summary with `figures`).

results=()

# record STAGE STATUS SECONDS DETAIL
record() {
    results+=("$(printf '%-11s %-16s %4ss  %s' "$1" "$2" "$3" "$4")")
    echo "gpu-check: $1: $2 (${3}s) $4"
    write_summary
}

write_summary() {
    {
        echo "scripts/gpu-check$( ((dry_run)) && echo ' --dry-run'), $(date -u '+%Y-%m-%d %H:%M:%S UTC')," \
            "$(($(date +%s) - start))s of ${budget}s"
        echo "machine: $gpu_name"
        echo "bundle: $bundle_description"
        echo
        printf '%s\n' "${results[@]}"
        local figures
        for figures in "$work"/figures-*; do
            [ -s "$figures" ] || continue
            echo
            cat "$figures"
        done
        echo
        if ((finished)); then
            if ((failed)); then echo "result: FAILED"; else echo "result: ok"; fi
        else
            echo "result: running (this summary is rewritten after each stage)"
        fi
    } >"$out/summary.txt"
}

# run_stage NAME LOG LIMIT FUNCTION: FUNCTION from stages.sh under `timeout`,
# its limit cut to what is left of the budget.
run_stage() {
    local name=$1 log=$out/$2 limit=$3 function=$4
    local left=$((start + budget - $(date +%s)))
    if ((left < 15)); then
        record "$name" "NOT RUN" 0 "out of time (budget ${budget}s)"
        failed=1
        return
    fi
    ((limit > left - 5)) && limit=$((left - 5))
    printf '\n===== %s (limit %ss): %s\n' "$name" "$limit" "$function" >>"$log"
    : >"$work/detail"
    local began rc
    began=$(date +%s)
    timeout --kill-after=5 "$limit" bash -c "source '$lib/stages.sh'; $function" >>"$log" 2>&1 </dev/null
    rc=$?
    local seconds=$(($(date +%s) - began)) text
    text=$(tail -1 "$work/detail")
    case $rc in
        0) record "$name" "ok" "$seconds" "$text" ;;
        77) record "$name" "skipped" "$seconds" "$text" ;;
        124 | 137) record "$name" "TIMED OUT" "$seconds" "limit ${limit}s; $text"; failed=1 ;;
        *) record "$name" "FAILED (exit $rc)" "$seconds" "$text"; failed=1 ;;
    esac
}
