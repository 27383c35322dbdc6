#!/usr/bin/env bash
# The long fuzz runs (fuzz/README.md): each target under libFuzzer for RUNS inputs (default
# 10^6), a single allocation above 1 GiB or an input taking over 10 s counting as a crash.
# The run starts from fuzz/seeds/<target> and fuzz/corpus/<target>; new coverage goes into
# the corpus, minimised afterwards with `cargo fuzz cmin`; crashes land in fuzz/artifacts/<target>. Needs the nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz`). Usage: tools/fuzz.sh [target ...]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
RUNS=${RUNS:-1000000}
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
mkdir -p logs
for t in "${targets[@]}"; do
    start=$(date +%s)
    mkdir -p "corpus/$t"
    cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -runs="$RUNS" -malloc_limit_mb=1024 -rss_limit_mb=2048 -timeout=10 \
        -seed=1 -print_final_stats=1 >"logs/$t.log" 2>&1 || echo "$t: CRASH, see fuzz/logs/$t.log"
    cargo +nightly fuzz cmin -O "$t" "corpus/$t" >>"logs/$t.log" 2>&1 || true
    runs=$(grep -o 'Done [0-9]* runs' "logs/$t.log" | tail -1 || true)
    echo "$t: ${runs:-no final count} in $(( $(date +%s) - start )) s, corpus $(ls "corpus/$t" | wc -l) files"
done
