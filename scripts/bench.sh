#!/bin/sh
# make bench / make bench-full: Janus and Spillway, each pinned to one server
# core, against viewers that join through the Janus API (docs/benchmarks.md).
#
#   spwb-srv: spbs0 198.18.2.1/24  --veth--  spwb-cli: spbc0 198.18.2.2/24
#   server (janus or spillway), CPU 1          spillway-bench: viewers, source, CPU 0
#
# Both ends are namespaces made here (RFC 2544 benchmarking addresses), so
# nothing touches the host's network; they are removed on exit, and first
# too, in case a previous run was killed. Arguments go to spillway-bench.
# BENCH_NETNS names the namespaces (default spwb: spwb-srv, spwb-cli);
# BENCH_CLIENT_CPUS the CPUs of the viewers and the source (default 0).
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
NS=${BENCH_NETNS:-spwb}
SRV=$NS-srv CLI=$NS-cli SIF=spbs0 CIF=spbc0
CLIENT_CPUS=${BENCH_CLIENT_CPUS:-0}

[ "$(id -u)" = 0 ] || { echo "bench: needs root (network namespaces, eBPF, apt-get for Janus)" >&2; exit 1; }

down() {
	ip netns pids $SRV 2>/dev/null | xargs -r kill 2>/dev/null || true
	ip netns del $SRV 2>/dev/null || true
	ip netns del $CLI 2>/dev/null || true
}

mkdir -p bin
$GO build -o bin/spillway ./cmd/spillway
$GO build -o bin/spillway-bench ./cmd/spillway-bench
down
trap down EXIT
trap 'down; exit 130' INT TERM

ip netns add $SRV
ip netns add $CLI
ip link add $SIF netns $SRV type veth peer name $CIF netns $CLI
for ns in $SRV $CLI; do ip -n $ns link set lo up; done
ip -n $SRV addr add 198.18.2.1/24 dev $SIF
ip -n $CLI addr add 198.18.2.2/24 dev $CIF
ip -n $SRV link set $SIF up
ip -n $CLI link set $CIF up
# Thousands of viewers: one socket each, and Janus a few per viewer.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

ip netns exec $CLI taskset -c "$CLIENT_CPUS" bin/spillway-bench -server-netns $SRV -server-if $SIF -client-if $CIF \
	-server-ip 198.18.2.1 -client-ip 198.18.2.2 "$@"
