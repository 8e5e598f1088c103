# The test bed's real worker node: containerd + runc + CNI bridge, kubelet, kube-proxy
# (nftables), kube-router's NetworkPolicy firewall, CoreDNS, local-path volumes and Velero's node
# agent. Sourced by testbed.sh, which defines kubectl, fail, start/stop and the PKI.
#
# Every host change is recorded before it is made and undone by node_restore_host (called by
# `down`, and by a failed `up`): the netfilter ruleset (nft, which iptables-nft also writes) is
# saved and put back as it was, ipsets the node created are destroyed, sysctls kubelet, kube-proxy
# and the bridge plugin change are set back, mounts under the state directory are unmounted, the
# bridge and the pods' veths are deleted, and the pods' cgroups removed.
# shellcheck shell=bash

NODE_NAME=lazarus-worker
NODE_BRIDGE=lzr0
# Pod and Service networks exist only on this machine: the bridge is ours, and the guard below
# drops anything addressed to them that would leave through another interface.
POD_CIDR=10.244.0.0/24
NODE_IP=10.244.0.1
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SERVICE_IP=10.96.0.1
DNS_SERVICE_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
KUBELET_PORT=$((PORT_BASE + 250))
KUBELET_HEALTHZ_PORT=$((PORT_BASE + 248))
KUBE_PROXY_METRICS_PORT=$((PORT_BASE + 249))
KUBE_PROXY_HEALTHZ_PORT=$((PORT_BASE + 256))
KUBE_ROUTER_HEALTH_PORT=$((PORT_BASE + 244))
NODE_COMPONENTS=(containerd kubelet kube-proxy kube-router local-path-provisioner)
# Sysctls the node's components set (kubelet's kernel defaults, forwarding for the bridge,
# kube-proxy's conntrack and localnet settings): saved at `up`, set back at `down`.
NODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops net.ipv4.ip_forward
  net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables net.ipv4.conf.all.route_localnet
  net.netfilter.nf_conntrack_max net.netfilter.nf_conntrack_tcp_timeout_established
  net.netfilter.nf_conntrack_tcp_timeout_close_wait)

