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

# Loopback ports of the test bed, below the ephemeral range (32768+) that outgoing connections
# take ports from, so none can be held by a client when a server starts. Override
# LAZARUS_TESTBED_PORT_BASE to run beside something else.
PORT_BASE=${LAZARUS_TESTBED_PORT_BASE:-26000}
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

# ---------------------------------------------------------------------------------------------
# Processes of the test bed. The sourcing script defines:
#   process_marker NAME   text NAME's command line always contains (its data dir or state dir),
#                         so a PID reused by an unrelated process is never taken for ours;
#   startup_failed MSG    what a failed start does (stop what was started, exit non-zero);
# and may set PROCESS_PREFIX to keep its PID and log files apart from the other script's.
PROCESS_PREFIX=${PROCESS_PREFIX:-}

pid_file() { printf '%s/pids/%s%s.pid' "$TESTBED_STATE" "$PROCESS_PREFIX" "$1"; }
log_file() { printf '%s/logs/%s%s.log' "$TESTBED_STATE" "$PROCESS_PREFIX" "$1"; }

is_running() {
  local f pid; f=$(pid_file "$1")
  [ -f "$f" ] || return 1
  pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(process_marker "$1")"
}

# start NAME CMD...: run CMD in its own session (so its children stop with it); CMD must exec the
# process itself. A NAME already running is left alone.
start() {
  local name=$1; shift
  if is_running "$name"; then log "$name already running (pid $(cat "$(pid_file "$name")"))"; return 0; fi
  mkdir -p "$TESTBED_STATE/pids" "$TESTBED_STATE/logs"
  log "starting $name"
  setsid "$@" >>"$(log_file "$name")" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid" >"$(pid_file "$name")"
  # Until the exec, /proc shows this shell's command line, not NAME's: wait for it (or for the
  # process's end), or is_running would take a process still starting for one that exited.
  for i in $(seq 1 100); do
    is_running "$name" && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

# stop NAME [SIGNAL]: SIGNAL (default TERM: each server's clean shutdown) to the session, SIGKILL
# to whatever is left of it after 15 s.
stop() {
  local name=$1 signal=${2:-TERM} f pid i
  f=$(pid_file "$name")
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if is_running "$name"; then
    log "stopping $name (pid $pid)"
    kill "-$signal" -- "-$pid" 2>/dev/null || kill "-$signal" "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

# pause NAME SECONDS: freeze NAME's process group (an unresponsive server: connections are
# accepted by the kernel but nothing answers) and let it go on after SECONDS, whatever happens.
pause() {
  local name=$1 seconds=$2 pid
  is_running "$name" || die "$name is not running"
  pid=$(cat "$(pid_file "$name")")
  # shellcheck disable=SC2064 # the PID is expanded now: the trap runs after this function returned
  trap "kill -CONT -- -$pid 2>/dev/null || kill -CONT $pid" EXIT
  log "pausing $name (pid $pid) for ${seconds}s"
  kill -STOP -- "-$pid" 2>/dev/null || kill -STOP "$pid"
  sleep "$seconds"
}

# wait_for NAME TIMEOUT_S CMD...: poll CMD until it succeeds; on failure show NAME's log tail.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ! is_running "$name"; then
      tail -20 "$(log_file "$name")" >&2 || true
      startup_failed "$name exited during start-up (log: $(log_file "$name"))"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -20 "$(log_file "$name")" >&2 || true
      startup_failed "$name not ready after ${timeout}s (log: $(log_file "$name"))"
    fi
    sleep 0.2
  done
}

# print_status NAME...: one line per process, running (with its PID) or stopped.
print_status() {
  local name
  for name in "$@"; do
    if is_running "$name"; then echo "$name running (pid $(cat "$(pid_file "$name")"))"; else echo "$name stopped"; fi
  done
}
