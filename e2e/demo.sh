#!/usr/bin/env bash
# The main job, end to end, on the local test bed: back up an application and its database volume
# with Velero, change production, prove the backup restores (sandbox, real pods, the restored
# PostgreSQL holding the backup's orders, not production's; RTO/RPO, cost), show how a failing
# expectation reads, then lose 60 % of the data and show the next backup caught against the
# baseline the first test left. Everything it starts is stopped at the end (LAZARUS_DEMO_KEEP=1 keeps the
# test bed and the operator running to look around).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=testbed/common.sh
source "$here/testbed/common.sh"
VENV=${VENV:-$root/.venv}
PY="$VENV/bin/python"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

finish() {
  if [ "${LAZARUS_DEMO_KEEP:-0}" != 1 ]; then
    step "stopping the test bed"
    "$here/testbed/testbed.sh" down >/dev/null 2>&1 || true
  else
    echo "kept running: export KUBECONFIG=$KUBECONFIG_PATH"
  fi
}
trap finish EXIT

step "starting the test bed (Kubernetes with a real node, Velero with its node agent)"
"$here/testbed/testbed.sh" up >/dev/null
export KUBECONFIG=$KUBECONFIG_PATH
kubectl() { "$KUBE_BIN/kubectl" "$@"; }

# sql STATEMENT...: run SQL on production's database, in its pod; prints the result rows.
sql() { kubectl -n shop exec -i db-0 -c postgres -- psql -q -tA -U shop -d shop "$@"; }
orders() { sql -c "SELECT count(*) FROM orders"; }

step "production: namespace 'shop', a web app and PostgreSQL with 250 orders on a volume"
kubectl delete namespace shop --ignore-not-found --wait --timeout 120s >/dev/null  # a kept earlier run's
kubectl apply -f "$here/demo/shop.yaml" >/dev/null
kubectl -n shop rollout status statefulset/db --timeout 180s >/dev/null
kubectl -n shop rollout status deployment/web --timeout 120s >/dev/null
sql <<'SQL'
CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL,
                     created_at timestamptz NOT NULL);
INSERT INTO orders (customer, total, created_at)
  SELECT 'customer-' || n, round((random() * 200)::numeric, 2), now() - (n || ' minutes')::interval
  FROM generate_series(1, 250) AS n;
SQL
kubectl -n shop get pods,pvc,statefulset,deployment,service --no-headers 2>/dev/null | sed 's/^/   /'
echo "   orders in production: $(orders)"

# back_up NAME: a Velero Backup of namespace shop with its volume's data (file-system backup by
# the node agent), waited for until Completed.
back_up() {
  kubectl apply -f - >/dev/null <<YAML
apiVersion: velero.io/v1
kind: Backup
metadata: {name: $1, namespace: velero}
spec: {includedNamespaces: [shop], defaultVolumesToFsBackup: true, ttl: 24h0m0s}
YAML
  kubectl -n velero wait --for=jsonpath='{.status.phase}'=Completed "backup/$1" --timeout 180s >/dev/null
  echo "   $(kubectl -n velero get backup "$1" -o jsonpath='{.status.phase}: {.status.progress.itemsBackedUp} items')," \
    "$(kubectl -n velero get podvolumebackups -l "velero.io/backup-name=$1" \
         -o jsonpath='{range .items[*]}volume {.spec.volume}: {.status.progress.bytesDone} bytes {.status.phase}{end}')"
}

backup="shop-$(date +%Y%m%d-%H%M%S)"
step "Velero backup $backup"
back_up "$backup"

step "production moves on: 50 orders deleted after the backup"
sql -c "DELETE FROM orders WHERE id > 200"
echo "   orders in production: $(orders)"

step "installing Lazarus as users do: kubectl apply --server-side -k manifests/overlays/testbed"
# The overlay only sets the image: the one the test bed built from the Dockerfile and imported.
kubectl apply --server-side -k "$root/manifests/overlays/testbed" >/dev/null
if ! kubectl -n lazarus-system rollout status deployment/lazarus --timeout 120s >/dev/null; then
  kubectl -n lazarus-system get pods -o wide
  kubectl -n lazarus-system describe pods | grep -A3 -E '^\s+(State|Last State|Reason):|Warning' | head -30
  kubectl -n lazarus-system logs deployment/lazarus --tail 20 || true
  echo "Lazarus did not become ready"; exit 1
fi
kubectl -n lazarus-system get pods --no-headers | sed 's/^/   /'
echo "   logs: kubectl -n lazarus-system logs deployment/lazarus"

source_name=shop-nightly  # the tests count as this Schedule's: they share its baseline
"$PY" -m lazarus baseline reset "schedule/$source_name" --kubeconfig "$KUBECONFIG" >/dev/null || true

step "restore test: lazarus test $backup --schedule $source_name --spec e2e/demo/restoretest.yaml"
output=$("$PY" -m lazarus test "$backup" --kubeconfig "$KUBECONFIG" --spec "$here/demo/restoretest.yaml" \
  --schedule "$source_name" --timeout 300) || { echo "$output"; echo "expected the backup to restore"; exit 1; }
echo "$output"
test_name=$(sed -n 's#^created LazarusRestoreTest lazarus-system/\([^ ]*\) .*#\1#p' <<<"$output")
restored=$(kubectl -n lazarus-system get lazarusrestoretest "$test_name" \
  -o jsonpath='{.status.healthChecks.database.checks[?(@.name=="order-count")].value}')
printf '   %-34s %s\n' "orders in production now:" "$(orders)" "orders restored from $backup:" "$restored"
[ "$restored" = 250 ] || { echo "expected the restored database to hold the backup's 250 orders"; exit 1; }

step "the same backup against expectations it cannot meet (this one must fail)"
if "$PY" -m lazarus test "$backup" --kubeconfig "$KUBECONFIG" --spec "$here/demo/restoretest-broken.yaml" --timeout 300; then
  echo "expected a failure, got success"; exit 1
fi

step "silent data loss: 100 more orders deleted in production, a new backup, the same test"
sql -c "DELETE FROM orders WHERE id > 100"
second="$backup-after-loss"
back_up "$second"
echo "   backup $second: $(orders) orders; the check's own range (100 to 100000) still passes"
if output=$("$PY" -m lazarus test "$second" --kubeconfig "$KUBECONFIG" --spec "$here/demo/restoretest.yaml" \
            --schedule "$source_name" --timeout 300); then
  echo "$output"; echo "expected the loss to be caught, got success"; exit 1
fi
echo "$output"
grep -q "BaselineDrift" <<<"$output" || { echo "expected reason BaselineDrift"; exit 1; }

step "production was not touched"
kubectl -n shop get deployment web -o jsonpath='   web: {.status.readyReplicas}/{.spec.replicas} ready{"\n"}'
echo "   orders in production: $(orders)"
kubectl get lazarusrestoretests -n lazarus-system
echo
echo "demo finished: a backup proven restorable with its data (250 orders restored while production"
echo "had 200), one broken expectation reported, and a silent loss of 60 % of the orders caught"
echo "against the baseline (lazarus baseline show schedule/$source_name)."
