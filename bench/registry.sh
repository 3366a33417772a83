#!/usr/bin/env bash
# bench/registry.sh — booting from an OCI registry next to booting the same bytes as a file:
# `ramboot fetch docker://HOST/bench/root:v1` (Debian's docker-registry on loopback, one zstd
# layer) against `ramboot fetch http://HOST/rootfs.tar.zst` (nginx on loopback), both into a
# tmpfs. The layer blob is the .tar.zst file itself, byte for byte, so the ratio is the cost of
# the registry path alone: the token-less ping, the manifest and config requests, the layer
# applier (whiteouts, a tar stream re-encoded into the extractor). Target: ratio <= 1.15.
#
# Environment: BENCH_MB (uncompressed content, default 150, as bench/run.sh), BENCH_RUNS (default 3),
# BENCH_DIR (work directory, default /tmp/ramboot-bench; the generated tar and its .tar.zst are
# bench/run.sh's when it made them), BENCH_ZSTD (zstd level otherwise, default 19). Needs root (tmpfs mount, chown), docker-registry, skopeo, nginx, zstd.
#
# It measures, it does not test: exit status 0 whether the target is met or missed; non-zero
# when a step breaks or the two trees differ.
set -euo pipefail
export LC_ALL=C

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_MB=${BENCH_MB:-150}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_DIR=${BENCH_DIR:-/tmp/ramboot-bench}
BENCH_ZSTD=${BENCH_ZSTD:-19}
RAMBOOT=$REPO/bin/ramboot
TAR=$BENCH_DIR/rootfs.tar
WORK=$BENCH_DIR/registry
WWW=$WORK/www
MNT=$WORK/mnt
DEST=$MNT/root

PIDS=()
MOUNTED=

log() { printf 'bench: %s\n' "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	if [[ -n $MOUNTED ]]; then
		umount "$MNT" 2>/dev/null || umount -l "$MNT" || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { printf '%s' "${EPOCHREALTIME/,/.}"; }
median() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

free_port() {
	local p
	for p in $(seq "$1" $(($1 + 99))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port from $1"
}

wait_http() {
	local i
	for i in $(seq 100); do
		curl -fs -o /dev/null "$1" && return
		sleep 0.1
	done
	die "$1 did not answer"
}

check_prerequisites() {
	[[ $(id -u) == 0 ]] || die "needs root: it mounts a tmpfs and extracts files owned by other users"
	local t
	for t in go nginx zstd curl skopeo docker-registry sha256sum; do
		command -v "$t" >/dev/null || die "$t not found (Debian: apt-get install -y nginx zstd curl skopeo docker-registry)"
	done
	[[ -x $RAMBOOT ]] || die "$RAMBOOT missing: run make build"
	mkdir -p "$WORK" "$WWW" "$MNT"
}

# image makes rootfs.tar (bench/genimage, as bench/run.sh does) and rootfs.tar.zst.
image() {
	if [[ ! -f $TAR ]]; then
		log "generating a ${BENCH_MB} MB image"
		(cd "$REPO" && CGO_ENABLED=0 go build -o "$BENCH_DIR/genimage" ./bench/genimage)
		"$BENCH_DIR/genimage" -mb "$BENCH_MB" -seed 1 -o "$TAR" >&2
	fi
	if [[ ! -f $WWW/rootfs.tar.zst || $WWW/rootfs.tar.zst -ot $TAR ]]; then
		if [[ -f $BENCH_DIR/www/rootfs.tar.zst && ! $BENCH_DIR/www/rootfs.tar.zst -ot $TAR ]]; then
			log "using bench/run.sh's $BENCH_DIR/www/rootfs.tar.zst"
			ln -f "$BENCH_DIR/www/rootfs.tar.zst" "$WWW/rootfs.tar.zst" 2>/dev/null || cp "$BENCH_DIR/www/rootfs.tar.zst" "$WWW/rootfs.tar.zst"
		else
			log "compressing with zstd -$BENCH_ZSTD -T0"
			zstd -q "-$BENCH_ZSTD" -T0 -f "$TAR" -o "$WWW/rootfs.tar.zst.tmp"
			mv "$WWW/rootfs.tar.zst.tmp" "$WWW/rootfs.tar.zst"
		fi
	fi
}

# layout writes an OCI layout whose one layer is rootfs.tar.zst itself.
layout() {
	local lay=$WORK/layout blob diff size cfg cfgsum cfgsize man mansum mansize
	rm -rf "$lay"
	mkdir -p "$lay/blobs/sha256"
	blob=$(sha256sum "$WWW/rootfs.tar.zst" | cut -d' ' -f1)
	diff=$(sha256sum "$TAR" | cut -d' ' -f1)
	size=$(stat -c %s "$WWW/rootfs.tar.zst")
	ln "$WWW/rootfs.tar.zst" "$lay/blobs/sha256/$blob" 2>/dev/null || cp "$WWW/rootfs.tar.zst" "$lay/blobs/sha256/$blob"
	cfg=$(printf '{"architecture":"%s","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' "$(go env GOARCH)" "$diff")
	cfgsum=$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
	cfgsize=$(printf '%s' "$cfg" | wc -c)
	printf '%s' "$cfg" >"$lay/blobs/sha256/$cfgsum"
	man=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:%s","size":%d}]}' "$cfgsum" "$cfgsize" "$blob" "$size")
	mansum=$(printf '%s' "$man" | sha256sum | cut -d' ' -f1)
	mansize=$(printf '%s' "$man" | wc -c)
	printf '%s' "$man" >"$lay/blobs/sha256/$mansum"
	printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"v1"}}]}' "$mansum" "$mansize" >"$lay/index.json"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
}

