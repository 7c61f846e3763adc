#!/usr/bin/env bash
# Fuzz smoke: a short libFuzzer run of every target in fuzz_targets/, starting from seeds/.
#
# libFuzzer needs a nightly toolchain and cargo-fuzz. This script installs cargo-fuzz when it is
# missing and tries to install nightly; when nightly cannot be had (no access to rustup's server),
# it says so and runs the stable stand-in instead: crates/keyward-core/tests/fuzz_smoke.rs, which
# mutates valid inputs at random and feeds the same functions. That is a smoke test, NOT a
# coverage-guided fuzz run.
#
#   FUZZ_SECONDS=60 fuzz/smoke.sh      # seconds per target (default 20)
#   FUZZ_STABLE=1 fuzz/smoke.sh        # force the stable stand-in
set -euo pipefail
cd "$(dirname "$0")"
seconds="${FUZZ_SECONDS:-20}"
targets=(offline_file signature_header key_text)

has_nightly() { rustup toolchain list 2>/dev/null | grep -q '^nightly'; }

stable_smoke() {
  echo "fuzz: running the stable stand-in for ${seconds}s per target (libFuzzer needs nightly Rust)"
  (cd .. && KEYWARD_FUZZ_SECONDS="$seconds" cargo test -p keyward-core --release --test fuzz_smoke -- --nocapture)
}

if [ -n "${FUZZ_STABLE:-}" ]; then
  stable_smoke
  exit
fi
if ! has_nightly && command -v rustup >/dev/null 2>&1; then
  echo "fuzz: no nightly toolchain; trying to install one"
  rustup toolchain install nightly --profile minimal || true
fi
if ! has_nightly; then
  echo "fuzz: WARNING: nightly Rust is not available, so libFuzzer cannot run here"
  stable_smoke
  exit
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cargo +nightly fuzz build -O
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "fuzz: $target for ${seconds}s"
  # New inputs go to corpus/ (not committed); seeds/ stays as it is. A crash exits non-zero and
  # leaves its input in artifacts/<target>/.
  cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
done
