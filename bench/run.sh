#!/usr/bin/env bash
# bench/run.sh — `make bench`: how fast and how lean `ramboot fetch` is next to the pipelines it
# replaces, on the same generated root file system, served by nginx on loopback and extracted
# into a tmpfs.
#
# Cases (each run BENCH_RUNS times, interleaved round-robin so that load changes on the machine
# spread over every case instead of penalising one; the median is reported):
#   seed pipeline    wget -q -O- URL | pixz -d | tar -x     (on both .xz files; ramroot's loader)
#   xz -d pipeline   curl -s URL | xz -d -T0 | tar -x       (informational, no target)
#   C zstd pipeline  curl -s URL | zstd -d | tar -x
#   ramboot fetch    -q --sha256 SUM URL DIR               (pixz file, xz -T0 file, zstd file)
#
# Images: the tar comes from bench/genimage (deterministic); compressed with `pixz -9` (ramroot
# users' recipe: few, large blocks), `xz -T0 -6` (xz's own multi-threaded mode: 24 MiB blocks;
# -6 rather than -9 because it is xz's default and what `tar -J` gives) and `zstd -19 -T0`.
# All of them are cached in BENCH_DIR and rebuilt only when their inputs change.
#
# The page cache is not dropped: nginx serves from memory after the first run, which is what a
# boot server with a warm cache does, and keeps the disk out of the measurement.
#
# Environment: BENCH_MB (uncompressed content, default 400), BENCH_RUNS (default 3),
# BENCH_DIR (work directory, default /tmp/ramboot-bench). Needs root (tmpfs mount, chown).
#
# It measures, it does not test: the exit status is 0 whether targets are met or missed, and
# non-zero only when a step breaks or when ramboot's tree differs from tar's.
set -euo pipefail
export LC_ALL=C # decimal points, byte-wise sort and column widths

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_MB=${BENCH_MB:-400}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/ramboot-bench}
SEED=1
RAMBOOT=$REPO/bin/ramboot
WWW=$BENCH_DIR/www
MNT=$BENCH_DIR/mnt
DEST=$MNT/root
TAR=$BENCH_DIR/rootfs.tar

NGINX_PID=
MOUNTED=

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

