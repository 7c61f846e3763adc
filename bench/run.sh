#!/usr/bin/env bash
# keyward's benchmark, one command: bench/run.sh [N]   (N licenses, default 1,000,000)
#
# Builds release binaries, generates N licenses on SQLite (and on PostgreSQL when it answers),
# measures generation, start-up, a cold validation sweep, memory, then drives the bare signed
# ceiling and keyward with wrk in alternating rounds (validate, then activate), times admin
# searches at N, profiles validate with perf, and writes the results table.
#
# Knobs (environment): BENCH_DURATION seconds per round (10), BENCH_ROUNDS (2: A/B/A/B),
# BENCH_THREADS (2) and BENCH_CONNECTIONS (64) per target, BENCH_SAMPLE_KEYS (100000) keys the
# wrk rounds draw from, BENCH_SEARCH_REQUESTS (50) per kind of search, BENCH_PROFILE (1),
# BENCH_POSTGRES (1; 0 skips the PostgreSQL modes), BENCH_OUT (bench/results/latest.md; empty:
# only the run directory), BENCH_PG_ADMIN (psql connection for CREATE/DROP DATABASE).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=${1:-1000000}
DURATION=${BENCH_DURATION:-10}
ROUNDS=${BENCH_ROUNDS:-2}
THREADS=${BENCH_THREADS:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
SAMPLE=${BENCH_SAMPLE_KEYS:-100000}
SEARCH_REQUESTS=${BENCH_SEARCH_REQUESTS:-50}
PROFILE=${BENCH_PROFILE:-1}
POSTGRES=${BENCH_POSTGRES:-1}
OUT=${BENCH_OUT-bench/results/latest.md}
PG_ADMIN=${BENCH_PG_ADMIN:-"-h 127.0.0.1 -U postgres -d test"}
PG_BASE_URL=${BENCH_PG_BASE_URL:-postgres://postgres@127.0.0.1:5432}

[[ $N =~ ^[0-9]+$ && $N -ge 10 ]] || { echo "bench: N must be a number of at least 10" >&2; exit 2; }
for v in DURATION ROUNDS THREADS CONNECTIONS SAMPLE SEARCH_REQUESTS; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "bench: BENCH_$v must be a positive number" >&2; exit 2; }
done
# The settings of the caller's own keyward must not leak into the benchmark's servers.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^KEYWARD_' || true)

say() { printf '\n== %s\n' "$*" >&2; }
fail() { echo "bench: $*" >&2; exit 1; }

# --- tools and binaries ------------------------------------------------------------------------
install_package() { # command package
  command -v "$1" >/dev/null && return 0
  say "installing $2"
  apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y "$2" >/dev/null; } \
    || fail "cannot install $2 (needed for $1)"
}
install_package wrk wrk
install_package sqlite3 sqlite3
install_package curl curl

say "building release binaries"
(cd "$ROOT" && cargo build --release -p keyward-server -p keyward-bench 2>&1 | tail -n 3 >&2)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
KEYWARD=$TARGET_DIR/release/keyward
CEILING=$TARGET_DIR/release/ceiling
BENCH=$TARGET_DIR/release/keyward-bench
for bin in "$KEYWARD" "$CEILING" "$BENCH"; do [[ -x $bin ]] || fail "$bin was not built"; done

RUN=$(mktemp -d "${TMPDIR:-/tmp}/keyward-bench.XXXXXX")
mkdir -p "$RUN/logs" "$RUN/wrk"
FACTS=$RUN/facts.env
fact() { echo "$1=$2" >>"$FACTS"; }
TOKEN=kw_bench_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
PG_DB=""
PIDS=()

