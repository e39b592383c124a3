#!/usr/bin/env bash
# Metadata operations per second on the mount, with the Badger index and
# with the Redis one, next to the same figures for a local directory.
#
#   scripts/bench-meta.sh                      # local cluster, defaults below
#   scripts/bench-meta.sh --tracker host:port  # a real cluster
#
# Environment: BENCH_META_N=10000 (entries per run), BENCH_RUNS=3 (runs per
# target; the table shows medians), BENCH_GROUP=group1.
#
# Each run (scripts/metaops) creates N empty files in a fresh directory
# (open O_CREAT|O_EXCL, close), stats each by name, lists the directory
# with an lstat per entry (as ls -l does) and unlinks them. The ratio is
# mount ops/s / local ops/s. The redis-server is the script's own, on a free
# loopback port, with appendonly yes (fsync every second), as the README
# asks of a shared index, with one replica of its own. The cost of wait=1
# (every change confirmed by the replica with WAIT before the call returns)
# is measured on two Redis mounts at once, one without wait= and one with
# wait=1 (each its own key prefix), runs alternating between them (odd runs
# the one without first); the last column is the ratio of their medians.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${BENCH_META_N:-10000}
RUNS=${BENCH_RUNS:-3}
GROUP=${BENCH_GROUP:-group1}
TRACKER=""
if [[ ${1:-} == --tracker ]]; then TRACKER=$2; fi

work=$(mktemp -d /tmp/fdfsfs-bench-meta.XXXXXX)
mnt=$work/mnt
mnt2=$work/mnt-wait
mkdir -p "$mnt" "$mnt2" "$work/local" "$work/redis" "$work/replica"
go build -o "$work/fdfsfs" .
go build -o "$work/metaops" ./scripts/metaops
bin=$work/fdfsfs

pids=()
mount_pid=""
mount2_pid=""
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  fusermount3 -u "$mnt2" 2>/dev/null || true
  [[ -n $mount_pid ]] && wait "$mount_pid" 2>/dev/null || true
  [[ -n $mount2_pid ]] && wait "$mount2_pid" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if [[ -z $TRACKER ]]; then
  "$bin" local --data "$work/data" --log-level warn >"$work/local.out" 2>"$work/local.log" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s $work/local.out ]] && break; sleep 0.1; done
  TRACKER=$(head -1 "$work/local.out")
fi

# A redis-server of our own on a free loopback port, and a replica of it.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
started_port=""
start_redis() { # start_redis DIR [ARGS...]: sets started_port
  local dir=$1 p rpid port=""
  shift
  for _ in 1 2 3 4 5; do
    p=$(free_port)
    redis-server --port "$p" --bind 127.0.0.1 --save "" --appendonly yes --appendfsync everysec \
      --dir "$dir" --logfile "$dir/redis.log" "$@" >/dev/null &
    rpid=$!
    for _ in $(seq 100); do
      [[ $(redis-cli -p "$p" ping 2>/dev/null) == PONG ]] && { port=$p; break; }
      sleep 0.05
    done
    if [[ -n $port ]]; then started_port=$port; pids+=($rpid); return; fi
    kill "$rpid" 2>/dev/null || true; wait "$rpid" 2>/dev/null || true
  done
  echo "redis-server did not start:" >&2; cat "$dir/redis.log" >&2; exit 1
}
start_redis "$work/redis"
redis_port=$started_port
start_redis "$work/replica" --replicaof 127.0.0.1 "$redis_port"
replica_port=$started_port
for _ in $(seq 200); do
  redis-cli -p "$replica_port" info replication | grep -q master_link_status:up && break
  sleep 0.05
done

mounted_pid=""
mount_at() { # mount_at DIR ENGINE-FLAGS...: sets mounted_pid
  local dir=$1
  shift
  "$bin" mount --tracker "$TRACKER" "$@" --cache "$work/cache-$(basename "$dir")" --log-level warn "$dir" 2>>"$work/mount.log" &
  mounted_pid=$!
  for _ in $(seq 200); do mountpoint -q "$dir" && return; sleep 0.05; done
  echo "mount failed:"; cat "$work/mount.log"; exit 1
}
mount_fs() { mount_at "$mnt" "$@"; mount_pid=$mounted_pid; }
umount_fs() {
  fusermount3 -u "$mnt"
  wait "$mount_pid" || true
  mount_pid=""
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
# runs DIR: RUNS runs of metaops in fresh subdirs of DIR; prints the medians
# of the four phases on one line.
runs() {
  local out=() i
  for i in $(seq "$RUNS"); do
    mkdir "$1/run$i"
    out+=("$("$work/metaops" -dir "$1/run$i" -n "$N")")
    rmdir "$1/run$i"
  done
  local col
  for col in 1 2 3 4; do
    printf '%s\n' "${out[@]}" | awk -v c="$col" '{print $c}' | median
  done | paste -sd' '
}

# alternating DIR1 DIR2: RUNS runs in each, alternating (odd runs DIR1
# first); prints the medians of DIR1's phases on one line, then DIR2's.
alternating() {
  local out1=() out2=() i
  for i in $(seq "$RUNS"); do
    mkdir "$1/run$i" "$2/run$i"
    if ((i % 2)); then
      out1+=("$("$work/metaops" -dir "$1/run$i" -n "$N")")
      out2+=("$("$work/metaops" -dir "$2/run$i" -n "$N")")
    else
      out2+=("$("$work/metaops" -dir "$2/run$i" -n "$N")")
      out1+=("$("$work/metaops" -dir "$1/run$i" -n "$N")")
    fi
    rmdir "$1/run$i" "$2/run$i"
  done
  local col out
  for out in out1 out2; do
    local -n o=$out
    for col in 1 2 3 4; do
      printf '%s\n' "${o[@]}" | awk -v c="$col" '{print $c}' | median
    done | paste -sd' '
  done
}

read -r -a local_ops <<<"$(runs "$work/local")"
mount_fs --index "$work/index"
read -r -a badger_ops <<<"$(runs "$mnt/$GROUP")"
umount_fs
mount_fs --meta "redis://127.0.0.1:$redis_port/0"
mount_at "$mnt2" --meta "redis://127.0.0.1:$redis_port/0?prefix=wait:&wait=1"
mount2_pid=$mounted_pid
alternating "$mnt/$GROUP" "$mnt2/$GROUP" >"$work/alternating"
{ read -r -a redis_ops; read -r -a wait_ops; } <"$work/alternating"
umount_fs
fusermount3 -u "$mnt2"
wait "$mount2_pid" || true
mount2_pid=""

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }
names=("create (open O_EXCL + close)" "stat by name" "readdir + lstat (ls -l)" "unlink")
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r), local dir on $(stat -f -c %T "$work"); $(redis-server --version | awk '{print $1, $3}'); N=$N, runs: $RUNS (medians)"
echo "| ${N} entries | local (ops/s) | Badger (ops/s) | Badger/local | Redis (ops/s) | Redis/local | Redis wait=1 (ops/s) | wait=1 / no wait |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for i in 0 1 2 3; do
  printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "${names[$i]}" "${local_ops[$i]}" \
    "${badger_ops[$i]}" "$(ratio "${badger_ops[$i]}" "${local_ops[$i]}")" \
    "${redis_ops[$i]}" "$(ratio "${redis_ops[$i]}" "${local_ops[$i]}")" \
    "${wait_ops[$i]}" "$(ratio "${wait_ops[$i]}" "${redis_ops[$i]}")"
done
