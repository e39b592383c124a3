#!/usr/bin/env bash
# `fdfsfs index adopt` of a group of N files (default 1,000,000), into the
# Badger index and into the Redis one, next to the listing alone
# (`fdfsfs ls GROUP > /dev/null`, the baseline: adopt cannot be faster than
# the storage lists).
#
#   scripts/bench-adopt.sh
#
# Environment: BENCH_ADOPT_N=1000000, BENCH_RUNS=3 (the table shows medians).
#
# The files are made by scripts/adoptgen in a local cluster's storage
# directory: hard links of one empty file under names in the real format,
# 100 to a directory as a V6 storage rotates them. The listing reads names
# only, so no upload is needed. Each round runs, in turn: the listing, a
# first adopt into an empty index (every file added), and a second one
# (every file unchanged), for Badger and then Redis; the rounds alternate
# so that the machine's noise spreads over all of them. Memory is the
# command's peak resident set: anonymous (heap, stacks) and file-backed
# (pages of the index's files that Badger maps) apart, sampled from
# /proc every 100 ms, and the total as time(1) reports it.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_ADOPT_N:-1000000}
RUNS=${BENCH_RUNS:-3}
GROUP=group1

work=$(mktemp -d /tmp/fdfsfs-bench-adopt.XXXXXX)
mkdir -p "$work/redis"
go build -o "$work/fdfsfs" .
go build -o "$work/adoptgen" ./scripts/adoptgen
bin=$work/fdfsfs

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" local --groups 1 --data "$work/data" --log-level warn >"$work/local.out" 2>"$work/local.log" &
pids+=($!)
for _ in $(seq 100); do [[ -s $work/local.out ]] && break; sleep 0.1; done
TRACKER=$(head -1 "$work/local.out")
echo "making $N files..." >&2
"$work/adoptgen" -storage "$work/data/$GROUP/storage0" -n "$N"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=""
for _ in 1 2 3 4 5; do
  p=$(free_port)
  redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
    --dir "$work/redis" --logfile "$work/redis/redis.log" &
  rpid=$!
  for _ in $(seq 100); do
    [[ $(redis-cli -p "$p" ping 2>/dev/null) == PONG ]] && { redis_port=$p; break; }
    sleep 0.05
  done
  if [[ -n $redis_port ]]; then pids+=($rpid); break; fi
  kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
done
[[ -n $redis_port ]] || { echo "redis-server did not start:"; cat "$work/redis/redis.log"; exit 1; }

# measure NAME CMD...: runs CMD, appends "NAME seconds anonKB fileKB totalKB"
# to $work/results.
measure() {
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" >"$work/out" 2>"$work/err" &
  local tpid=$! anon=0 file=0 a f child
  while kill -0 "$tpid" 2>/dev/null; do
    child=$(pgrep -P "$tpid" | head -1 || true)
    if [[ -n $child ]]; then
      a=$(awk '/^RssAnon/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
      f=$(awk '/^RssFile/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
      (( ${a:-0} > anon )) && anon=$a
      (( ${f:-0} > file )) && file=$f
    fi
    sleep 0.1
  done
  wait "$tpid" || { echo "$name failed:"; cat "$work/err" "$work/out"; exit 1; }
  read -r secs total <"$work/time"
  echo "$name $secs $anon $file $total" >>"$work/results"
}

for r in $(seq "$RUNS"); do
  echo "round $r of $RUNS..." >&2
  measure list sh -c "'$bin' ls --tracker '$TRACKER' $GROUP >/dev/null"
  rm -rf "$work/index"
  measure badger-first "$bin" index adopt --tracker "$TRACKER" --index "$work/index" $GROUP
  measure badger-again "$bin" index adopt --tracker "$TRACKER" --index "$work/index" $GROUP
  redis-cli -p "$redis_port" flushall >/dev/null
  measure redis-first "$bin" index adopt --tracker "$TRACKER" --meta "redis://127.0.0.1:$redis_port/0" $GROUP
  measure redis-again "$bin" index adopt --tracker "$TRACKER" --meta "redis://127.0.0.1:$redis_port/0" $GROUP
done

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
col() { awk -v n="$1" -v c="$2" '$1 == n {print $c}' "$work/results" | median; }
list=$(col list 2)
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at the end; $(redis-server --version | awk '{print $1, $3}'); N=$N, runs: $RUNS (medians)"
echo "| $N files | seconds | files/s | time / listing | peak anon MB | peak file-backed MB | peak RSS MB |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for name in list badger-first badger-again redis-first redis-again; do
  s=$(col "$name" 2)
  awk -v n="$name" -v s="$s" -v l="$list" -v N="$N" -v a="$(col "$name" 3)" -v f="$(col "$name" 4)" -v t="$(col "$name" 5)" \
    'BEGIN {printf "| %s | %.2f | %.0f | %.2f | %.0f | %.0f | %.0f |\n", n, s, N / s, s / l, a / 1024, f / 1024, t / 1024}'
done
