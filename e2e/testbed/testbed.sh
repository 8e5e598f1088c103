#!/usr/bin/env bash
# Run a real Kubernetes control plane and a real Velero on loopback, without a container engine.
#
#   testbed.sh up                  build what is missing, start everything, print the kubeconfig path
#   testbed.sh down                stop every process it started (by PID) and remove its state
#   testbed.sh status              list the components and whether each is running
#   testbed.sh restart COMPONENT   stop and start one component (e.g. kube-apiserver)
#   testbed.sh pause COMPONENT S   freeze one component for S seconds (SIGSTOP, then SIGCONT)
#   testbed.sh kubeconfig          print the kubeconfig path
#   testbed.sh exec CMD [ARG...]   run CMD with the cluster's DNS as its resolver (see cmd_exec)
#
# Components, in start order: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok
# (fake nodes: pods become Ready, Job pods complete), s3 (versitygw), velero (server + AWS plugin).
# LAZARUS_TESTBED_VELERO=crds-only: Velero's CRDs without its server (for a second bed beside one).
# `up` is idempotent: a component whose PID is alive is left alone. A failing `up` stops what it
# started and exits non-zero with the failing step named.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
# shellcheck source=node.sh
source "$here/node.sh"

S3_ACCESS_KEY=lazarus-testbed
S3_SECRET_KEY=lazarus-testbed-secret
S3_BUCKET=velero
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
node_enabled && COMPONENTS+=("${NODE_COMPONENTS[@]}")
COMPONENTS+=(s3 velero)
# The address the API server and the S3 store listen on: the node's bridge address when there is
# a real node (its pods reach them there), else loopback.
BED_HOST=127.0.0.1
node_enabled && BED_HOST=$NODE_IP

# Every component's command line names the state directory.
process_marker() { printf '%s' "$TESTBED_STATE"; }
startup_failed() { fail "$@"; }

# A failure during `up` must not leave half a test bed running.
fail() { log "ERROR: $*"; stop_all; exit 1; }