serve() {
	local port conf=$WORK/nginx
	mkdir -p "$conf"
	port=$(free_port 18200)
	cat >"$conf/nginx.conf" <<-EOF
		daemon off;
		master_process off;
		pid $conf/nginx.pid;
		error_log $conf/error.log warn;
		events {}
		http {
			access_log off;
			sendfile on;
			client_body_temp_path $conf/body;
			proxy_temp_path $conf/proxy;
			fastcgi_temp_path $conf/fastcgi;
			uwsgi_temp_path $conf/uwsgi;
			scgi_temp_path $conf/scgi;
			server { listen 127.0.0.1:$port; root $WWW; }
		}
	EOF
	nginx -p "$conf" -c "$conf/nginx.conf" -e "$conf/error.log" &
	PIDS+=($!)
	URL=http://127.0.0.1:$port/rootfs.tar.zst
	wait_http "$URL"

	port=$(free_port 18300)
	rm -rf "$WORK/registry-data"
	cat >"$WORK/registry.yml" <<-EOF
		version: 0.1
		log:
		  level: error
		storage:
		  filesystem:
		    rootdirectory: $WORK/registry-data
		http:
		  addr: 127.0.0.1:$port
	EOF
	docker-registry serve "$WORK/registry.yml" >"$WORK/registry.log" 2>&1 &
	PIDS+=($!)
	wait_http "http://127.0.0.1:$port/v2/"
	REF=docker://127.0.0.1:$port/bench/root:v1
	log "pushing the layout to $REF"
	skopeo copy -q --insecure-policy --dest-tls-verify=false "oci:$WORK/layout:v1" "$REF" >&2
}

mount_tmpfs() {
	mountpoint -q "$MNT" || { mount -t tmpfs -o size=90% tmpfs "$MNT"; MOUNTED=1; }
}

# run CMD...: one timed fetch into an empty DEST; prints the seconds.
run() {
	rm -rf "$DEST"
	local start
	start=$(now)
	"$@" "$DEST" >&2 || die "$* failed"
	awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }'
}

tree_sum() { (cd "$DEST" && find . -printf '%p %M %U %G %s %l\n' | sort | sha256sum | cut -c1-16); }

main() {
	check_prerequisites
	image
	layout
	serve
	mount_tmpfs
	local sum i a b ta="" tb="" treeA treeB
	sum=$(sha256sum "$WWW/rootfs.tar.zst" | cut -d' ' -f1)
	# A warm-up of each, and the trees compared.
	run "$RAMBOOT" fetch -q --sha256 "$sum" "$URL" >/dev/null
	treeA=$(tree_sum)
	run "$RAMBOOT" fetch -q "$REF" >/dev/null
	treeB=$(tree_sum)
	[[ $treeA == "$treeB" ]] || die "the registry's tree differs from the file's"
	for i in $(seq "$BENCH_RUNS"); do
		a=$(run "$RAMBOOT" fetch -q --sha256 "$sum" "$URL")
		b=$(run "$RAMBOOT" fetch -q "$REF")
		log "run $i: file $a s, registry $b s"
		ta+=" $a"
		tb+=" $b"
	done
	a=$(median "$ta")
	b=$(median "$tb")
	printf '\nregistry boot vs the same .tar.zst over nginx (%s MB, %d runs, medians):\n' "$BENCH_MB" "$BENCH_RUNS"
	printf '  %-58s %7.2f s\n' "ramboot fetch http://.../rootfs.tar.zst (nginx)" "$a"
	printf '  %-58s %7.2f s  %s×  target <= 1.15: %s\n' "ramboot fetch docker://.../bench/root:v1 (docker-registry)" "$b" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", b / a }')" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN { print (b / a <= 1.15) ? "PASS" : "MISS" }')"
}

main "$@"
