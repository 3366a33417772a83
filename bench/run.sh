#!/usr/bin/env bash
# bench/run.sh — `make bench`: how fast and how lean `ramboot fetch` is next to the pipelines it
# replaces, what the seed really runs first, and next to the limits of its own work, on root file
# systems served by nginx on loopback and extracted into a tmpfs; and how fast ramboot's LZMA
# decoder is next to liblzma's on one core.
#
# Cases, for each image (each run BENCH_RUNS times, interleaved round-robin so that load changes
# on the machine spread over every case instead of penalising one, the order reversed every other
# round; the median is reported):
#   the seed         busybox wget -q -O- URL | pixz -d | busybox tar -x   (both .xz files)
#                    busybox wget -q -O- URL | zstd -d | busybox tar -x   (zstd file)
#                    what the seed's initramfs runs (Debian's busybox-static, its wget and tar)
#   GNU pipelines    wget -q -O- URL | pixz -d | tar -x     (both .xz files; ramroot's loader on a full system)
#                    curl -s URL | zstd -d | tar -x         (zstd file: the C pipeline)
#                    curl -s URL | xz -d -T0 | tar -x       (informational, no target)
#   limits           tar -xf rootfs.tar                     (GNU tar from a local plain tar: no download, no decoding)
#                    zstd -d -c FILE >/dev/null             (decoding alone, local file)
#                    bench/xzdecode, all cores, FILE >/dev/null (ramboot's xz decoder alone, both .xz files)
#   ramboot fetch    -q --sha256 SUM URL DIR               (pixz file, xz -T0 file, zstd file)
#   LZMA, 1 core     bench/xzdecode FILE >/dev/null vs xz -T1 -d -c FILE >/dev/null (xz -T0 file)
# The zstd limit is the larger of its two: a loader that overlaps decoding and extraction
# perfectly takes as long as the slower of them.
#
# Images: "gen", the tar bench/genimage makes (deterministic, BENCH_MB of content, shaped like a
# real root: ~11,700 entries at the default 150, deep paths, hard links, file capabilities and
# user xattrs, a PAX header on every entry as GNU tar --format=posix writes); and "debian",
# a real Debian root (scripts/debian-rootfs.sh, what the VM tests boot), when
# /var/cache/ramboot/debian-rootfs.tar.zst exists (BENCH_DEBIAN=0 leaves it out, BENCH_DEBIAN=1
# requires it). Each tar is compressed with `pixz -9` (ramroot users' recipe: few, large
# blocks), `xz -T0 -6` (xz's own multi-threaded mode: 24 MiB blocks; -6 rather than -9 because it
# is xz's default and what `tar -J` gives) and `zstd -19 -T0`. All of them are cached in
# BENCH_DIR and rebuilt only when their inputs change.
#
# The page cache is not dropped: nginx serves from memory after the first run, which is what a
# boot server with a warm cache does, and keeps the disk out of the measurement.
#
# Wall times are what the targets are about; the CPU time (user + system, all threads) of each
# case is shown beside them: on a machine other work shares, wall times follow the CPU share a
# case gets, and the CPU time says what bounds a missed target.
#
# Environment: BENCH_MB (generated content, default 150: about 175 MB of tar), BENCH_RUNS (default
# 3), BENCH_DIR (work directory, default /tmp/ramboot-bench), BENCH_DEBIAN (auto, 0 or 1),
# BENCH_BASELINE (another ramboot binary, say one built from main before a change: adds its fetch
# of each file as a case, and the ratio of this tree's to it, marked against no slower for the xz
# files: the README's baseline is c8299eb, the last commit before issues 8-14, whose xz decoder
# the one of issue 11 replaced), BENCH_CASES (names of the cases to
# run, space-separated, say "ramboot-zst zstd-c zstd-null tar-local": a quicker run for one
# format; ratios whose cases did not run are left out). Needs root (tmpfs mount, chown).
#
# The output ends with one Markdown table per image, naming the reference of every ratio: what
# the README quotes.
#
# It measures, it does not test: the exit status is 0 whether targets are met or missed, and
# non-zero only when a step breaks or when ramboot's tree differs from tar's.
set -euo pipefail
export LC_ALL=C # decimal points, byte-wise sort and column widths

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_MB=${BENCH_MB:-150}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/ramboot-bench}
BENCH_DEBIAN=${BENCH_DEBIAN:-auto}
DEBIAN_ZST=${RAMBOOT_DEBIAN_DIR:-/var/cache/ramboot/debian-rootfs.tar.zst}
BASELINE=${BENCH_BASELINE:-}
SEED=1
RAMBOOT=$REPO/bin/ramboot
XZDECODE=$BENCH_DIR/xzdecode
WWW=$BENCH_DIR/www
MNT=$BENCH_DIR/mnt
DEST=$MNT/root

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
	[[ $BENCH_DEBIAN =~ ^(auto|0|1)$ ]] || die "BENCH_DEBIAN=$BENCH_DEBIAN: want auto, 0 or 1"
	[[ $(id -u) == 0 ]] || die "needs root: it mounts a tmpfs and extracts files owned by other users"
	local t
	for t in go nginx pixz xz zstd wget curl tar busybox sha256sum stat find getfattr /usr/bin/time mountpoint; do
		command -v "$t" >/dev/null || die "$t not found (Debian: apt-get install -y nginx pixz xz-utils zstd wget curl time busybox-static attr)"
	done
	local a
	for a in wget tar; do
		busybox "$a" --help >/dev/null 2>&1 || die "busybox has no $a applet (Debian's busybox-static has both)"
	done
	[[ -x $RAMBOOT ]] || die "$RAMBOOT missing: run make build (or make bench)"
	[[ -z $BASELINE || -x $BASELINE ]] || die "BENCH_BASELINE=$BASELINE is not an executable"
	mkdir -p "$BENCH_DIR" "$WWW"
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$XZDECODE" ./bench/xzdecode) || die "building bench/xzdecode"
}