kubectl() { "$KUBE_BIN/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

make_pki() {
  [ -f "$PKI/admin.crt" ] && return 0
  mkdir -p "$PKI"
  log "generating certificates"
  (
    cd "$PKI"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 3650 -subj "/CN=lazarus-testbed-ca"
    openssl req "${ec[@]}" -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver"
    printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:%s,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n' "$NODE_IP" "$KUBERNETES_SERVICE_IP" >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out apiserver.crt -days 3650 -extfile apiserver.ext
    openssl req "${ec[@]}" -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=lazarus-testbed-admin"
    printf 'extendedKeyUsage=clientAuth\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile admin.ext
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
  ) >"$TESTBED_STATE/logs/pki.log" 2>&1 || fail "step 'certificates' failed (log: $TESTBED_STATE/logs/pki.log)"
  cat >"$KUBECONFIG_PATH" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: lazarus-testbed
  cluster:
    server: https://$BED_HOST:$APISERVER_PORT
    certificate-authority: $PKI/ca.crt
users:
- name: admin
  user:
    client-certificate: $PKI/admin.crt
    client-key: $PKI/admin.key
contexts:
- name: lazarus-testbed
  context: {cluster: lazarus-testbed, user: admin}
current-context: lazarus-testbed
YAML
}

api_ready() {
  curl -sf --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" \
    "https://$BED_HOST:$APISERVER_PORT/readyz" | grep -q ok
}

start_etcd() {
  start etcd "$ETCD_BIN/etcd" --name testbed --data-dir "$TESTBED_STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "testbed=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --quota-backend-bytes 4294967296
  wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_CLIENT_PORT/health"
}

start_kube_apiserver() {
  # With a real node, the kubernetes Service's endpoint is the API server on the node's bridge
  # (pods reach it through kube-proxy), and kubelets are authorised as nodes.
  local node_flags=(--endpoint-reconciler-type none --authorization-mode RBAC)
  node_enabled && node_flags=(--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction
    --kubelet-client-certificate "$PKI/admin.crt" --kubelet-client-key "$PKI/admin.key"
    --kubelet-preferred-address-types InternalIP)
  start kube-apiserver "$KUBE_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_CLIENT_PORT" \
    --bind-address "$BED_HOST" --advertise-address "$BED_HOST" --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" "${node_flags[@]}" --allow-privileged=true
  wait_for kube-apiserver 90 api_ready
}

start_kube_controller_manager() {
  start kube-controller-manager "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$KUBECONFIG_PATH" --authentication-kubeconfig "$KUBECONFIG_PATH" --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$CONTROLLER_MANAGER_PORT" --leader-elect=false \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --use-service-account-credentials=false
  wait_for kube-controller-manager 60 curl -skf "https://127.0.0.1:$CONTROLLER_MANAGER_PORT/healthz"
}

start_kube_scheduler() {
  start kube-scheduler "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$KUBECONFIG_PATH" --authentication-kubeconfig "$KUBECONFIG_PATH" --authorization-kubeconfig "$KUBECONFIG_PATH" \
    --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false
  wait_for kube-scheduler 60 curl -skf "https://127.0.0.1:$SCHEDULER_PORT/healthz"
}

node_ready() {
  [ "$(kubectl get node lazarus-node-0 -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

start_kwok() {
  start kwok "$KWOK_BIN/kwok" --kubeconfig "$KUBECONFIG_PATH" \
    --manage-all-nodes=false --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
    --server-address "127.0.0.1:$KWOK_PORT" --config "$KWOK_BIN/stages.yaml"
  kubectl apply -f "$here/nodes.yaml" >/dev/null || fail "step 'create fake nodes' failed"
  wait_for kwok 60 node_ready
}

start_s3() {
  mkdir -p "$TESTBED_STATE/s3/buckets/$S3_BUCKET" "$TESTBED_STATE/s3/metadata"
  start s3 env "ROOT_ACCESS_KEY=$S3_ACCESS_KEY" "ROOT_SECRET_KEY=$S3_SECRET_KEY" \
    "$VERSITYGW_BIN/versitygw" --port "$BED_HOST:$S3_PORT" posix --sidecar "$TESTBED_STATE/s3/metadata" "$TESTBED_STATE/s3/buckets"
  wait_for s3 30 curl -s -o /dev/null "http://$BED_HOST:$S3_PORT/"
}

bsl_available() {
  [ "$(kubectl -n velero get backupstoragelocation default -o 'jsonpath={.status.phase}')" = Available ]
}

# velero server's controller manager serves its metrics on :8080, a port no flag of Velero v1.17
# changes: so one test bed with Velero per machine, and a clear error if the port is taken.
VELERO_FIXED_PORT=8080

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

install_velero_objects() {
  "$VELERO_BIN/velero" install --crds-only --dry-run -o yaml >"$TESTBED_STATE/velero-crds.yaml" \
    || fail "step 'velero CRDs' failed"
  kubectl apply --server-side -f "$TESTBED_STATE/velero-crds.yaml" >/dev/null || fail "step 'apply velero CRDs' failed"
  kubectl wait --for condition=established --timeout 60s crd/backupstoragelocations.velero.io >/dev/null
  printf '[default]\naws_access_key_id=%s\naws_secret_access_key=%s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$TESTBED_STATE/s3-credentials"
  sed "s#@S3_URL@#http://$BED_HOST:$S3_PORT#; s#@BUCKET@#$S3_BUCKET#; s#@VELERO_VERSION@#$VELERO_VERSION#" "$here/velero.yaml" | kubectl apply -f - >/dev/null \
    || fail "step 'velero namespace and storage location' failed"
}

# LAZARUS_TESTBED_VELERO=crds-only installs Velero's CRDs and namespace but runs no velero server:
# a second test bed on the same machine (for work that needs Velero's API, not its actions).
start_velero() {
  if [ "${LAZARUS_TESTBED_VELERO:-}" = crds-only ]; then
    install_velero_objects
    return 0
  fi
  if ! is_running velero; then
    if port_in_use "$VELERO_FIXED_PORT"; then
      fail "port $VELERO_FIXED_PORT is in use (another test bed's Velero?): velero server always binds it; stop that first (or set LAZARUS_TESTBED_VELERO=crds-only)"
    fi
    install_velero_objects
  fi
  start velero env "AWS_SHARED_CREDENTIALS_FILE=$TESTBED_STATE/s3-credentials" \
    "$VELERO_BIN/velero" server --kubeconfig "$KUBECONFIG_PATH" --namespace velero \
    --plugin-dir "$VELERO_PLUGIN_DIR" --metrics-address "127.0.0.1:$VELERO_METRICS_PORT" \
    --profiler-address "127.0.0.1:$VELERO_PROFILER_PORT" --store-validation-frequency 5s
  wait_for velero 90 bsl_available
  node_enabled && start_node_agent
  return 0
}

start_node_agent() {
  kubectl -n velero create secret generic cloud-credentials --from-file "cloud=$TESTBED_STATE/s3-credentials" \
    --dry-run=client -o yaml | kubectl apply -f - >/dev/null || fail "step 'velero node agent credentials' failed"
  sed "s#@VELERO_IMAGE@#localhost/lazarus-testbed/velero:$VELERO_VERSION#; s#@KUBELET_ROOT@#$NODE_STATE/kubelet#" \
    "$here/node/velero-node-agent.yaml" | kubectl apply -f - >/dev/null || fail "step 'velero node agent' failed"
  kubectl -n velero rollout status daemonset/node-agent --timeout 90s >/dev/null \
    || { kubectl -n velero describe pods -l name=node-agent | tail -20 >&2; fail "step 'velero node agent': not ready"; }
}

start_component() {
  case "$1" in
    etcd) start_etcd ;;
    kube-apiserver) start_kube_apiserver ;;
    kube-controller-manager) start_kube_controller_manager ;;
    kube-scheduler) start_kube_scheduler ;;
    kwok) start_kwok ;;
    s3) start_s3 ;;
    containerd | kubelet | kube-proxy | kube-router | local-path-provisioner) start_node_component "$1" ;;
    velero) start_velero ;;
    *) die "unknown component '$1' (one of: ${COMPONENTS[*]})" ;;
  esac
}

