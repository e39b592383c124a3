#!/usr/bin/env bash
# The mount's data path against its baselines, measured in the same run.
#
#   scripts/bench.sh                      # local cluster, defaults below
#   scripts/bench.sh --tracker host:port  # a real cluster
#
# Sizes (environment): BENCH_MB=1024 (cases 1-3, 6), BENCH_FILES=10000
# (case 4), BENCH_LIST=100000 (case 5), BENCH_SMALL=2000 (cases 8 and 9),
# BENCH_RUNS=3 (runs per case; the table shows medians), BENCH_GROUP=group1.
# BENCH_LOAD=30 (seconds of case 10). BENCH_ONLY=small runs cases 8 to 10
# alone, BENCH_ONLY=large the reads of a large file (2 to 3, and 6).
#
# Each case prints a median time and a ratio against its baseline
# (baseline time / mount time: 1.0 means as fast, above 1 faster). Where a
# case runs both sides in turn, odd runs time the mount first and even runs
# the baseline first, and dirty data is flushed before each case: on a
# small machine whichever side writes into the storage right after the
# other (or after the 1 GiB writes of case 1) pays the disk's writeback and
# inode allocation of what came before.
set -euo pipefail
cd "$(dirname "$0")/.."

MB=${BENCH_MB:-1024}
FILES=${BENCH_FILES:-10000}
LIST=${BENCH_LIST:-100000}
RUNS=${BENCH_RUNS:-3}
SMALL=${BENCH_SMALL:-2000}
LOAD=${BENCH_LOAD:-30}
ONLY=${BENCH_ONLY:-}
GROUP=${BENCH_GROUP:-group1}
TRACKER=""
if [[ ${1:-} == --tracker ]]; then TRACKER=$2; fi

work=$(mktemp -d /tmp/fdfsfs-bench.XXXXXX)
mnt=$work/mnt
mkdir -p "$mnt" "$work/src"
go build -o "$work/fdfsfs" .
go build -o "$work/randread" ./scripts/randread
go build -o "$work/mapread" ./scripts/mapread
go build -o "$work/fdfsloop" ./scripts/fdfsloop
go build -o "$work/loadmix" ./scripts/loadmix
# The go-fuse loopback example from the module cache, as a ceiling for
# FUSE creates (built here, never kept).
go build -o "$work/loopback" github.com/hanwen/go-fuse/v2/example/loopback
bin=$work/fdfsfs