CONTAINERD_BIN=$(component_dir containerd "$CONTAINERD_VERSION")
RUNC_BIN=$(component_dir runc "$RUNC_VERSION")
CNI_BIN=$(component_dir cni-plugins "$CNI_PLUGINS_VERSION")
KUBE_NODE_BIN=$(component_dir kubernetes-node "$KUBERNETES_VERSION")
KUBE_ROUTER_BIN=$(component_dir kube-router "$KUBE_ROUTER_VERSION")
LOCAL_PATH_BIN=$(component_dir local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION")
NODE_STATE=$TESTBED_STATE/node
CONTAINERD_SOCK=$NODE_STATE/containerd/containerd.sock
IMAGE_CACHE=$TESTBED_CACHE/images
# Saved host state lives in the cache, not the state directory: `down` must find it even after a
# crash that lost the state directory, and only the bed that made the change restores it.
HOST_SAVE=$TESTBED_CACHE/host-saved-$PORT_BASE

# LAZARUS_TESTBED_NODE=none: no real node (a second, API-only bed beside one that has it).
node_enabled() { [ "${LAZARUS_TESTBED_NODE:-real}" != none ]; }

ctr() { "$CONTAINERD_BIN/ctr" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

node_check_host() {
  [ "$(id -u)" = 0 ] || fail "step 'node': the real node needs root (containers, bridge, netfilter); set LAZARUS_TESTBED_NODE=none for an API-only bed"
  grep -q overlay /proc/filesystems || fail "step 'node': the kernel has no overlayfs (containerd's snapshotter needs it)"
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] || modprobe br_netfilter 2>/dev/null \
    || fail "step 'node': bridge netfilter (br_netfilter) is missing: Service traffic between pods on one bridge cannot be translated"
  command -v ipset >/dev/null && command -v iptables >/dev/null && command -v nft >/dev/null \
    || fail "step 'node': ipset, iptables and nft are needed (e2e/testbed/system-deps.sh installs them)"
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && [ ! -f "$HOST_SAVE/ruleset.nft" ]; then
    fail "step 'node': bridge $NODE_BRIDGE exists but no test bed here made it (another bed on this machine? stop it first)"
  fi
}

# Record what the node changes, once per bed (a second `up` must not save the bed's own changes).
node_save_host() {
  [ -f "$HOST_SAVE/ruleset.nft" ] && return 0
  mkdir -p "$HOST_SAVE"
  local name
  for name in "${NODE_SYSCTLS[@]}"; do
    printf '%s=%s\n' "$name" "$(sysctl -n "$name" 2>/dev/null || echo '')"
  done >"$HOST_SAVE/sysctls"
  ipset list -n 2>/dev/null | sort >"$HOST_SAVE/ipsets"
  nft list ruleset >"$HOST_SAVE/ruleset.nft.tmp" && mv "$HOST_SAVE/ruleset.nft.tmp" "$HOST_SAVE/ruleset.nft"
}

# Mounts under the state directory (kubelet's shared bind mount of its root dir, pod volumes,
# containerd's rootfs and shm), deepest first.
state_mounts() { awk -v prefix="$TESTBED_STATE/" 'index($2, prefix) == 1 {print $2}' /proc/self/mounts | sort -r; }

# Unmounts everything under the state directory, whether or not this bed saved host state (a
# `down` after a crash must still clean up). Unmounting a shared mount's peer can bring a
# propagated copy back for a moment: go over the list again until none is left. Fails, listing
# them, if some remain: the caller must then not delete the state directory.
node_unmount_state() {
  local pass line
  for pass in $(seq 1 20); do
    [ -z "$(state_mounts)" ] && return 0
    state_mounts | while read -r line; do umount -l "$line" 2>/dev/null || true; done
    sleep 0.5
  done
  [ -z "$(state_mounts)" ] && return 0
  log "ERROR: mounts under $TESTBED_STATE are left after 20 passes: $(state_mounts | tr '\n' ' ')"
  return 1
}

node_restore_host() {
  [ -f "$HOST_SAVE/ruleset.nft" ] || return 0
  log "restoring the host (netfilter, ipsets, sysctls, bridge, cgroups)"
  local line name value
  for line in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [ "$(cat "/sys/class/net/$line/master/ifindex" 2>/dev/null)" = "$(cat "/sys/class/net/$NODE_BRIDGE/ifindex" 2>/dev/null)" ] \
      && ip link delete "$line" 2>/dev/null || true
  done
  ip link delete "$NODE_BRIDGE" 2>/dev/null || true
  { echo "flush ruleset"; cat "$HOST_SAVE/ruleset.nft"; } | nft -f - || log "WARNING: could not restore the netfilter ruleset (saved in $HOST_SAVE/ruleset.nft)"
  ipset list -n 2>/dev/null | sort | comm -13 "$HOST_SAVE/ipsets" - | while read -r name; do ipset destroy "$name" 2>/dev/null || true; done
  while IFS='=' read -r name value; do
    [ -n "$value" ] && sysctl -qw "$name=$value" 2>/dev/null || true
  done <"$HOST_SAVE/sysctls"
  # Pod cgroups kubelet made under every controller (cgroupfs driver, cgroup v1).
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} \; 2>/dev/null || true
  rm -rf "$HOST_SAVE"
}

node_network() {
  if ! ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    ip link add "$NODE_BRIDGE" type bridge || fail "step 'node bridge': could not create $NODE_BRIDGE"
    ip addr add "$NODE_IP/${POD_CIDR#*/}" dev "$NODE_BRIDGE"
    ip link set "$NODE_BRIDGE" up
    # Service addresses are reached from the host with the bridge's address as source (kube-proxy
    # translates them; without a rule they stay on the bridge instead of the default route).
    ip route add "$SERVICE_CIDR" dev "$NODE_BRIDGE" src "$NODE_IP"
  fi
  sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
  # The guard: nothing for the pod or Service networks leaves through another interface (a
  # Service with no proxy rule would otherwise follow the default route out of the machine).
  nft -f - <<NFT || fail "step 'node network guard': nft refused the guard table"
table inet lazarus-testbed-guard
delete table inet lazarus-testbed-guard
table inet lazarus-testbed-guard {
  chain output {
    type filter hook output priority 0; policy accept;
    ip daddr { $POD_CIDR, $SERVICE_CIDR } oifname != { "lo", "$NODE_BRIDGE" } counter drop
  }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip daddr { $POD_CIDR, $SERVICE_CIDR } oifname != { "lo", "$NODE_BRIDGE" } counter drop
    ip saddr $POD_CIDR oifname != { "lo", "$NODE_BRIDGE" } counter drop
  }
}
NFT
  mkdir -p "$NODE_STATE/cni/net.d" "$NODE_STATE/cni/ipam"
  cat >"$NODE_STATE/cni/net.d/10-lazarus.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "lazarus-testbed", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$NODE_STATE/cni/ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}},
  {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON
}

