#!/bin/sh
# Instructions the client process executes per call, counted by valgrind (callgrind):
# exact where timings on a shared machine are not. Two runs of the same cell, with
# SMALL and LARGE calls per caller, are subtracted so that the setup (certificates,
# connections, the first calls) drops out; the server runs in its own process, not
# counted. Repeats agree within about 1.5%.
#
#   bench/instructions-per-call.sh CLIENT CELL [SMALL LARGE]
#   bench/instructions-per-call.sh ephemos plaintext/unary_64B/1
#
# CLIENT is one of the benchmark's clients (tonic, ephemos, ephemos_no_policy,
# tonic_round_robin, ephemos_high_throughput); CELL names one cell exactly.
# Needs valgrind and a release build: cargo build --release -p ephemos-bench
set -eu
client=$1
cell=$2
small=${3:-200}
large=${4:-1200}
bench=${BENCH:-target/release/ephemos-bench}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
count() {
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" "$bench" \
        --only "$client" --cells "$cell" --rounds 1 --calls "$1" 2>&1 >/dev/null |
        sed -n 's/.*I *refs: *//p' | tr -d ','
}
a=$(count "$small")
b=$(count "$large")
concurrency=${cell##*/}
echo "$client $cell: $(( (b - a) / ((large - small) * concurrency) )) instructions per call"