pids=()
cleanup() {
  fusermount3 -u "$mnt" 2>/dev/null || true
  fusermount3 -u "$work/lbmnt" 2>/dev/null || true
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

mount_extra=()
mount_fs() {
  "$bin" mount --tracker "$TRACKER" --index "$work/index" --cache "$work/cache" --log-level warn ${mount_extra[@]+"${mount_extra[@]}"} "$mnt" 2>>"$work/mount.log" &
  mount_pid=$!
  for _ in $(seq 200); do mountpoint -q "$mnt" && return; sleep 0.05; done
  echo "mount failed:"; cat "$work/mount.log"; exit 1
}
umount_fs() {
  fusermount3 -u "$mnt"
  wait "$mount_pid" || true
}

# now_ns and elapsed in seconds with millisecond precision
now() { date +%s.%N; }
timeit() { local s e; s=$(now); "$@" >/dev/null; e=$(now); echo "$e - $s" | bc -l; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { echo "scale=2; $1 / $2" | bc -l; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# cp_small RUN: the timed cp of case 4; also records the mount's CPU ticks
cp_small() {
  local t0 t1
  t0=$(cpu_ticks "$mount_pid")
  w+=("$(timeit cp -r "$work/small/." "$mnt/$GROUP/small$1/")")
  t1=$(cpu_ticks "$mount_pid")
  mcpu+=("$((t1 - t0))")
}

rows=()
row() { rows+=("$(printf '| %-34s | %10s | %10s | %6s | %s |' "$@")"); }
rss1=- rss4=- rss9=-

# settle_cache waits until the block cache on disk stops growing: after a
# cold read the mount completes the file in the background (for
# passthrough), and a baseline timed meanwhile would share the machine with
# it. It prints how long it waited.
settle_cache() {
  local s e prev=-1 cur
  s=$(now)
  for _ in $(seq 300); do
    cur=$(du -sB1 "$work/cache" 2>/dev/null | cut -f1)
    [[ $cur == "$prev" ]] && break
    prev=$cur; sleep 0.2
  done
  e=$(now); echo "$e - $s - 0.2" | bc -l
}

mount_fs
if [[ $ONLY != small ]]; then
big=$work/src/big.bin
head -c $((MB << 20)) /dev/urandom >"$big"
if [[ $ONLY == large ]]; then cp "$big" "$mnt/$GROUP/big1.bin"; fi
# 1. write: cp into a group dir vs fdfsfs put
w=(); b=()
sync
for i in $(seq "$RUNS"); do
  [[ $ONLY == large ]] && break
  if ((i % 2)); then
    w+=("$(timeit cp "$big" "$mnt/$GROUP/big$i.bin")")
    b+=("$(timeit "$bin" put --tracker "$TRACKER" --group "$GROUP" "$big")")
  else
    b+=("$(timeit "$bin" put --tracker "$TRACKER" --group "$GROUP" "$big")")
    w+=("$(timeit cp "$big" "$mnt/$GROUP/big$i.bin")")
  fi
  sync
done
if [[ $ONLY != large ]]; then
wm=$(printf '%s\n' "${w[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median)
row "1 write ${MB} MiB: cp vs put" "$wm" "$bm" "$(ratio "$bm" "$wm")" "target >= 0.8"
fi
rss1=$(peak_rss_mb "$mount_pid")

# 2. cold read: cat vs fdfsfs get (block cache emptied by a remount on a fresh
# cache dir). Both read with the storage's own page cache in the same, warm
# state: an untimed get first. Otherwise cat, going first, would also pay
# the storage's disk reads that the get after it is spared.
id=$(getfattr --only-values -n user.fdfs.file_id "$mnt/$GROUP/big1.bin")
# 2, 2b. cold read: cat vs fdfsfs get, each cat on a new mount over an
# emptied block cache, with default flags (2) and through the page cache
# (2b: --direct-io-size 0, the default before direct I/O was chosen by
# size). The three take turns in a rotating order. After a default cat
# the mount completes the file in the block cache in the background (for
# passthrough); no timed command overlaps that: f records how long it took.
# cold_cat [FLAGS] leaves the cat's time in $t and the wait after it in $st.
cold_cat() {
  mount_extra=("$@")
  umount_fs; rm -rf "$work/cache"; drop_caches; mount_fs
  "$bin" get --tracker "$TRACKER" "$id" - >/dev/null
  t=$(timeit cat "$mnt/$GROUP/big1.bin")
  st=$(settle_cache)
  mount_extra=()
}
r=(); p=(); b=(); f=()
for i in $(seq "$RUNS"); do
  for k in $(seq 0 2); do
    case $(((i + k) % 3)) in
      0) cold_cat; r+=("$t"); f+=("$st") ;;
      1) cold_cat --direct-io-size 0; p+=("$t") ;;
      2) "$bin" get --tracker "$TRACKER" "$id" - >/dev/null
         b+=("$(timeit "$bin" get --tracker "$TRACKER" "$id" -)") ;;
    esac
  done
done
rm_=$(printf '%s\n' "${r[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
bm=$(printf '%s\n' "${b[@]}" | median); fm=$(printf '%s\n' "${f[@]}" | median)
row "2 cold read ${MB} MiB: cat vs get" "$rm_" "$bm" "$(ratio "$bm" "$rm_")" "target >= 0.8; then ${fm} s completing the cache"
row "2b cold read, --direct-io-size 0" "$pm" "$bm" "$(ratio "$bm" "$pm")" "the page cache, as before"

# 2c, 2d. what direct I/O costs: small sequential reads (dd bs=4k of the
# first 64 MiB) and a read through a shared map (a byte per page), cold,
# on the default mount against one with --direct-io-size 0, alternating.
# The ratio is the page cache's time / the default's (below 1: slower).
small_reads() {
  local tool=$1 d=() p=()
  for i in $(seq "$RUNS"); do
    for side in $((i % 2)) $(((i + 1) % 2)); do
      if ((side)); then mount_extra=(); else mount_extra=(--direct-io-size 0); fi
      umount_fs; rm -rf "$work/cache"; drop_caches; mount_fs
      "$bin" get --tracker "$TRACKER" "$id" - >/dev/null
      if [[ $tool == dd ]]; then
        t=$(timeit dd if="$mnt/$GROUP/big1.bin" of=/dev/null bs=4k count=16384 status=none)
      else
        t=$("$work/mapread" -file "$mnt/$GROUP/big1.bin")
      fi
      if ((side)); then d+=("$t"); else p+=("$t"); fi
    done
  done
  mount_extra=()
  dm=$(printf '%s\n' "${d[@]}" | median); pm=$(printf '%s\n' "${p[@]}" | median)
}
small_reads dd
row "2c dd bs=4k of 64 MiB, cold" "$dm" "$pm" "$(ratio "$pm" "$dm")" "baseline: --direct-io-size 0"
small_reads map
row "2d shared map read ${MB} MiB, cold" "$dm" "$pm" "$(ratio "$pm" "$dm")" "baseline: --direct-io-size 0"

# 3. warm read: a second cat vs a local file of the same size, on a
# default mount that has read the file once and completed it in the block
# cache (passthrough reads it from there). Each run is a tenth of a second,
# so take at least 7 of them, alternating.
umount_fs; rm -rf "$work/cache"; drop_caches; mount_fs
"$bin" get --tracker "$TRACKER" "$id" - >/dev/null
cat "$mnt/$GROUP/big1.bin" >/dev/null
settle_cache >/dev/null
r=(); b=()
cat "$mnt/$GROUP/big1.bin" >/dev/null
cat "$big" >/dev/null
for i in $(seq $((RUNS > 7 ? RUNS : 7))); do
  r+=("$(timeit cat "$mnt/$GROUP/big1.bin")")
  b+=("$(timeit cat "$big")")
done
rm_=$(printf '%s\n' "${r[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median)
row "3 warm read ${MB} MiB: cat vs local" "$rm_" "$bm" "$(ratio "$bm" "$rm_")" "target >= 0.9"

# 6. random 4 KiB reads of the big file (cold block cache)
umount_fs; rm -rf "$work/cache"; drop_caches; mount_fs
rr=$("$work/randread" -file "$mnt/$GROUP/big1.bin" -n 2000 -size 4096)
lr=$("$work/randread" -file "$big" -n 2000 -size 4096)
row "6 random 4 KiB reads (2000)" "$rr" "$lr" "$(ratio "$lr" "$rr")" "IOPS: $(echo "2000 / $rr" | bc)"

if [[ $ONLY != large ]]; then
# 4. small files: 10,000 x 4 KiB create/write/close vs 10,000 puts in one process
umount_fs; mount_fs
mkdir -p "$work/small"
for i in $(seq "$FILES"); do head -c 4096 /dev/urandom >"$work/small/f$i"; done
w=(); b=(); mcpu=()
sync
for i in $(seq "$RUNS"); do
  mkdir -p "$mnt/$GROUP/small$i"
  if ((i % 2)); then
    cp_small "$i"
    b+=("$(timeit "$bin" put --tracker "$TRACKER" --group "$GROUP" "$work"/small/*)")
  else
    b+=("$(timeit "$bin" put --tracker "$TRACKER" --group "$GROUP" "$work"/small/*)")
    cp_small "$i"
  fi
  sync
done
sm=$(printf '%s\n' "${w[@]}" | median); sb=$(printf '%s\n' "${b[@]}" | median)
hz=$(getconf CLK_TCK)
mc=$(printf '%s\n' "${mcpu[@]}" | median)
row "4 ${FILES} x 4 KiB files: cp vs put" "$sm" "$sb" "$(ratio "$sb" "$sm")" "target >= 0.5; mount CPU $(echo "scale=0; $mc * 1000000 / $hz / $FILES" | bc) µs/file"
rss4=$(peak_rss_mb "$mount_pid")

# 5. listing: ls -l of a directory of LIST entries
mkdir -p "$mnt/$GROUP/list"
(cd "$mnt/$GROUP/list" && seq "$LIST" | xargs touch)
# Each run after a remount, so that the kernel knows none of the entries.
l=()
for i in $(seq "$RUNS"); do
  umount_fs; sync; mount_fs
  l+=("$(timeit ls -l "$mnt/$GROUP/list")")
done
lt=$(printf '%s\n' "${l[@]}" | median)
row "5 ls -l of ${LIST} entries" "$lt" "-" "-" "$(echo "$LIST / $lt" | bc) entries/s, target < 1 s"
fi # not large
fi # not small

if [[ $ONLY != large ]]; then
# 8, 9. small files as FastDFS serves them: SMALL files of 4 KiB, each side
# in one process, against scripts/fdfsloop (a loop over our fdfs client that
# asks the tracker for every file, as a loop over the C client does), same
# run, alternating which goes first.
small=$work/small2
mkdir -p "$small" "$work/lbdata" "$work/lbmnt"
for i in $(seq "$SMALL"); do head -c 4096 /dev/urandom >"$small/f$i.dat"; done
# Each side reads files of its own, written once beforehand: the mount's
# through cp, the loop's through itself (their IDs in loop.ids).
mkdir -p "$mnt/$GROUP/cold"
cp -r "$small/." "$mnt/$GROUP/cold/"
"$work/fdfsloop" -tracker "$TRACKER" -group "$GROUP" -upload "$small" -ids "$work/loop.ids" >/dev/null
sync
# 8. cold reads: cat of every file (one process) through a fresh mount with
# an empty block cache vs the loop's downloads. The storage's page cache
# holds both sets of files (both were written just now).
r=(); b=()
for i in $(seq "$RUNS"); do
  umount_fs; rm -rf "$work/cache"; mount_fs
  if ((i % 2)); then
    r+=("$(timeit bash -c 'cat "$1"/*' _ "$mnt/$GROUP/cold")")
    b+=("$("$work/fdfsloop" -tracker "$TRACKER" -download "$work/loop.ids")")
  else
    b+=("$("$work/fdfsloop" -tracker "$TRACKER" -download "$work/loop.ids")")
    r+=("$(timeit bash -c 'cat "$1"/*' _ "$mnt/$GROUP/cold")")
  fi
done
rm_=$(printf '%s\n' "${r[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median)
row "8 cold cat of ${SMALL} x 4 KiB vs loop" "$rm_" "$bm" "$(ratio "$bm" "$rm_")" "target >= 0.6; $(echo "$SMALL / $rm_" | bc) vs $(echo "$SMALL / $bm" | bc) files/s"
# 9. creates: cp -r into a group vs the loop's uploads; beside them cp -r
# into the go-fuse loopback example over a local directory (FUSE's own
# cost with a file system that does nothing), in the same rotation.
"$work/loopback" -q "$work/lbmnt" "$work/lbdata" >"$work/loopback.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do mountpoint -q "$work/lbmnt" && break; sleep 0.05; done
mountpoint -q "$work/lbmnt" || { echo "loopback mount failed:"; cat "$work/loopback.log"; exit 1; }
w=(); b=(); l=()
for i in $(seq "$RUNS"); do
  mkdir -p "$mnt/$GROUP/create$i" "$work/lbmnt/create$i"
  sync
  if ((i % 2)); then
    w+=("$(timeit cp -r "$small/." "$mnt/$GROUP/create$i/")")
    l+=("$(timeit cp -r "$small/." "$work/lbmnt/create$i/")")
    b+=("$("$work/fdfsloop" -tracker "$TRACKER" -group "$GROUP" -upload "$small")")
  else
    b+=("$("$work/fdfsloop" -tracker "$TRACKER" -group "$GROUP" -upload "$small")")
    l+=("$(timeit cp -r "$small/." "$work/lbmnt/create$i/")")
    w+=("$(timeit cp -r "$small/." "$mnt/$GROUP/create$i/")")
  fi
done
fusermount3 -u "$work/lbmnt"
wm=$(printf '%s\n' "${w[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median); lm=$(printf '%s\n' "${l[@]}" | median)
row "9 cp -r of ${SMALL} x 4 KiB vs loop" "$wm" "$bm" "$(ratio "$bm" "$wm")" "target >= 0.45 (or 0.9 of loopback); $(echo "$SMALL / $wm" | bc) vs $(echo "$SMALL / $bm" | bc) files/s"
row "9b go-fuse loopback cp -r, ceiling" "$lm" "$bm" "$(ratio "$bm" "$lm")" "mount / loopback: $(ratio "$lm" "$wm"); $(echo "$SMALL / $lm" | bc) files/s"
rss9=$(peak_rss_mb "$mount_pid")

# 10. load: 16 writers and 16 readers at once for LOAD seconds, files of
# 1 KiB to 4 MiB, every read checked (scripts/loadmix), on a fresh mount:
# the mount's peak RSS, whose bound is --buffer-size for the writes.
umount_fs; mount_fs
lo=$("$work/loadmix" -dir "$mnt/$GROUP/load" -duration "${LOAD}s")
rss10=$(peak_rss_mb "$mount_pid")
row "10 load 16+16, 1 KiB-4 MiB, ${LOAD} s" "-" "-" "-" "$lo; peak RSS ${rss10} MB, target < 200 MB"
fi # not large
umount_fs

echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r); runs per case: $RUNS"
echo "| case | fdfsfs (s) | baseline (s) | ratio | note |"
echo "|---|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
echo "| 7 peak RSS of the mount | case 1: ${rss1} MB | case 4: ${rss4} MB | cases 8-9: ${rss9} MB | target < 200 MB |"