# --- processes: every one started here is stopped on exit ------------------------------------
stop_pid() { # pid: TERM, then KILL after 30 s; forgotten afterwards, so a reused pid is never hit
  local pid=$1 kept=() p
  for p in "${PIDS[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
  PIDS=("${kept[@]}")
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local status=$?
  local pid
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  if [[ -n $PG_DB ]]; then
    # shellcheck disable=SC2086
    psql $PG_ADMIN -qAtc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || echo "bench: could not drop $PG_DB" >&2
  fi
  rm -rf "$RUN/sqlite-data" "$RUN/pg-data" "$RUN/perf.data" "$RUN"/keys.*.all
  echo "bench: run directory (logs, raw wrk outputs): $RUN" >&2
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits for "<prefix>ADDR" on a server's stdout; prints ADDR.
listening_address() { # file prefix pid
  for _ in $(seq 1 1200); do
    if grep -q "$2" "$1" 2>/dev/null; then
      grep -m1 "$2" "$1" | sed "s|.*$2||"
      return 0
    fi
    kill -0 "$3" 2>/dev/null || { cat "${1%.out}.err" >&2 2>/dev/null; fail "$(basename "${1%.out}") exited before listening"; }
    sleep 0.05
  done
  fail "$(basename "${1%.out}") did not listen within 60 s"
}

keyward_env() { # data_dir database_url (empty: SQLite in the data dir)
  ENV=(KEYWARD_LISTEN=127.0.0.1:0 "KEYWARD_DATA_DIR=$1" "KEYWARD_BOOTSTRAP_TOKEN=$TOKEN" KEYWARD_LOG=warn)
  [[ -z $2 ]] || ENV+=("KEYWARD_DATABASE_URL=$2")
}

# Starts `keyward serve`; sets STARTED_PID, STARTED_URL and READY_MS (spawn to /readyz 200).
start_keyward() { # name data_dir database_url
  keyward_env "$2" "$3"
  local started
  started=$(date +%s%N)
  env "${ENV[@]}" "$KEYWARD" serve >"$RUN/logs/$1.out" 2>"$RUN/logs/$1.err" &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  STARTED_URL=http://$(listening_address "$RUN/logs/$1.out" 'keyward is listening on http://' "$STARTED_PID")
  "$BENCH" wait --url "$STARTED_URL/readyz" --timeout-ms 120000 || fail "$1 never became ready"
  READY_MS=$((($(date +%s%N) - started) / 1000000))
}

rss_mb() { awk '/^VmRSS/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }

# Samples a process's RSS every half second into a file until stopped; sets SAMPLER_PID.
start_rss_sampler() { # pid file
  (while kill -0 "$1" 2>/dev/null; do rss_mb "$1" >>"$2" 2>/dev/null || true; echo >>"$2"; sleep 0.5; done) &
  SAMPLER_PID=$!
  PIDS+=("$SAMPLER_PID")
}
max_of() { sort -n "$1" | tail -n1; }

# User and system CPU ticks the processes have used so far.
cpu_ticks() { # "pid [pid]"
  local total=0 pid
  for pid in $1; do total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat"))); done
  echo "$total"
}
declare -A SERVER_PIDS

# Busy CPU ticks of the whole machine so far: user, nice, system, irq, softirq, steal.
machine_busy() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }

# Waits until a CPU tick counter (the command and its arguments) grows by at most `ticks` in a
# second, for `most` seconds at most; prints the seconds waited, or "over <most>".
wait_idle() { # most ticks command [args]
  local most=$1 ticks=$2 waited before after
  shift 2
  for ((waited = 0; waited < most; waited++)); do
    before=$("$@")
    sleep 1
    after=$("$@")
    ((after - before > ticks)) || { echo "$waited"; return; }
  done
  echo "over $most"
}

# A round starts once the machine is quiet (10% of a core, 30 s at most), so that it does not
# share the machine with writes the previous target's round left behind (PostgreSQL's
# checkpoints after its nodes' rounds ran through the next round of SQLite or of the ceiling).
quiet() { wait_idle 30 10 machine_busy; }

# After a sweep, waits for the nodes to go idle (5% of a core, two minutes at most) and records
# how long that took: a node still writing the history of a sweep would otherwise take a core
# from the next measurement (PostgreSQL's generation did 60 s alone by hand and 83 s in the
# harness beside the SQLite node's writer).
settle() { # name "pid [pid]"
  local waited
  waited=$(wait_idle 120 5 cpu_ticks "$2")
  fact "$1.settle_seconds" "$waited"
  echo "   $1 idle after $waited s" >&2
}

alive() { for pid in "$@"; do kill -0 "$pid" 2>/dev/null || fail "a server (pid $pid) died; see $RUN/logs"; done; }

# One validate answer from a target must be 200, VALID and signed; records the answer's size.
check_answer() { # name url key
  local code
  code=$(curl -s -o "$RUN/logs/$1.answer" -D "$RUN/logs/$1.headers" -w '%{http_code}' \
    -H 'Content-Type: application/json' -d "{\"key\":\"$3\",\"nonce\":\"bench-check\"}" "$2/api/v1/validate")
  [[ $code == 200 ]] || fail "$1: validate answered $code: $(cat "$RUN/logs/$1.answer")"
  grep -q '"code":"VALID"' "$RUN/logs/$1.answer" || fail "$1: validate did not answer VALID: $(cat "$RUN/logs/$1.answer")"
  grep -qi '^keyward-signature: kid=' "$RUN/logs/$1.headers" || fail "$1: the answer is not signed"
  fact "answer_bytes.$1" "$(wc -c <"$RUN/logs/$1.answer")"
}

# One wrk run into wrk/<workload>.<target>.<round>.<part>.out; fails when wrk does.
wrk_run() { # workload target round part url keys threads connections
  local out="$RUN/wrk/$1.$2.$3.$4.out"
  wrk -t"$7" -c"$8" -d"${DURATION}s" --timeout 10s -s "$ROOT/bench/wrk/$1.lua" "$5" -- "$6" "$2-$3-$4" >"$out" 2>&1 \
    || { cat "$out" >&2; fail "wrk failed against $2"; }
  grep -q '^WRKJSON ' "$out" || { cat "$out" >&2; fail "wrk printed no result against $2"; }
}

# A workload against a target: one node, or two nodes at once with half the connections each.
drive() { # workload target round keys url [url2]
  local before waited
  waited=$(quiet)
  fact "quiet_seconds.$1.$2.$3" "$waited"
  before=$(cpu_ticks "${SERVER_PIDS[$2]}")
  if [[ $# -eq 6 ]]; then
    local half_threads=$((THREADS / 2 > 0 ? THREADS / 2 : 1))
    wrk_run "$1" "$2" "$3" 1 "$5" "$4" "$half_threads" "$HALF" &
    local first=$!
    wrk_run "$1" "$2" "$3" 2 "$6" "$4" "$half_threads" "$HALF" || { wait "$first" || true; exit 1; }
    wait "$first" || exit 1
  else
    wrk_run "$1" "$2" "$3" 1 "$5" "$4" "$THREADS" "$CONNECTIONS"
  fi
  local after
  after=$(cpu_ticks "${SERVER_PIDS[$2]}")
  fact "cpu_ticks.$1.$2.$3" $((after - before))
  local requests
  requests=$(sed -n 's/^WRKJSON {"requests":\([0-9]*\).*/\1/p' "$RUN/wrk/$1.$2.$3".*.out | awk '{ s += $1 } END { print s }')
  echo "   $1 $2 round $3: $requests requests in ${DURATION} s (after $waited s waiting for a quiet machine)" >&2
}

# Seeds a fresh database through the API, then generates N licenses over the customers (timed).
prepare() { # name data_dir database_url
  local name=$1 dir=$2 url=$3
  say "$name: seeding the catalog and generating $N licenses"
  start_keyward "$name-seed" "$dir" "$url"
  local seed_pid=$STARTED_PID
  local seeded
  seeded=$("$BENCH" seed --url "$STARTED_URL" --token "$TOKEN" --customers "$CUSTOMER_COUNT") || fail "$name: seeding failed"
  eval "$seeded"
  stop_pid "$seed_pid"
  IFS=, read -r -a customers <<<"$CUSTOMERS"
  keyward_env "$dir" "$url"
  local started per_customer count i
  started=$(date +%s%N)
  per_customer=$((N / CUSTOMER_COUNT))
  for i in "${!customers[@]}"; do
    count=$per_customer
    [[ $i -lt $((CUSTOMER_COUNT - 1)) ]] || count=$((N - per_customer * (CUSTOMER_COUNT - 1)))
    env "${ENV[@]}" "$KEYWARD" generate --generator "$GENERATOR" --count "$count" --customer "${customers[$i]}" \
      >>"$RUN/logs/$name-generate.log" 2>&1 || { tail "$RUN/logs/$name-generate.log" >&2; fail "$name: keyward generate failed"; }
  done
  local seconds
  seconds=$(awk -v a="$started" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  fact "$name.generate_seconds" "$seconds"
  echo "   generated $N licenses in $seconds s" >&2
}

# --- the machine -------------------------------------------------------------------------------
CUSTOMER_COUNT=$((N < 10 ? N : 10))
HALF=$((CONNECTIONS / 2 > 0 ? CONNECTIONS / 2 : 1))
DOMAINS=$(seq -s, -f 'domain-%g.example' 1 "$CUSTOMER_COUNT")
fact n "$N"
fact duration "$DURATION"
fact rounds "$ROUNDS"
fact threads "$THREADS"
fact connections "$CONNECTIONS"
fact half_connections "$HALF"
fact date "$(date -u '+%Y-%m-%d %H:%M UTC')"
fact cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
fact nproc "$(nproc)"
fact mem_total "$(free -h | awk '/^Mem:/ { print $2 }')"
fact kernel "Linux $(uname -r)"
fact wrk_version "$(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }')"
fact git "$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$ROOT" && [[ -z $(git status --porcelain -- crates 2>/dev/null) ]] || echo ' + uncommitted changes')"
fact clk_tck "$(getconf CLK_TCK)"
fact load_before "$(cut -d' ' -f1-3 /proc/loadavg)"

# --- PostgreSQL, when it answers -------------------------------------------------------------
PG=0
if [[ $POSTGRES == 1 ]]; then
  # shellcheck disable=SC2086
  if command -v psql >/dev/null && psql $PG_ADMIN -qAtc 'SELECT 1' >/dev/null 2>&1; then
    PG_DB=keyward_bench_$$_$(date +%s)
    # shellcheck disable=SC2086
    psql $PG_ADMIN -qAtc "CREATE DATABASE $PG_DB" >/dev/null || fail "cannot create the database $PG_DB"
    PG_URL=$PG_BASE_URL/$PG_DB
    PG=1
    fact pg yes
  else
    echo "bench: PostgreSQL is unreachable (psql $PG_ADMIN); the PostgreSQL modes are skipped" >&2
    fact pg "skipped: PostgreSQL was unreachable (psql $PG_ADMIN)"
  fi
else
  fact pg "skipped: BENCH_POSTGRES=0"
fi

# --- SQLite: generate, start at N, keys, cold sweep --------------------------------------------
SQLITE_DIR=$RUN/sqlite-data
prepare sqlite "$SQLITE_DIR" ""
say "sqlite: starting with $N licenses"
start_keyward sqlite "$SQLITE_DIR" ""
SQLITE_PID=$STARTED_PID SQLITE_URL=$STARTED_URL
fact sqlite.readyz_ms "$READY_MS"
fact sqlite.rss_idle_mb "$(rss_mb "$SQLITE_PID")"
echo "   /readyz 200 after $READY_MS ms" >&2
sqlite3 "$SQLITE_DIR/keyward.db" "SELECT key FROM licenses WHERE environment = 'production'" >"$RUN/keys.sqlite.all"
sqlite3 "$SQLITE_DIR/keyward.db" \
  "SELECT key FROM licenses WHERE environment = 'production' ORDER BY random() LIMIT $SAMPLE" >"$RUN/keys.sqlite.sample"
[[ $(wc -l <"$RUN/keys.sqlite.all") -eq $N ]] || fail "the SQLite database holds $(wc -l <"$RUN/keys.sqlite.all") licenses, not $N"
fact sample_keys "$(wc -l <"$RUN/keys.sqlite.sample")"

say "sqlite: validating all $N keys once (cold cache)"
"$BENCH" sweep --url "$SQLITE_URL" --keys "$RUN/keys.sqlite.all" >"$RUN/sweep.sqlite.json" || fail "the SQLite sweep failed"
cat "$RUN/sweep.sqlite.json" >&2
fact sqlite.rss_after_sweep_mb "$(rss_mb "$SQLITE_PID")"
settle sqlite "$SQLITE_PID"

say "ceiling: starting"
"$CEILING" 127.0.0.1:0 >"$RUN/logs/ceiling.out" 2>"$RUN/logs/ceiling.err" &
CEILING_PID=$!
PIDS+=("$CEILING_PID")
CEILING_URL=http://$(listening_address "$RUN/logs/ceiling.out" 'ceiling is listening on http://' "$CEILING_PID")

# --- PostgreSQL: generate, two nodes on one database, keys, warm each node's cache ------------
if [[ $PG == 1 ]]; then
  PG_DIR=$RUN/pg-data # both nodes share it: the master key that seals the signing keys
  prepare pg "$PG_DIR" "$PG_URL"
  say "pg: starting two nodes with $N licenses"
  start_keyward pg1 "$PG_DIR" "$PG_URL"
  PG1_PID=$STARTED_PID PG1_URL=$STARTED_URL
  fact pg.readyz_ms "$READY_MS"
  fact pg.rss_idle_mb "$(rss_mb "$PG1_PID")"
  echo "   /readyz 200 after $READY_MS ms" >&2
  start_keyward pg2 "$PG_DIR" "$PG_URL"
  PG2_PID=$STARTED_PID PG2_URL=$STARTED_URL
  # shellcheck disable=SC2086
  psql "$PG_URL" -qAtc "SELECT key FROM licenses WHERE environment = 'production' ORDER BY random() LIMIT $SAMPLE" \
    >"$RUN/keys.pg.sample" || fail "cannot read keys from PostgreSQL"
  say "pg: validating the $(wc -l <"$RUN/keys.pg.sample") sampled keys once on each node (cold cache)"
  "$BENCH" sweep --url "$PG1_URL" --keys "$RUN/keys.pg.sample" >"$RUN/sweep.pg1.json" || fail "the PostgreSQL sweep failed"
  "$BENCH" sweep --url "$PG2_URL" --keys "$RUN/keys.pg.sample" >"$RUN/sweep.pg2.json" || fail "the PostgreSQL sweep failed"
  cat "$RUN/sweep.pg1.json" >&2
  fact pg.rss_after_sweep_mb "$(rss_mb "$PG1_PID")"
  settle pg "$PG1_PID $PG2_PID"
fi

# --- validate: the targets take turns, round by round ------------------------------------------
say "checking one answer from each target"
check_answer ceiling "$CEILING_URL" "$(head -n1 "$RUN/keys.sqlite.sample")"
check_answer sqlite "$SQLITE_URL" "$(head -n1 "$RUN/keys.sqlite.sample")"
if [[ $PG == 1 ]]; then
  check_answer pg1 "$PG1_URL" "$(head -n1 "$RUN/keys.pg.sample")"
  check_answer pg2 "$PG2_URL" "$(head -n1 "$RUN/keys.pg.sample")"
fi

SERVER_PIDS=([ceiling]=$CEILING_PID [sqlite]=$SQLITE_PID)
[[ $PG == 0 ]] || SERVER_PIDS+=([pg1]=$PG1_PID [pg2]="$PG1_PID $PG2_PID")
say "validate: $ROUNDS rounds of ${DURATION} s per target, wrk -t$THREADS -c$CONNECTIONS"
start_rss_sampler "$SQLITE_PID" "$RUN/rss.sqlite"
SQLITE_SAMPLER=$SAMPLER_PID
start_rss_sampler "$CEILING_PID" "$RUN/rss.ceiling"
CEILING_SAMPLER=$SAMPLER_PID
if [[ $PG == 1 ]]; then start_rss_sampler "$PG1_PID" "$RUN/rss.pg1"; PG_SAMPLER=$SAMPLER_PID; fi
for round in $(seq 1 "$ROUNDS"); do
  drive validate ceiling "$round" "$RUN/keys.sqlite.sample" "$CEILING_URL"
  drive validate sqlite "$round" "$RUN/keys.sqlite.sample" "$SQLITE_URL"
  if [[ $PG == 1 ]]; then
    drive validate pg1 "$round" "$RUN/keys.pg.sample" "$PG1_URL"
    drive validate pg2 "$round" "$RUN/keys.pg.sample" "$PG1_URL" "$PG2_URL"
  fi
  alive "$SQLITE_PID" "$CEILING_PID" ${PG1_PID:+"$PG1_PID"} ${PG2_PID:+"$PG2_PID"}
done
stop_pid "$SQLITE_SAMPLER"
stop_pid "$CEILING_SAMPLER"
fact sqlite.rss_max_validate_mb "$(max_of "$RUN/rss.sqlite")"
fact ceiling.rss_max_validate_mb "$(max_of "$RUN/rss.ceiling")"
if [[ $PG == 1 ]]; then stop_pid "$PG_SAMPLER"; fact pg.rss_max_validate_mb "$(max_of "$RUN/rss.pg1")"; fi

# --- activate: a new device on a random key, every request ------------------------------------
say "activate: $ROUNDS rounds of ${DURATION} s per target"
for round in $(seq 1 "$ROUNDS"); do
  drive activate sqlite "$round" "$RUN/keys.sqlite.sample" "$SQLITE_URL"
  if [[ $PG == 1 ]]; then
    drive activate pg1 "$round" "$RUN/keys.pg.sample" "$PG1_URL"
    drive activate pg2 "$round" "$RUN/keys.pg.sample" "$PG1_URL" "$PG2_URL"
  fi
  alive "$SQLITE_PID" ${PG1_PID:+"$PG1_PID"} ${PG2_PID:+"$PG2_PID"}
done

# --- admin search at N -------------------------------------------------------------------------
say "search: $SEARCH_REQUESTS requests per kind of query"
"$BENCH" search --url "$SQLITE_URL" --token "$TOKEN" --keys "$RUN/keys.sqlite.sample" --domains "$DOMAINS" \
  --requests "$SEARCH_REQUESTS" >"$RUN/search.sqlite.json" || fail "the SQLite search failed"
if [[ $PG == 1 ]]; then
  "$BENCH" search --url "$PG1_URL" --token "$TOKEN" --keys "$RUN/keys.pg.sample" --domains "$DOMAINS" \
    --requests "$SEARCH_REQUESTS" >"$RUN/search.pg.json" || fail "the PostgreSQL search failed"
fi

# --- where validate's time goes -----------------------------------------------------------------
profile() { # name pid url
  perf record -e cpu-clock -F 499 -p "$2" -o "$RUN/perf.data" -- sleep "$DURATION" >/dev/null 2>&1 &
  local perf_pid=$!
  PIDS+=("$perf_pid")
  # Its own output file: this round is slowed by perf and is no part of the results table.
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s -s "$ROOT/bench/wrk/validate.lua" "$3" \
    -- "$RUN/keys.sqlite.sample" "profile-$1" >"$RUN/logs/profiled-$1.wrk" 2>&1 || fail "wrk failed against $1"
  wait "$perf_pid" || return 1
  perf report -i "$RUN/perf.data" --stdio --no-children --sort dso,sym --percent-limit 0.05 -g none \
    >"$RUN/logs/perf-$1.txt" 2>/dev/null || return 1
}
if [[ $PROFILE == 1 ]] && command -v perf >/dev/null; then
  say "profile: perf (cpu-clock) during one more validate round of each"
  if profile sqlite "$SQLITE_PID" "$SQLITE_URL" && profile ceiling "$CEILING_PID" "$CEILING_URL"; then
    {
      echo "#### Where validate's time goes (perf, cpu-clock samples of the server process during a ${DURATION} s validate round)"
      echo
      echo "keyward (SQLite):"
      echo
      "$BENCH" profile --perf-report "$RUN/logs/perf-sqlite.txt"
      echo
      echo "The ceiling, for comparison:"
      echo
      "$BENCH" profile --perf-report "$RUN/logs/perf-ceiling.txt"
    } >"$RUN/profile.md" || rm -f "$RUN/profile.md"
  else
    echo "bench: perf could not profile here; the profile is left out" >&2
  fi
fi

# --- after the load: does each node still write? what did the servers log? ----------------------
# One activation per node: a node that stopped accepting writes under load shows here.
write_check() { # name url key
  local code
  code=$(curl -s -o "$RUN/logs/$1.write-check" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"key\":\"$3\",\"fingerprint\":\"bench-write-check-$1\"}" "$2/api/v1/activate")
  fact "write_check.$1" "$code"
  [[ $code == 201 ]] || echo "bench: $1 refused the write check with $code: $(cat "$RUN/logs/$1.write-check")" >&2
}
write_check sqlite "$SQLITE_URL" "$(head -n1 "$RUN/keys.sqlite.sample")"
if [[ $PG == 1 ]]; then
  write_check pg1 "$PG1_URL" "$(head -n1 "$RUN/keys.pg.sample")"
  write_check pg2 "$PG2_URL" "$(sed -n 2p "$RUN/keys.pg.sample")"
fi

# The most frequent warnings and errors of each server, timestamps and numbers folded away. (awk,
# not head: under pipefail, a sort that writes after head has gone fails the run with SIGPIPE.)
summarise_logs() {
  local name file total
  echo "#### What the servers logged (KEYWARD_LOG=warn)"
  echo
  for name in sqlite pg1 pg2 ceiling; do
    file=$RUN/logs/$name.err
    [[ -f $file ]] || continue
    total=$(grep -cE ' (WARN|ERROR) ' "$file" || true)
    echo "- $name: $total warning or error lines"
    { grep -E ' (WARN|ERROR) ' "$file" || true; } | sed -E 's/^[0-9TZ:.-]+ +//; s/records=[0-9]+/records=N/; s/=[0-9]+\.[0-9]+/=N/g; s/ (summary|db\.statement)=.*//' \
      | cut -c1-170 | tr '`' "'" | sort | uniq -c | sort -rn | awk 'NR <= 5' \
      | while read -r count line; do echo "  - $count × \`$line\`"; done
  done
  echo
}
summarise_logs >"$RUN/logs.md"

# --- the report -----------------------------------------------------------------------------------
fact load_after "$(cut -d' ' -f1-3 /proc/loadavg)"
say "results"
status=0
"$BENCH" report --dir "$RUN" || status=$?
if [[ -n $OUT ]]; then
  mkdir -p "$(dirname "$ROOT/$OUT")"
  cp "$RUN/results.md" "$ROOT/$OUT"
  raw="$ROOT/${OUT%.md}-raw"
  rm -rf "$raw" && mkdir -p "$raw" && cp -r "$RUN/wrk" "$RUN/facts.env" "$RUN"/*.json "$RUN"/*.md "$RUN"/logs/perf-*.txt "$raw/" 2>/dev/null || true
  echo "bench: results written to $OUT" >&2
fi
exit "$status"
