#!/usr/bin/env bash
# The Lazarus end-to-end run on a kind cluster, for users with Docker (or Podman) — NOT run on the
# project's machines, which have no container engine; see README "kind (for Docker users)".
#
#   e2e/kind/run.sh            create the cluster, install everything, back up, prove the restore
#   LAZARUS_E2E_KEEP=1 ...     keep the cluster afterwards (else it is deleted)
#
# Steps: kind cluster → S3 store (versitygw) → Velero with the AWS plugin and the node agent →
# Lazarus image built and loaded, installed from manifests/ → PostgreSQL StatefulSet with 250
# orders → Velero backup with file-system backup of its volume → LazarusRestoreTest → Succeeded.
# Needs: docker, kind, kubectl, velero (CLI, v1.17). Versions as in e2e/testbed/versions.env.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=../testbed/versions.env
source "$root/e2e/testbed/versions.env"
cluster=lazarus-e2e
step() { printf '\n== %s\n' "$*"; }
for tool in docker kind kubectl velero; do
  command -v "$tool" >/dev/null || { echo "missing: $tool (this run needs a container engine and these CLIs)" >&2; exit 1; }
done
finish() {
  if [ "${LAZARUS_E2E_KEEP:-0}" != 1 ]; then kind delete cluster --name "$cluster" >/dev/null 2>&1 || true; fi
}
trap finish EXIT

step "kind cluster $cluster"
kind create cluster --config "$here/kind-config.yaml" --wait 120s
kubectl config use-context "kind-$cluster" >/dev/null

step "S3 store (versitygw) and the bucket"
kubectl apply -f "$here/s3.yaml"
kubectl -n s3 rollout status deployment/versitygw --timeout 180s
kubectl -n s3 wait --for=condition=complete job/make-bucket --timeout 180s

step "Velero $VELERO_VERSION with the AWS plugin $VELERO_AWS_PLUGIN_VERSION and the node agent"
velero install --provider aws --image "velero/velero:$VELERO_VERSION" \
  --plugins "velero/velero-plugin-for-aws:$VELERO_AWS_PLUGIN_VERSION" \
  --bucket velero --secret-file "$here/credentials-velero" \
  --backup-location-config region=us-east-1,s3ForcePathStyle=true,s3Url=http://versitygw.s3.svc:7070 \
  --use-volume-snapshots=false --use-node-agent --wait
kubectl -n velero wait --for=jsonpath='{.status.phase}'=Available backupstoragelocation/default --timeout 180s

step "Lazarus: image lazarus:e2e, installed from manifests/base (e2e/kind/kustomization.yaml)"
docker build -t lazarus:e2e "$root"
kind load docker-image lazarus:e2e --name "$cluster"
kubectl apply --server-side -k "$here"
kubectl -n lazarus-system rollout status deployment/lazarus --timeout 180s

step "production: PostgreSQL StatefulSet in namespace shop with 250 orders"
kubectl apply -f "$here/app.yaml"
kubectl -n shop rollout status statefulset/postgres --timeout 300s
kubectl -n shop wait --for=condition=complete job/seed-orders --timeout 300s
# The seed Job is done; a restored copy would write the orders again.
kubectl -n shop delete job seed-orders --wait

backup="shop-$(date +%Y%m%d-%H%M%S)"
step "Velero backup $backup (file-system backup of the PostgreSQL volume)"
velero backup create "$backup" --include-namespaces shop --default-volumes-to-fs-backup --wait
[ "$(kubectl -n velero get backup "$backup" -o jsonpath='{.status.phase}')" = Completed ] \
  || { velero backup describe "$backup" --details; exit 1; }

step "LazarusRestoreTest of $backup"
sed "s#@BACKUP@#$backup#" "$here/restoretest.yaml" | kubectl apply -f -
kubectl -n lazarus-system wait lazarusrestoretest/shop-e2e --timeout 900s \
  --for=jsonpath='{.status.phase}'=Succeeded \
  || { kubectl -n lazarus-system get lazarusrestoretest shop-e2e -o yaml; exit 1; }
kubectl -n lazarus-system get lazarusrestoretest shop-e2e \
  -o jsonpath='{.status.message}{"\n"}RTO {.status.result.rto}s, RPO {.status.result.rpo}s{"\n"}'

step "next: the integration tests against this cluster (LAZARUS_E2E_KEEP=1; they start their own operator)"
echo "kubectl -n lazarus-system scale deployment/lazarus --replicas 0 && KUBECONFIG=\$HOME/.kube/config make integration"
