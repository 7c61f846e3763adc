#!/usr/bin/env bash
# CI's check that the benchmark harness still runs end to end: bench/run.sh with 2,000 licenses,
# one 2-second round per target, PostgreSQL modes when PostgreSQL answers, no profile.
# Fails when the harness breaks (a server does not start, wrk fails, a request errors), never on
# a slow number; the results stay in the run directory, not in bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
export BENCH_DURATION=${BENCH_DURATION:-2}
export BENCH_ROUNDS=${BENCH_ROUNDS:-1}
export BENCH_SEARCH_REQUESTS=${BENCH_SEARCH_REQUESTS:-5}
export BENCH_PROFILE=0
export BENCH_OUT=""
exec bench/run.sh "${BENCH_SMOKE_N:-2000}"