stop_all() {
  local i
  for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do
    [ "${COMPONENTS[$i]}" = containerd ] && node_stop_containers
    stop "${COMPONENTS[$i]}"
  done
  local unmounted=0
  node_unmount_state || unmounted=1
  node_restore_host
  return "$unmounted"
}

cmd_up() {
  "$here/build.sh"
  mkdir -p "$TESTBED_STATE/logs"
  if node_enabled; then
    node_check_host
    node_save_host
    node_network
  fi
  make_pki
  node_enabled && node_certificates
  local c started=$SECONDS
  for c in "${COMPONENTS[@]}"; do start_component "$c"; done
  node_enabled && node_addons
  log "test bed ready in $((SECONDS - started))s"
  echo "$KUBECONFIG_PATH"
}

cmd_down() {
  # Never delete a state directory that still has mounts in it: rm would reach into them.
  stop_all || die "mounts are left under $TESTBED_STATE (listed above), so it was kept: unmount them and run 'down' again"
  rm -rf "$TESTBED_STATE"
  log "test bed stopped and its state removed"
}

cmd_status() { print_status "${COMPONENTS[@]}"; }

# A process on this host resolves names the way a pod of the cluster does (CoreDNS through the
# kube-dns ClusterIP, the cluster domain searched), so an operator or test run here finds restored
# Services by their DNS names exactly as the operator's pod would. The resolver is bind-mounted
# over /etc/resolv.conf in a private mount namespace of CMD's own: the host's resolver is never
# changed, and nothing is left behind when CMD ends. Without a real node (no cluster DNS), CMD
# runs as it is.
cmd_exec() {
  [ $# -gt 0 ] || die "usage: testbed.sh exec CMD [ARG...]"
  node_enabled || exec "$@"
  [ -s "$NODE_STATE/host-resolv.conf" ] || die "the test bed is not up (no $NODE_STATE/host-resolv.conf)"
  exec unshare --mount --propagation private -- \
    sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$NODE_STATE/host-resolv.conf" "$@"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  status) cmd_status ;;
  restart) [ $# -eq 2 ] || die "usage: testbed.sh restart COMPONENT"; stop "$2"; start_component "$2" ;;
  pause) [ $# -eq 3 ] || die "usage: testbed.sh pause COMPONENT SECONDS"; pause "$2" "$3" ;;
  kubeconfig) echo "$KUBECONFIG_PATH" ;;
  exec) shift; cmd_exec "$@" ;;
  *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
