#!/bin/sh
# make bench-dataplane: one data-plane worker on one core, 1000 synthetic
# viewers, against the limit of the machine (docs/benchmarks.md).
#
#   spw-bench-tx: spwb0 198.18.0.1/30  --veth--  spw-bench-rx: spwb1 198.18.0.2/30 (XDP count-and-drop)
#   viewers 198.19.0.0/16 are routed to the sink, local to it.
#
# Both ends are namespaces made here (RFC 2544 benchmarking addresses), so
# nothing touches the host's network. They are removed on exit, and first
# too, in case a previous run was killed before its trap ran. Arguments go
# to the command (e.g. -rates 2 -profiles gcm); needs root.
# BENCH_NETNS names the namespaces (default spw-bench: spw-bench-tx, -rx),
# BENCH_BIN the binary (default bin/spillway-bench-dataplane).
set -eu
cd "$(dirname "$0")/.."
GO=${GO:-go}
NS=${BENCH_NETNS:-spw-bench}
TX=$NS-tx RX=$NS-rx TXIF=spwb0 RXIF=spwb1 # the veths live only inside the namespaces
BIN=${BENCH_BIN:-bin/spillway-bench-dataplane}

[ "$(id -u)" = 0 ] || { echo "bench-dataplane: needs root (network namespaces, XDP)" >&2; exit 1; }

down() {
	ip netns del $TX 2>/dev/null || true
	ip netns del $RX 2>/dev/null || true
}

mkdir -p "$(dirname "$BIN")" bin
$GO build -o "$BIN" ./bench/dataplane
down
trap down EXIT
trap 'down; exit 130' INT TERM

ip netns add $TX
ip netns add $RX
ip link add $TXIF netns $TX type veth peer name $RXIF netns $RX
ip -n $TX link set lo up
ip -n $RX link set lo up
ip -n $TX addr add 198.18.0.1/30 dev $TXIF
ip -n $RX addr add 198.18.0.2/30 dev $RXIF
ip -n $TX link set $TXIF up
ip -n $RX link set $RXIF up
ip -n $RX route add local 198.19.0.0/16 dev lo
ip -n $TX route add 198.19.0.0/16 via 198.18.0.2
mac=$(ip -n $RX -br link show $RXIF | awk '{print $3}')
ip -n $TX neigh replace 198.18.0.2 lladdr "$mac" dev $TXIF nud permanent

ip netns exec $TX nice -n -20 "$BIN" -sink-netns $RX -sink-if $RXIF \
	-csv bin/bench-dataplane.csv -md bin/bench-dataplane.md "$@"
