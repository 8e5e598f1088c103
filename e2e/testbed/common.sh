# Shared helpers for the test-bed scripts. Sourced, not executed.
# shellcheck shell=bash
testbed_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$testbed_dir/versions.env"

# Binaries are cached outside the work tree so every clone and every CI run reuses them.
TESTBED_CACHE=${LAZARUS_TESTBED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lazarus-testbed}
# Runtime state (data dirs, logs, PID files, kubeconfig) of the running test bed.
TESTBED_STATE=${LAZARUS_TESTBED_STATE:-$TESTBED_CACHE/state}

log() { printf '[testbed] %s\n' "$*" >&2; }
die() { printf '[testbed] ERROR: %s\n' "$*" >&2; exit 1; }

component_dir() { printf '%s/bin/%s-%s' "$TESTBED_CACHE" "$1" "$2"; }

# install_dir SRC DEST: move freshly built binaries into place atomically.
install_dir() {
  mkdir -p "$(dirname "$2")"
  rm -rf "$2.tmp"; cp -r "$1" "$2.tmp"; rm -rf "$2"; mv "$2.tmp" "$2"
}

# Loopback ports of the test bed; override LAZARUS_TESTBED_PORT_BASE to run beside something else.
PORT_BASE=${LAZARUS_TESTBED_PORT_BASE:-46000}
ETCD_CLIENT_PORT=$((PORT_BASE + 379))
ETCD_PEER_PORT=$((PORT_BASE + 380))
APISERVER_PORT=$((PORT_BASE + 443))
CONTROLLER_MANAGER_PORT=$((PORT_BASE + 257))
SCHEDULER_PORT=$((PORT_BASE + 259))
KWOK_PORT=$((PORT_BASE + 247))
S3_PORT=$((PORT_BASE + 900))
VELERO_METRICS_PORT=$((PORT_BASE + 85))
VELERO_PROFILER_PORT=$((PORT_BASE + 60))

KUBE_BIN=$(component_dir kubernetes "$KUBERNETES_VERSION")
ETCD_BIN=$(component_dir etcd "$ETCD_VERSION")
KWOK_BIN=$(component_dir kwok "$KWOK_VERSION")
VELERO_BIN=$(component_dir velero "$VELERO_VERSION")
VELERO_PLUGIN_DIR=$(component_dir velero-aws-plugin "$VELERO_AWS_PLUGIN_VERSION")
VERSITYGW_BIN=$(component_dir versitygw "$VERSITYGW_VERSION")

KUBECONFIG_PATH=$TESTBED_STATE/kubeconfig
PKI=$TESTBED_STATE/pki