node_certificates() {
  [ -f "$PKI/kubelet.crt" ] && return 0
  (
    cd "$PKI"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes) cert subject
    for cert in kubelet:"/O=system:nodes/CN=system:node:$NODE_NAME" kube-proxy:/CN=system:kube-proxy; do
      subject=${cert#*:}; cert=${cert%%:*}
      openssl req "${ec[@]}" -keyout "$cert.key" -out "$cert.csr" -subj "$subject"
      openssl x509 -req -in "$cert.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$cert.crt" -days 3650 -extfile admin.ext
    done
  ) >>"$TESTBED_STATE/logs/pki.log" 2>&1 || fail "step 'node certificates' failed (log: $TESTBED_STATE/logs/pki.log)"
}

# kubeconfig_for NAME: a kubeconfig with NAME's client certificate.
kubeconfig_for() {
  local file=$NODE_STATE/$1.kubeconfig
  sed "s#$PKI/admin.crt#$PKI/$1.crt#; s#$PKI/admin.key#$PKI/$1.key#" "$KUBECONFIG_PATH" >"$file"
  printf '%s' "$file"
}

start_containerd() {
  mkdir -p "$NODE_STATE/containerd"
  cat >"$NODE_STATE/containerd/config.toml" <<TOML
version = 3
root = "$NODE_STATE/containerd/root"
state = "$NODE_STATE/containerd/state"
disabled_plugins = ["io.containerd.nri.v1.nri", "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins.'io.containerd.internal.v1.opt']
  path = "$NODE_STATE/containerd/opt"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "localhost/lazarus-testbed/pause:$KUBERNETES_VERSION"
[plugins.'io.containerd.cri.v1.runtime']
  # CAP_SYS_RESOURCE is not in every VM's bounding set: never raise a container's oom_score_adj.
  restrict_oom_score_adj = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
      BinaryName = "$RUNC_BIN/runc"
      SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$CNI_BIN"]
    conf_dir = "$NODE_STATE/cni/net.d"
TOML
  # Its own shim first on PATH: a distribution's older containerd shim must never be picked.
  start containerd env "PATH=$CONTAINERD_BIN:$RUNC_BIN:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$CONTAINERD_BIN/containerd" --config "$NODE_STATE/containerd/config.toml"
  wait_for containerd 30 ctr version
  node_import_images
}

node_import_images() {
  local archives archive
  archives=$(python3 "$here/images.py" build "$IMAGE_CACHE") || fail "step 'images' failed"
  # The operator's own image, from the project's Dockerfile (cached by its inputs' contents; buildah
  # and pip write to the log).
  local build_log; build_log=$(log_file operator-image)
  archives+=" $(python3 "$here/images.py" build-operator "$IMAGE_CACHE" 2>"$build_log")" \
    || { tail -30 "$build_log" >&2; fail "step 'operator image' failed (log: $build_log)"; }
  for archive in $archives; do
    ctr images import --no-unpack=false --local "$archive" >>"$(log_file containerd)" 2>&1 \
      || fail "step 'import image $(basename "$archive")' failed (log: $(log_file containerd))"
  done
}

start_kubelet() {
  local kubeconfig; kubeconfig=$(kubeconfig_for kubelet)
  mkdir -p "$NODE_STATE/kubelet"
  cat >"$NODE_STATE/kubelet-config.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Measured on the project's VMs: cgroup v1 (v1.37 refuses it unless told), no swap accounting,
# and no CAP_SYS_RESOURCE to raise oom_score_adj.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
oomScoreAdj: 0
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDNS: [$DNS_SERVICE_IP]
clusterDomain: $CLUSTER_DOMAIN
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
volumePluginDir: $NODE_STATE/kubelet-plugins
resolvConf: $NODE_STATE/resolv.conf
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
YAML
  # Pods resolve only cluster names: no upstream resolver is reachable from here.
  printf 'nameserver %s\n' "$DNS_SERVICE_IP" >"$NODE_STATE/resolv.conf"
  # For processes on the host that should resolve like a pod (testbed.sh exec).
  printf 'nameserver %s\nsearch svc.%s %s\noptions ndots:5 timeout:2\n' \
    "$DNS_SERVICE_IP" "$CLUSTER_DOMAIN" "$CLUSTER_DOMAIN" >"$NODE_STATE/host-resolv.conf"
  start kubelet "$KUBE_NODE_BIN/kubelet" --config "$NODE_STATE/kubelet-config.yaml" --kubeconfig "$kubeconfig" \
    --root-dir "$NODE_STATE/kubelet" --cert-dir "$NODE_STATE/kubelet/pki" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --node-labels "type=real,lazarus.io/real-node=true"
  wait_for kubelet 90 node_is_ready "$NODE_NAME"
}

node_is_ready() {
  [ "$(kubectl get node "$1" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}')" = True ]
}

start_kube_proxy() {
  local kubeconfig; kubeconfig=$(kubeconfig_for kube-proxy)
  cat >"$NODE_STATE/kube-proxy-config.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection: {kubeconfig: $kubeconfig}
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: [$NODE_IP/32]
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  start kube-proxy "$KUBE_NODE_BIN/kube-proxy" --config "$NODE_STATE/kube-proxy-config.yaml"
  wait_for kube-proxy 60 curl -sf "http://127.0.0.1:$KUBE_PROXY_HEALTHZ_PORT/healthz"
}

# NetworkPolicy, enforced with iptables and ipsets (this kernel has no nft queue): kube-router's
# firewall controller only.
start_kube_router() {
  start kube-router "$KUBE_ROUTER_BIN/kube-router" --kubeconfig "$KUBECONFIG_PATH" --hostname-override "$NODE_NAME" \
    --run-firewall=true --run-router=false --run-service-proxy=false --run-loadbalancer=false \
    --enable-ipv6=false --health-port "$KUBE_ROUTER_HEALTH_PORT" --metrics-port 0 --service-cluster-ip-range "$SERVICE_CIDR"
  wait_for kube-router 60 curl -sf "http://127.0.0.1:$KUBE_ROUTER_HEALTH_PORT/healthz"
}

start_local_path_provisioner() {
  mkdir -p "$NODE_STATE/volumes"
  cat >"$NODE_STATE/local-path-config.json" <<JSON
{"nodePathMap": [{"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": ["$NODE_STATE/volumes"]}]}
JSON
  sed "s#@IMAGE@#localhost/lazarus-testbed/base:1#" "$here/node/local-path-helper-pod.yaml" >"$NODE_STATE/local-path-helper-pod.yaml"
  kubectl apply -f "$here/node/storage.yaml" >/dev/null || fail "step 'storage class' failed"
  start local-path-provisioner "$LOCAL_PATH_BIN/local-path-provisioner" start --kubeconfig "$KUBECONFIG_PATH" \
    --config "$NODE_STATE/local-path-config.json" --helper-pod-file "$NODE_STATE/local-path-helper-pod.yaml" \
    --namespace kube-system --service-account-name local-path-provisioner --provisioner-name rancher.io/local-path
  sleep 1
  is_running local-path-provisioner || fail "local-path-provisioner exited during start-up (log: $(log_file local-path-provisioner))"
}

# In-cluster add-ons: CoreDNS behind the kube-dns Service, Velero's node agent.
node_addons() {
  sed "s#@COREDNS_IMAGE@#localhost/lazarus-testbed/coredns:$COREDNS_VERSION#; s#@DNS_SERVICE_IP@#$DNS_SERVICE_IP#" \
    "$here/node/coredns.yaml" | kubectl apply -f - >/dev/null || fail "step 'coredns' failed"
  kubectl -n kube-system rollout status deployment/coredns --timeout 90s >/dev/null \
    || { kubectl -n kube-system describe pods -l k8s-app=kube-dns | tail -20 >&2; fail "step 'coredns': not ready"; }
}

# Kill every container before containerd stops: their shims run in sessions of their own and
# would outlive it. A shim left over from a crash is found by its socket address.
node_stop_containers() {
  if is_running containerd; then
    local task
    for task in $(ctr tasks list -q 2>/dev/null); do ctr tasks kill -s KILL "$task" >/dev/null 2>&1 || true; done
    sleep 0.5
    for task in $(ctr tasks list -q 2>/dev/null); do ctr tasks delete -f "$task" >/dev/null 2>&1 || true; done
  fi
  pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null || true
}

start_node_component() {
  case "$1" in
    containerd) start_containerd ;;
    kubelet) start_kubelet ;;
    kube-proxy) start_kube_proxy ;;
    kube-router) start_kube_router ;;
    local-path-provisioner) start_local_path_provisioner ;;
  esac
}