# now prints the wall clock in seconds with microseconds, without forking.
now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# cached NAME PARAMS: true when NAME exists and was made from PARAMS (recorded in NAME.params).
cached() { [[ -f $1 && -f $1.params && $(<"$1.params") == "$2" ]]; }

# stamp_tar TAR PARAMS records that TAR was made from PARAMS, with its content's hash (the
# compressed files are keyed on it, so that a change to the generator that does not change its
# output, or a lost stamp, does not cost minutes of compression).
stamp_tar() {
	sha256sum <"$1" | cut -d' ' -f1 >"$1.sha256"
	echo "$2" >"$1.params"
}

# image_gen writes gen.tar unless the generator's source and parameters are unchanged.
image_gen() {
	local tar=$BENCH_DIR/gen.tar src params start
	src=$(cat "$REPO"/bench/genimage/*.go | sha256sum | cut -c1-16)
	params="genimage $src mb=$BENCH_MB seed=$SEED $(go env GOVERSION)"
	if cached "$tar" "$params" && [[ -s $tar.sha256 ]]; then
		log "image gen: cached $tar ($params)"
		return
	fi
	rm -f "$tar.params" "$tar.sha256" # an interrupted run must not leave a stamp beside a stale tar
	log "image gen: generating ${BENCH_MB} MB ($params)"
	start=$(now)
	(cd "$REPO" && CGO_ENABLED=0 go build -o "$BENCH_DIR/genimage" ./bench/genimage) || die "building bench/genimage"
	"$BENCH_DIR/genimage" -mb "$BENCH_MB" -seed "$SEED" -o "$tar" >"$tar.shape" || die "generating the image"
	cat "$tar.shape" >&2
	stamp_tar "$tar" "$params"
	log "image gen: generated in $(elapsed "$start")s"
}

# image_debian writes debian.tar, the Debian root of scripts/debian-rootfs.sh, decompressed.
image_debian() {
	local tar=$BENCH_DIR/debian.tar params
	params="debian $(sha256sum <"$DEBIAN_ZST" | cut -d' ' -f1)"
	if cached "$tar" "$params" && [[ -s $tar.sha256 ]]; then
		log "image debian: cached $tar"
		return
	fi
	rm -f "$tar.params" "$tar.sha256"
	zstd -d -q -c "$DEBIAN_ZST" >"$tar" || die "decompressing $DEBIAN_ZST"
	stamp_tar "$tar" "$params"
	log "image debian: $(size_mb "$tar") MB from $DEBIAN_ZST"
}

# compress IMG OUT CMD...: OUT = CMD < IMG.tar, unless cached for the same tar content, command
# line and tool version.
compress() {
	local tar=$BENCH_DIR/$1.tar out=$WWW/$2 params start
	shift 2
	params="tar sha256 $(<"$tar.sha256") | $* | $(tool_version "$1")"
	if cached "$out" "$params"; then
		log "compress: cached $out"
		return
	fi
	rm -f "$out.params"
	log "compress: $* -> $(basename "$out") (minutes at this size)"
	start=$(now)
	"$@" <"$tar" >"$out.tmp" || die "compressing with $*"
	mv "$out.tmp" "$out"
	echo "$params" >"$out.params"
	log "compress: $(basename "$out"): $(size_mb "$out") MB (ratio $(ratio "$(stat -c %s "$tar")" "$(stat -c %s "$out")")) in $(elapsed "$start")s"
}

tool_version() {
	case $1 in
	pixz) pixz -h 2>&1 | grep -m1 '^pixz ' || true ;;
	*) "$1" --version 2>&1 | head -1 || true ;;
	esac
}

size_mb() { awk -v n="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; } # GNU time's KiB

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
	echo ok >"$WWW/probe"
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
			if [[ $(curl -sf "http://127.0.0.1:$port/probe" 2>/dev/null) == ok ]]; then
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

# manifest prints what a tree is made of, in a stable order: type and mode (raw, in hex), mtime,
# owner, size, link count (hard links), device numbers, name and symlink target; then every
# file's SHA-256. atimes are left out (tar sets them to now). Extended attributes are left out
# too: GNU tar -x and busybox tar do not set them (ramboot does; its tests check that).
manifest() {
	(
		cd "$DEST"
		find . -print0 | LC_ALL=C sort -z | xargs -0 stat -c '%f %Y %u:%g %s %h %t:%T %N'
		find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
	)
}

# no_link_mtimes masks the mtimes of directories and symlinks in a manifest: busybox tar leaves
# them at the time of extraction (it sets neither a directory's mtime after filling it nor a
# symlink's), which is the one way its trees differ from GNU tar's on these images.
no_link_mtimes() { awk '$1 ~ /^(4|a)/ && NF >= 7 { $2 = "-" } 1' "$1"; }

# xattr_count prints how many extended attributes the files of the extracted tree carry.
xattr_count() { (cd "$DEST" && getfattr -R -h -d -m - . 2>/dev/null | grep -c '^[a-z]*\.[^=]*=' || true); }

# check_xattrs IMG CASE: ramboot sets the extended attributes of the archive (file capabilities,
# user xattrs; GNU and busybox tar -x do not), and must have set all of them, so that it is not
# timed doing less than it does at boot: on the generated image, as many as genimage wrote.
check_xattrs() {
	local img=$1 name=$2 got want
	got=$(xattr_count)
	if [[ $img == gen ]]; then
		want=$(sed -n 's/.*; \([0-9]*\) xattrs$/\1/p' "$BENCH_DIR/gen.tar.shape" | head -1)
		[[ -n $want ]] || die "$BENCH_DIR/gen.tar.shape does not say how many xattrs the image has"
		[[ $got == "$want" ]] || die "$img: $name set $got extended attributes, the image has $want"
	fi
	log "check: $img: $name set $got extended attributes"
}

# check_tree IMG CASE compares the tree that CASE extracted with the reference (the image's
# first case's) and stops the benchmark if they differ: speed only counts with identical
# results.
check_tree() {
	local img=$1 name=$2 m=$BENCH_DIR/manifest.$1.$2 first=$TREE_REF
	manifest >"$m" || die "listing the tree extracted by $img $name"
	[[ $name != ramboot-* && $name != baseline-* ]] || check_xattrs "$img" "$name"
	if [[ $name == "$first" ]]; then
		ENTRIES[$img]=$(cd "$DEST" && find . | wc -l)
		log "check: $img: reference tree from $name: ${ENTRIES[$img]} entries"
		return
	fi
	if [[ -n ${LOOSE[$name]:-} || -n ${LOOSE[$first]:-} ]]; then
		if ! cmp -s <(no_link_mtimes "$BENCH_DIR/manifest.$img.$first") <(no_link_mtimes "$m"); then
			diff <(no_link_mtimes "$BENCH_DIR/manifest.$img.$first") <(no_link_mtimes "$m") | head -20 >&2 || true
			die "$img: the tree extracted by $name differs from $first's (manifests in $BENCH_DIR/manifest.$img.*)"
		fi
		log "check: $img: $name extracted the same tree, but for directory and symlink mtimes (busybox tar)"
		return
	fi
	if ! cmp -s "$BENCH_DIR/manifest.$img.$first" "$m"; then
		diff "$BENCH_DIR/manifest.$img.$first" "$m" | head -20 >&2 || true
		die "$img: the tree extracted by $name differs from $first's (manifests in $BENCH_DIR/manifest.$img.*)"
	fi
	log "check: $img: $name extracted the same tree"
}

# run_case IMG NAME RUN times one run of case NAME on image IMG, into an empty DEST; wall time
# with the shell's clock; peak RSS and CPU time (user + system) from GNU time (for a pipeline:
# RSS of the largest process in it, as wait4 reports the maximum over the shell's children, and
# CPU time of all of them).
run_case() {
	local img=$1 name=$2 run=$3 k=$1:$2 start t rss cpu
	local cmd=${CMD[$k]}
	rm -rf "$DEST"
	mkdir "$DEST"
	start=$(now)
	if ! /usr/bin/time -f '%M %U %S' -o "$BENCH_DIR/time.out" bash -o pipefail -c "$cmd" 2>"$BENCH_DIR/case.err"; then
		cat "$BENCH_DIR/case.err" >&2
		die "$img $name (run $run) failed: $cmd"
	fi
	t=$(elapsed3 "$start")
	read -r rss cpu < <(tail -1 "$BENCH_DIR/time.out" | awk '{ printf "%d %.3f\n", $1, $2 + $3 }')
	TIMES[$k]+="$t "
	CPU[$k]+="$cpu "
	if [[ -z ${RSS[$k]:-} || $rss -gt ${RSS[$k]} ]]; then
		RSS[$k]=$rss
	fi
	log "run $run/$BENCH_RUNS: $(printf '%-7s %-13s %7.3fs  cpu %6.3fs %6d MiB' "$img" "$name" "$t" "$cpu" $((rss / 1024)))"
	# pixz -d always says it cannot seek in a pipe (it looks for its tar index); show the rest.
	if grep -v '^can not seek in input: Illegal seek$' "$BENCH_DIR/case.err" >"$BENCH_DIR/case.err2"; then
		log "$img $name wrote on stderr:"
		head -5 "$BENCH_DIR/case.err2" >&2
	fi
	if ((run == 1)) && [[ -z ${NOTREE[$name]:-} ]]; then
		check_tree "$img" "$name"
	fi
}
elapsed3() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'; }

median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# target LABEL VALUE LIMIT [UNIT]: one line of the targets table, "met" when VALUE <= LIMIT.
target() {
	local unit=${4:-x}
	printf '%-56s %8s%s   target <= %s%s: %s\n' "$1" "$2" "$unit" "$3" "$unit" \
		"$(awk -v v="$2" -v l="$3" 'BEGIN { print (v <= l) ? "met" : "missed" }')"
}

# md TEXT escapes the pipes of TEXT for a Markdown table cell.
md() { printf '%s' "${1//|/\\|}"; }

# round_ratio NUM_TIMES DEN_TIMES prints the median over rounds of NUM's time over DEN's in the
# same round (the lists are in run order): a case and its reference run next to each other in
# a round, so that the load of a shared machine weighs on both alike, where a ratio of medians
# would pair times from different moments.
round_ratio() {
	paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) | awk '{ print $1 / $2 }' |
		sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# round_max A_TIMES B_TIMES prints, round by round, the larger of the two times.
round_max() {
	paste -d' ' <(tr ' ' '\n' <<<"$1" | grep .) <(tr ' ' '\n' <<<"$2" | grep .) | awk '{ printf "%s ", ($1 > $2) ? $1 : $2 }'
}

# ratio_row FILE REFERENCE REF_TIMES RAMBOOT_TIMES [TARGET]: one row of an image's ratio table:
# the medians, and ramboot's time over the reference's (round_ratio), marked against TARGET when
# there is one. A row whose times are missing (BENCH_CASES left a case out) is not printed.
ratio_row() {
	local file=$1 ref=$2 rt t lim=${5:-} r verdict=–
	[[ -n $3 && -n $4 ]] || return 0
	rt=$(median "$3")
	t=$(median "$4")
	r=$(round_ratio "$4" "$3")
	if [[ -n $lim ]]; then
		verdict="≤ ${lim}×: $(awk -v v="$r" -v l="$lim" 'BEGIN { print (v <= l) ? "met" : "**missed**" }')"
	fi
	printf '| %s | %s | %.2f | %.2f | %s× | %s |\n' "$(md "$file")" "$(md "$ref")" "$rt" "$t" "$r" "$verdict"
}

# floors IMG prints, from the same run, what bounds the targets against the limits, for the
# cases that ran: while every core decodes an xz file, the extraction's CPU adds to the load, so
# a load takes at least 1 + (its extraction's CPU) / (the decoding's CPU) of the decoder's time,
# here with GNU tar's CPU from a local plain tar (no download, no SHA-256) as the extraction's
# least; only the part of the limit's time where a core idles (its end, one block left) can
# hide more. And the zstd target against the C pipeline as a multiple of `zstd -d` alone.
floors() {
	local img=$1 name cpu_tar cpu_dec med_dec
	cpu() { median "${CPU[$img:$1]:-}"; }
	[[ -n ${CPU[$img:tar-local]:-} ]] || return 0
	cpu_tar=$(cpu tar-local)
	# The xz -T0 file only: a pixz -9 file's first block is a third of the file or more, decoded
	# on one core while the other idles, and its bound is that block's decoding.
	for name in xzT; do
		[[ -n ${CPU[$img:xzall-$name]:-} ]] || continue
		cpu_dec=$(cpu "xzall-$name")
		med_dec=$(median "${TIMES[$img:xzall-$name]}")
		awk -v t="$cpu_tar" -v d="$cpu_dec" -v w="$med_dec" -v n="$(nproc)" -v f="${LABEL_FILE[$name]}" 'BEGIN {
			printf "floor: %s: 1 + GNU tar'"'"'s CPU (%.2f s) / the decoder'"'"'s CPU (%.2f s) = %.2fx while every core decodes; the limit keeps %.2f of %d cores busy\n", f, t, d, 1 + t / d, d / w, n }'
	done
	if [[ -n ${TIMES[$img:zstd-c]:-} && -n ${TIMES[$img:zstd-null]:-} ]]; then
		awk -v c="$(median "${TIMES[$img:zstd-c]}")" -v z="$(median "${TIMES[$img:zstd-null]}")" 'BEGIN {
			printf "floor: zstd -19 file: 0.85x the C pipeline (%.3f s) is %.2fx zstd -d alone (%.3f s)\n", 0.85 * c, 0.85 * c / z, z }'
	fi
}

report() {
	local img=$1 name k med mbs tar_bytes tar=$BENCH_DIR/$1.tar f
	tar_bytes=$(stat -c %s "$tar")
	declare -gA MED
	echo
	echo "== image $img (${IMAGE_DESC[$img]}): $(size_mb "$tar") MB tar, ${ENTRIES[$img]:-?} entries; $BENCH_RUNS run(s) per case, interleaved, median"
	f=$WWW/$img
	echo "files: pixz -9 $(size_mb "$f.pixz.tar.xz") MB ($(xz_block_count "$f.pixz.tar.xz") blocks of <= ${BLOCK[$img:pixz]} MiB)," \
		"xz -T0 -6 $(size_mb "$f.xzT.tar.xz") MB ($(xz_block_count "$f.xzT.tar.xz") blocks of <= ${BLOCK[$img:xzT]} MiB)," \
		"zstd -19 $(size_mb "$f.tar.zst") MB"
	echo
	echo "| case | median s | min s | MB/s | CPU s | peak RSS MiB |"
	echo "|---|---|---|---|---|---|"
	for name in "${CASES[@]}"; do
		k=$img:$name
		med=$(median "${TIMES[$k]}")
		MED[$k]=$med
		mbs=$(awk -v b="$tar_bytes" -v t="$med" 'BEGIN { printf "%.1f", b / 1e6 / t }')
		printf '| %s | %.3f | %.3f | %s | %.3f | %s |\n' "$(md "${LABEL[$name]}")" "$med" "$(tr ' ' '\n' <<<"${TIMES[$k]}" | grep . | sort -g | head -1)" \
			"$mbs" "$(median "${CPU[$k]}")" "$(mib "${RSS[$k]}")"
	done
	echo "(MB = 10^6 bytes of uncompressed tar, at the median; CPU = user + system of every process, median;"
	echo " a pipeline's RSS is its largest process's; RSS is the maximum over runs. Ratios below: the median"
	echo " over rounds of ramboot's time over the reference's in the same round)"
	echo
	m() { echo "${MED[$img:$1]:-}"; }
	tm() { echo "${TIMES[$img:$1]:-}"; }
	local zlimit=
	if [[ -n $(tm zstd-null) && -n $(tm tar-local) ]]; then
		zlimit=$(round_max "$(tm zstd-null)" "$(tm tar-local)")
	fi
	echo "| ramboot fetch of | reference | reference s | ramboot s | ratio | target |"
	echo "|---|---|---|---|---|---|"
	local file
	for name in pixz xzT; do
		file=${LABEL_FILE[$name]}
		ratio_row "$file" "the seed: busybox wget|pixz -d|busybox tar" "$(tm "bb-$name")" "$(tm "ramboot-$name")" "${SEED_TARGET[$name]}"
		ratio_row "$file" "GNU: wget|pixz -d|tar" "$(tm "seed-$name")" "$(tm "ramboot-$name")"
		ratio_row "$file" "limit: ramboot's xz decoder alone, $(nproc) cores, to /dev/null" "$(tm "xzall-$name")" "$(tm "ramboot-$name")" 1.05
		# Issue 21: an xz load no slower than with the decoder before issues 8-14 (c8299eb).
		[[ -z $BASELINE ]] || ratio_row "$file" "baseline: BENCH_BASELINE's fetch" "$(tm "baseline-$name")" "$(tm "ramboot-$name")" 1.00
	done
	file="zstd -19 file"
	ratio_row "$file" "the seed: busybox wget|zstd -d|busybox tar" "$(tm bb-zst)" "$(tm ramboot-zst)"
	ratio_row "$file" "the seed on xz: busybox wget|pixz -d|busybox tar, pixz -9 file" "$(tm bb-pixz)" "$(tm ramboot-zst)" 0.25
	ratio_row "$file" "C: curl|zstd -d|tar" "$(tm zstd-c)" "$(tm ramboot-zst)" 0.85
	if [[ -n $zlimit ]]; then
		ratio_row "$file" "$(printf 'limit: the larger of zstd -d >/dev/null (%.2f s) and GNU tar -xf of the local plain tar (%.2f s)' "$(m zstd-null)" "$(m tar-local)")" "$zlimit" "$(tm ramboot-zst)" 1.5
	fi
	[[ -z $BASELINE ]] || ratio_row "$file" "baseline: BENCH_BASELINE's fetch" "$(tm baseline-zst)" "$(tm ramboot-zst)"
	ratio_row "LZMA alone, 1 worker 1 CPU, xz -T0 file (bench/xzdecode)" "xz -T1 -d" "$(tm xzdec-c)" "$(tm xzdec-go)" 1.00
	echo
	floors "$img"
	local rss limit
	if [[ -n ${RSS[$img:ramboot-zst]:-} ]]; then
		target "RSS:  ramboot fetch, zstd file" "$(mib "${RSS[$img:ramboot-zst]}")" 64.0 " MiB"
	fi
	for name in pixz xzT; do
		[[ -n ${RSS[$img:ramboot-$name]:-} ]] || continue
		rss=$(mib "${RSS[$img:ramboot-$name]}")
		# A block's output per worker and one block more (xzpar decodes ahead while the
		# extraction reads a decoded block), plus 32 MiB for the rest.
		limit=$(awk -v b="${BLOCK[$img:$name]}" -v n="$(nproc)" 'BEGIN { printf "%.1f", (n > 1 ? n + 1 : 1) * b + 32 }')
		target "RSS:  ramboot fetch, ${LABEL_FILE[$name]} ($(( $(nproc) > 1 ? $(nproc) + 1 : 1 ))x${BLOCK[$img:$name]}+32)" "$rss" "$limit" " MiB"
	done
	if [[ -n ${RSS[$img:xzdec-go]:-} && -n ${RSS[$img:xzdec-c]:-} ]]; then
		echo "RSS:  xzdecode $(mib "${RSS[$img:xzdec-go]}") MiB, xz -T1 -d $(mib "${RSS[$img:xzdec-c]}") MiB"
	fi
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

# setup_image IMG makes IMG.tar and its compressed files, and the command of every case on it.
setup_image() {
	local img=$1 f u name
	"image_$img"
	[[ $img != gen ]] || log "image gen: $(head -1 "$BENCH_DIR/gen.tar.shape" 2>/dev/null || echo '(shape not recorded)')"
	compress "$img" "$img.pixz.tar.xz" pixz -9
	compress "$img" "$img.xzT.tar.xz" xz -T0 -6 -c
	compress "$img" "$img.tar.zst" zstd -19 -T0 -q -c
	BLOCK[$img:pixz]=$(xz_block_mib "$WWW/$img.pixz.tar.xz")
	BLOCK[$img:xzT]=$(xz_block_mib "$WWW/$img.xzT.tar.xz")
	for f in pixz.tar.xz xzT.tar.xz tar.zst; do
		SUM[$img.$f]=$(sha256sum "$WWW/$img.$f" | cut -d' ' -f1)
	done
	u=$URL/$img
	local bb
	bb=$(command -v busybox)
	CMD[$img:bb-pixz]="$bb wget -q -O- $u.pixz.tar.xz | pixz -d | $bb tar -x -C $DEST"
	CMD[$img:bb-xzT]="$bb wget -q -O- $u.xzT.tar.xz | pixz -d | $bb tar -x -C $DEST"
	CMD[$img:bb-zst]="$bb wget -q -O- $u.tar.zst | zstd -d -q | $bb tar -x -C $DEST"
	CMD[$img:seed-pixz]="wget -q -O- $u.pixz.tar.xz | pixz -d | tar -x -C $DEST"
	CMD[$img:seed-xzT]="wget -q -O- $u.xzT.tar.xz | pixz -d | tar -x -C $DEST"
	CMD[$img:xz-xzT]="curl -sS $u.xzT.tar.xz | xz -d -T0 | tar -x -C $DEST"
	CMD[$img:zstd-c]="curl -sS $u.tar.zst | zstd -d -q | tar -x -C $DEST"
	CMD[$img:tar-local]="tar -xf $BENCH_DIR/$img.tar -C $DEST"
	CMD[$img:zstd-null]="zstd -d -q -c $WWW/$img.tar.zst >/dev/null"
	CMD[$img:xzall-pixz]="$XZDECODE -workers 0 -procs 0 $WWW/$img.pixz.tar.xz >/dev/null"
	CMD[$img:xzall-xzT]="$XZDECODE -workers 0 -procs 0 $WWW/$img.xzT.tar.xz >/dev/null"
	CMD[$img:ramboot-pixz]="$RAMBOOT fetch -q --sha256 ${SUM[$img.pixz.tar.xz]} $u.pixz.tar.xz $DEST"
	CMD[$img:ramboot-xzT]="$RAMBOOT fetch -q --sha256 ${SUM[$img.xzT.tar.xz]} $u.xzT.tar.xz $DEST"
	CMD[$img:ramboot-zst]="$RAMBOOT fetch -q --sha256 ${SUM[$img.tar.zst]} $u.tar.zst $DEST"
	CMD[$img:baseline-pixz]="$BASELINE fetch -q --sha256 ${SUM[$img.pixz.tar.xz]} $u.pixz.tar.xz $DEST"
	CMD[$img:baseline-xzT]="$BASELINE fetch -q --sha256 ${SUM[$img.xzT.tar.xz]} $u.xzT.tar.xz $DEST"
	CMD[$img:baseline-zst]="$BASELINE fetch -q --sha256 ${SUM[$img.tar.zst]} $u.tar.zst $DEST"
	CMD[$img:xzdec-go]="$XZDECODE $WWW/$img.xzT.tar.xz >/dev/null"
	CMD[$img:xzdec-c]="xz -T1 -d -c $WWW/$img.xzT.tar.xz >/dev/null"
	for name in "${CASES[@]}"; do
		[[ -n ${CMD[$img:$name]:-} ]] || die "no command for $img $name"
	done
}

main() {
	sizes
	[[ ${BENCH_ONLY:-} == sizes ]] && return 0
	check_prerequisites
	LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
	log "$(nproc) CPUs, load average $LOAD_BEFORE; BENCH_MB=$BENCH_MB BENCH_RUNS=$BENCH_RUNS BENCH_DIR=$BENCH_DIR BENCH_DEBIAN=$BENCH_DEBIAN"

	IMAGES=(gen)
	case $BENCH_DEBIAN in
	1) [[ -s $DEBIAN_ZST ]] || die "BENCH_DEBIAN=1 but $DEBIAN_ZST is missing (scripts/debian-rootfs.sh makes it)"
		IMAGES+=(debian) ;;
	auto) if [[ -s $DEBIAN_ZST ]]; then IMAGES+=(debian); else log "no $DEBIAN_ZST: the Debian image is left out"; fi ;;
	esac

	declare -gA BLOCK LABEL_FILE SUM CMD LABEL NOTREE LOOSE TIMES CPU RSS ENTRIES SEED_TARGET IMAGE_DESC
	IMAGE_DESC[gen]="bench/genimage -mb $BENCH_MB: generated, shaped like a real root"
	IMAGE_DESC[debian]="the Debian root of scripts/debian-rootfs.sh"
	LABEL_FILE[pixz]="pixz -9 file"
	LABEL_FILE[xzT]="xz -T0 -6 file"
	# Targets against the seed's pipeline on the same file.
	SEED_TARGET[pixz]=0.60
	SEED_TARGET[xzT]=0.70
	# The first case that extracts is the reference tree every other case is compared with.
	# Each ramboot case sits between its references, so that they run close together in a round.
	CASES=(seed-pixz bb-pixz ramboot-pixz xzall-pixz
		seed-xzT bb-xzT ramboot-xzT xzall-xzT xz-xzT
		bb-zst zstd-c ramboot-zst zstd-null tar-local
		xzdec-go xzdec-c)
	LABEL[bb-pixz]="busybox (the seed): wget|pixz -d|tar, pixz -9 file"
	LABEL[bb-xzT]="busybox (the seed): wget|pixz -d|tar, xz -T0 -6 file"
	LABEL[bb-zst]="busybox (the seed): wget|zstd -d|tar, zstd -19 file"
	LABEL[seed-pixz]="GNU: wget|pixz -d|tar, pixz -9 file"
	LABEL[seed-xzT]="GNU: wget|pixz -d|tar, xz -T0 -6 file"
	LABEL[xz-xzT]="(info) curl|xz -d -T0|tar, xz -T0 -6 file"
	LABEL[zstd-c]="C: curl|zstd -d|tar, zstd -19 file"
	LABEL[tar-local]="limit: GNU tar -xf, local plain tar"
	LABEL[zstd-null]="limit: zstd -d >/dev/null, local zstd -19 file"
	LABEL[xzall-pixz]="limit: xzdecode, all cores >/dev/null, pixz -9 file"
	LABEL[xzall-xzT]="limit: xzdecode, all cores >/dev/null, xz -T0 -6 file"
	LABEL[ramboot-pixz]="ramboot fetch, pixz -9 file"
	LABEL[ramboot-xzT]="ramboot fetch, xz -T0 -6 file"
	LABEL[ramboot-zst]="ramboot fetch, zstd -19 file"
	LABEL[xzdec-go]="LZMA: xzdecode, 1 worker 1 CPU >/dev/null, xz -T0 -6 file"
	LABEL[xzdec-c]="LZMA: xz -T1 -d >/dev/null, xz -T0 -6 file"
	if [[ -n $BASELINE ]]; then
		CASES+=(baseline-pixz baseline-xzT baseline-zst)
		LABEL[baseline-pixz]="baseline: BENCH_BASELINE fetch, pixz -9 file"
		LABEL[baseline-xzT]="baseline: BENCH_BASELINE fetch, xz -T0 -6 file"
		LABEL[baseline-zst]="baseline: BENCH_BASELINE fetch, zstd -19 file"
	fi
	if [[ -n ${BENCH_CASES:-} ]]; then
		local want=() c
		for c in $BENCH_CASES; do
			[[ -n ${LABEL[$c]:-} ]] || die "BENCH_CASES: no case $c (cases: ${CASES[*]})"
		done
		for c in "${CASES[@]}"; do
			[[ " $BENCH_CASES " == *" $c "* ]] && want+=("$c")
		done
		CASES=("${want[@]}")
	fi
	for name in zstd-null xzall-pixz xzall-xzT xzdec-go xzdec-c; do
		NOTREE[$name]=1
	done
	for name in bb-pixz bb-xzT bb-zst; do
		LOOSE[$name]=1
	done
	TREE_REF=
	for name in "${CASES[@]}"; do
		if [[ -z ${NOTREE[$name]:-} ]]; then
			TREE_REF=$name
			break
		fi
	done

	serve
	local img run name
	for img in "${IMAGES[@]}"; do
		setup_image "$img"
	done
	mount_tmpfs

	# Rounds alternate between the tools; every other round runs them in reverse order, so that no
	# case always follows the same one (a pipeline that leaves dirty pages or a busy CPU behind).
	local order=("${CASES[@]}") reversed=() i
	for ((i = ${#CASES[@]} - 1; i >= 0; i--)); do
		reversed+=("${CASES[i]}")
	done
	for run in $(seq "$BENCH_RUNS"); do
		if ((run % 2 == 0)); then order=("${reversed[@]}"); else order=("${CASES[@]}"); fi
		for img in "${IMAGES[@]}"; do
			for name in "${order[@]}"; do
				run_case "$img" "$name" "$run"
			done
		done
	done
	rm -rf "$DEST"
	echo
	echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), load average before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg)"
	for img in "${IMAGES[@]}"; do
		report "$img"
	done
}

main "$@"