cleanup() {
	if [[ -n $NGINX_PID ]]; then
		kill "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
	fi
	if [[ -n $MOUNTED ]]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # run the EXIT trap on ^C too

check_prerequisites() {
	[[ $BENCH_MB =~ ^[1-9][0-9]*$ ]] || die "BENCH_MB=$BENCH_MB: want a positive integer"
	[[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS=$BENCH_RUNS: want a positive integer"
	[[ $(id -u) == 0 ]] || die "needs root: it mounts a tmpfs and extracts files owned by other users"
	local t
	for t in go nginx pixz xz zstd wget curl tar sha256sum stat find /usr/bin/time mountpoint; do
		command -v "$t" >/dev/null || die "$t not found (Debian: apt-get install -y nginx pixz xz-utils zstd wget curl time)"
	done
	[[ -x $RAMBOOT ]] || die "$RAMBOOT missing: run make build (or make bench)"
	mkdir -p "$BENCH_DIR" "$WWW"
}

# now prints the wall clock in seconds with microseconds, without forking.
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# cached NAME PARAMS: true when NAME exists and was made from PARAMS (recorded in NAME.params).
cached() { [[ -f $1 && -f $1.params && $(<"$1.params") == "$2" ]]; }

# generate_image writes rootfs.tar unless the generator's source and parameters are unchanged.
generate_image() {
	local src params start
	src=$(cat "$REPO"/bench/genimage/*.go | sha256sum | cut -c1-16)
	params="genimage $src mb=$BENCH_MB seed=$SEED $(go env GOVERSION)"
	if cached "$TAR" "$params" && [[ -s $TAR.sha256 ]]; then
		log "image: cached $TAR ($params)"
		return
	fi
	rm -f "$TAR.params" "$TAR.sha256" # an interrupted run must not leave a stamp beside a stale tar
	log "image: generating ${BENCH_MB} MB ($params)"
	start=$(now)
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$BENCH_DIR/genimage" ./bench/genimage) || die "building bench/genimage"
	"$BENCH_DIR/genimage" -mb "$BENCH_MB" -seed "$SEED" -o "$TAR" >&2 || die "generating the image"
	# Compressed files are keyed on the tar's content, so that a change to the generator that
	# does not change its output (or a lost stamp) does not cost minutes of compression.
	sha256sum <"$TAR" | cut -d' ' -f1 >"$TAR.sha256"
	echo "$params" >"$TAR.params"
	log "image: generated in $(elapsed "$start")s"
}

# compress OUT CMD...: OUT = CMD < rootfs.tar, unless cached for the same tar content, command
# line and tool version.
compress() {
	local out=$WWW/$1 params start
	shift
	params="tar sha256 $(<"$TAR.sha256") | $* | $(tool_version "$1")"
	if cached "$out" "$params"; then
		log "compress: cached $out"
		return
	fi
	rm -f "$out.params"
	log "compress: $* -> $(basename "$out") (minutes at this size)"
	start=$(now)
	"$@" <"$TAR" >"$out.tmp" || die "compressing with $*"
	mv "$out.tmp" "$out"
	echo "$params" >"$out.params"
	log "compress: $(basename "$out"): $(size_mb "$out") MB (ratio $(ratio "$(stat -c %s "$TAR")" "$(stat -c %s "$out")")) in $(elapsed "$start")s"
}

tool_version() {
	case $1 in
	pixz) pixz -h 2>&1 | grep -m1 '^pixz ' || true ;;
	*) "$1" --version 2>&1 | head -1 || true ;;
	esac
}

size_mb() { awk -v n="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

# xz_block_mib FILE prints the largest uncompressed block size of an .xz file in MiB: ramboot
# decodes blocks in parallel, so its memory bound is stated in blocks.
xz_block_mib() {
	xz --robot -lvv "$1" | awk -F'\t' '$1 == "block" && $8 > m { m = $8 } END { printf "%.1f", m / 1048576 }'
}
xz_block_count() { xz --robot -lvv "$1" | awk -F'\t' '$1 == "block" { n++ } END { print n + 0 }'; }

# serve starts nginx on the first free loopback port from 18080, in the foreground of a
# background job (daemon off; master_process off), so that the EXIT trap can stop it by pid.
serve() {
	local conf=$BENCH_DIR/nginx port i
	mkdir -p "$conf/tmp"
	for port in $(seq 18080 18179); do
		cat >"$conf/nginx.conf" <<-EOF
			daemon off;
			master_process off;
			worker_processes 1;
			pid $conf/nginx.pid;
			error_log $conf/error.log;
			events { worker_connections 64; }
			http {
			    access_log off;
			    sendfile on;
			    tcp_nopush on;
			    default_type application/octet-stream;
			    client_body_temp_path $conf/tmp/body;
			    proxy_temp_path $conf/tmp/proxy;
			    fastcgi_temp_path $conf/tmp/fastcgi;
			    uwsgi_temp_path $conf/tmp/uwsgi;
			    scgi_temp_path $conf/tmp/scgi;
			    server {
			        listen 127.0.0.1:$port;
			        root $WWW;
			    }
			}
		EOF
		nginx -p "$conf" -c "$conf/nginx.conf" -e "$conf/error.log" &
		NGINX_PID=$!
		for i in $(seq 50); do
			if curl -sf -o /dev/null "http://127.0.0.1:$port/rootfs.tar.zst" -r 0-0; then
				URL=http://127.0.0.1:$port
				log "serve: nginx (pid $NGINX_PID) on $URL"
				return
			fi
			kill -0 "$NGINX_PID" 2>/dev/null || break # port taken: try the next one
			sleep 0.1
		done
		kill "$NGINX_PID" 2>/dev/null || true
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
	done
	die "nginx did not start on any port 18080-18179; see $conf/error.log"
}

# mount_tmpfs mounts a fresh tmpfs for the extractions, large enough for one tree with room for
# tmpfs's per-file page rounding.
mount_tmpfs() {
	mkdir -p "$MNT"
	if mountpoint -q "$MNT"; then
		log "tmpfs: unmounting a stale $MNT from an interrupted run"
		umount "$MNT" || die "cannot unmount stale $MNT"
	fi
	local size=$((BENCH_MB * 3 + 512))
	((size >= 2048)) || size=2048
	mount -t tmpfs -o "size=${size}m,mode=0755" ramboot-bench "$MNT" || die "mounting a tmpfs on $MNT"
	MOUNTED=1
}

# manifest prints what a tree is made of, in a stable order: name, type and mode, owner, size,
# link count (hard links), device numbers, mtime, symlink target; then every file's SHA-256.
# atimes are left out (tar sets them to now).
manifest() {
	(
		cd "$DEST"
		find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%n %f %u:%g %s %h %t:%T %Y %N'
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	)
}

# check_tree NAME compares the tree that case NAME extracted with the reference (the first
# case's) and stops the benchmark if they differ: speed only counts with identical results.
check_tree() {
	local m=$BENCH_DIR/manifest.$1
	manifest >"$m" || die "listing the tree extracted by $1"
	if [[ $1 == "${CASES[0]}" ]]; then
		ENTRIES=$(cd "$DEST" && find . | wc -l)
		log "check: reference tree from $1: $ENTRIES entries"
		return
	fi
	if ! cmp -s "$BENCH_DIR/manifest.${CASES[0]}" "$m"; then
		diff "$BENCH_DIR/manifest.${CASES[0]}" "$m" | head -20 >&2 || true
		die "the tree extracted by $1 differs from ${CASES[0]}'s (manifests in $BENCH_DIR/manifest.*)"
	fi
	log "check: $1 extracted the same tree"
}

# run_case NAME RUN times one extraction into an empty DEST; wall time with the shell's clock,
# peak RSS from GNU time (for a pipeline: the largest process in it, as wait4 reports the
# maximum over the shell's children).
run_case() {
	local name=$1 run=$2 cmd=${CMD[$1]} start t rss
	rm -rf "$DEST"
	mkdir "$DEST"
	start=$(now)
	if ! /usr/bin/time -f '%M' -o "$BENCH_DIR/time.out" bash -o pipefail -c "$cmd" 2>"$BENCH_DIR/case.err"; then
		cat "$BENCH_DIR/case.err" >&2
		die "$name (run $run) failed: $cmd"
	fi
	t=$(elapsed3 "$start")
	rss=$(tail -1 "$BENCH_DIR/time.out")
	TIMES[$name]+="$t "
	if [[ -z ${RSS[$name]:-} || $rss -gt ${RSS[$name]} ]]; then
		RSS[$name]=$rss
	fi
	log "run $run/$BENCH_RUNS: $(printf '%-14s %7.3fs %6d MiB' "$name" "$t" $((rss / 1024)))"
	# pixz -d always says it cannot seek in a pipe (it looks for its tar index); show the rest.
	if grep -v '^can not seek in input: Illegal seek$' "$BENCH_DIR/case.err" >"$BENCH_DIR/case.err2"; then
		log "$name wrote on stderr:"
		head -5 "$BENCH_DIR/case.err2" >&2
	fi
	if ((run == 1)); then
		check_tree "$name"
	fi
}
elapsed3() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# verdict VALUE LIMIT prints PASS when VALUE <= LIMIT.
verdict() { awk -v v="$1" -v l="$2" 'BEGIN { print (v <= l) ? "PASS" : "MISS" }'; }

report() {
	local name med mbs tar_bytes
	tar_bytes=$(stat -c %s "$TAR")
	declare -gA MED
	echo
	echo "ramboot fetch vs pipelines: $(size_mb "$TAR") MB tar, $ENTRIES entries, $BENCH_RUNS run(s) per case, median"
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "files: pixz -9 $(size_mb "$WWW/rootfs.pixz.tar.xz") MB ($(xz_block_count "$WWW/rootfs.pixz.tar.xz") blocks of <= ${BLOCK[pixz]} MiB)," \
		"xz -T0 -6 $(size_mb "$WWW/rootfs.xzT.tar.xz") MB ($(xz_block_count "$WWW/rootfs.xzT.tar.xz") blocks of <= ${BLOCK[xzT]} MiB)," \
		"zstd -19 $(size_mb "$WWW/rootfs.tar.zst") MB"
	echo
	printf '%-44s %9s %8s %13s\n' "case" "median s" "MB/s" "peak RSS MiB"
	for name in "${CASES[@]}"; do
		med=$(median "${TIMES[$name]}")
		MED[$name]=$med
		mbs=$(awk -v b="$tar_bytes" -v t="$med" 'BEGIN { printf "%.1f", b / 1e6 / t }')
		printf '%-44s %9.2f %8s %13s\n' "${LABEL[$name]}" "$med" "$mbs" "$(awk -v k="${RSS[$name]}" 'BEGIN { printf "%.1f", k / 1024 }')"
	done
	echo "(MB = 10^6 bytes of uncompressed tar; pipelines' RSS is their largest process, normally the decompressor; RSS is the maximum over runs)"
	echo
	printf '%-58s %8s %12s  %s\n' "target" "value" "limit" "result"
	target() { printf '%-58s %8s %12s  %s\n' "$1" "$2" "$3" "$(verdict "$2" "$4")"; }
	local r
	r=$(ratio "${MED[ramboot-pixz]}" "${MED[seed-pixz]}")
	target "xz:   ramboot / wget|pixz -d|tar, pixz -9 file" "$r" "<= 1.00" 1.0
	r=$(ratio "${MED[ramboot-xzT]}" "${MED[seed-xzT]}")
	target "xz:   ramboot / wget|pixz -d|tar, xz -T0 -6 file" "$r" "<= 1.00" 1.0
	r=$(ratio "${MED[ramboot-zst]}" "${MED[seed-pixz]}")
	target "zstd: ramboot(zstd) / wget|pixz -d|tar (pixz file)" "$r" "<= 0.25" 0.25
	r=$(ratio "${MED[ramboot-zst]}" "${MED[zstd-c]}")
	target "zstd: ramboot(zstd) / curl|zstd -d|tar" "$r" "<= 1.25" 1.25
	local rss limit
	rss=$(awk -v k="${RSS[ramboot-zst]}" 'BEGIN { printf "%.1f", k / 1024 }')
	target "RSS:  ramboot fetch, zstd file (MiB)" "$rss" "<= 64.0" 64
	for name in pixz xzT; do
		rss=$(awk -v k="${RSS[ramboot-$name]}" 'BEGIN { printf "%.1f", k / 1024 }')
		limit=$(awk -v b="${BLOCK[$name]}" 'BEGIN { printf "%.1f", 2 * b + 32 }')
		target "RSS:  ramboot fetch, ${LABEL_FILE[$name]} (2x${BLOCK[$name]}+32 MiB)" "$rss" "<= $limit" "$limit"
	done
}

# sizes prints what the README quotes of ramboot's own size: the stripped static /init and the
# initramfs for Debian's cloud kernel (the one scripts/get-kernel.sh fetches), without and with
# busybox. BENCH_ONLY=sizes prints just these.
sizes() {
	local kdir mods out
	kdir=$(bash "$REPO/scripts/get-kernel.sh")
	mods=$(ls -d "$kdir"/lib/modules/* | head -n1)
	out=$(mktemp -d)
	"$RAMBOOT" initramfs --modules "$mods" -o "$out/plain.cpio.zst" >/dev/null 2>&1 || die "ramboot initramfs failed"
	echo "sizes: /init $(awk -v n="$(stat -c %s "$REPO/bin/ramboot-init")" 'BEGIN { printf "%.1f", n / 1048576 }') MiB stripped;" \
		"initramfs for $(basename "$mods"): $(awk -v n="$(stat -c %s "$out/plain.cpio.zst")" 'BEGIN { printf "%.1f", n / 1048576 }') MiB .cpio.zst"
	if command -v busybox >/dev/null; then
		"$RAMBOOT" initramfs --modules "$mods" --busybox "$(command -v busybox)" -o "$out/bb.cpio.zst" >/dev/null 2>&1 &&
			echo "sizes: with --busybox: $(awk -v n="$(stat -c %s "$out/bb.cpio.zst")" 'BEGIN { printf "%.1f", n / 1048576 }') MiB .cpio.zst"
	fi
	rm -rf "$out"
}

main() {
	sizes
	[[ ${BENCH_ONLY:-} == sizes ]] && return 0
	check_prerequisites
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	log "$(nproc) CPUs, load average $LOAD_BEFORE; BENCH_MB=$BENCH_MB BENCH_RUNS=$BENCH_RUNS BENCH_DIR=$BENCH_DIR"
	generate_image
	compress rootfs.pixz.tar.xz pixz -9
	compress rootfs.xzT.tar.xz xz -T0 -6 -c
	compress rootfs.tar.zst zstd -19 -T0 -q -c

	declare -gA BLOCK LABEL_FILE SUM CMD LABEL TIMES RSS
	BLOCK[pixz]=$(xz_block_mib "$WWW/rootfs.pixz.tar.xz")
	BLOCK[xzT]=$(xz_block_mib "$WWW/rootfs.xzT.tar.xz")
	LABEL_FILE[pixz]="pixz -9 file"
	LABEL_FILE[xzT]="xz -T0 -6 file"
	local f
	for f in rootfs.pixz.tar.xz rootfs.xzT.tar.xz rootfs.tar.zst; do
		SUM[$f]=$(sha256sum "$WWW/$f" | cut -d' ' -f1)
	done

	serve
	mount_tmpfs

	# The first case is the reference tree every other case is compared with.
	CASES=(seed-pixz seed-xzT xz-xzT zstd-c ramboot-pixz ramboot-xzT ramboot-zst)
	CMD[seed-pixz]="wget -q -O- $URL/rootfs.pixz.tar.xz | pixz -d | tar -x -C $DEST"
	CMD[seed-xzT]="wget -q -O- $URL/rootfs.xzT.tar.xz | pixz -d | tar -x -C $DEST"
	CMD[xz-xzT]="curl -sS $URL/rootfs.xzT.tar.xz | xz -d -T0 | tar -x -C $DEST"
	CMD[zstd-c]="curl -sS $URL/rootfs.tar.zst | zstd -d -q | tar -x -C $DEST"
	CMD[ramboot-pixz]="$RAMBOOT fetch -q --sha256 ${SUM[rootfs.pixz.tar.xz]} $URL/rootfs.pixz.tar.xz $DEST"
	CMD[ramboot-xzT]="$RAMBOOT fetch -q --sha256 ${SUM[rootfs.xzT.tar.xz]} $URL/rootfs.xzT.tar.xz $DEST"
	CMD[ramboot-zst]="$RAMBOOT fetch -q --sha256 ${SUM[rootfs.tar.zst]} $URL/rootfs.tar.zst $DEST"
	LABEL[seed-pixz]="seed: wget|pixz -d|tar, pixz -9 file"
	LABEL[seed-xzT]="seed: wget|pixz -d|tar, xz -T0 -6 file"
	LABEL[xz-xzT]="(info) curl|xz -d -T0|tar, xz -T0 -6 file"
	LABEL[zstd-c]="C zstd: curl|zstd -d|tar"
	LABEL[ramboot-pixz]="ramboot fetch, pixz -9 file"
	LABEL[ramboot-xzT]="ramboot fetch, xz -T0 -6 file"
	LABEL[ramboot-zst]="ramboot fetch, zstd -19 file"

	local run name
	for run in $(seq "$BENCH_RUNS"); do
		for name in "${CASES[@]}"; do
			run_case "$name" "$run"
		done
	done
	rm -rf "$DEST"
	report
}

main "$@"
