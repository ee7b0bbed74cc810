#!/usr/bin/env bash
# The protos pass `buf lint` (buf.yaml) and `buf breaking` against the committed baseline image
# tools/buf/baseline-image.json (the v1 API and event schemas as released; `make proto-baseline`
# moves it on). A deliberately broken copy must be refused, so the check cannot pass vacuously.
set -euo pipefail
buf=$1
src=$2
export BUF_CACHE_DIR=${TMPDIR:-/tmp}/crm-buf-cache
cd "$src"

echo "== buf lint"
"$buf" lint
echo "== buf breaking against tools/buf/baseline-image.json"
"$buf" breaking --against tools/buf/baseline-image.json

echo "== a removed event field and a renumbered request field are caught"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r proto buf.yaml "$tmp/"
ev=$tmp/proto/crm/customers/v1/customers_events.proto
svc=$tmp/proto/crm/customers/v1/customers_service.proto
grep -q '  string customer_number = 1;' "$ev"
grep -q '  string request_id = 6;' "$svc"
sed -i '0,/  string customer_number = 1;/s//  reserved 1;/' "$ev"
sed -i '0,/  string request_id = 6;/s//  string request_id = 999;/' "$svc"
if out=$(cd "$tmp" && "$buf" breaking --against "$src/tools/buf/baseline-image.json" 2>&1); then
  echo "buf breaking accepted a broken copy" >&2
  exit 1
fi
echo "$out"
grep -q 'customers_events.proto' <<<"$out"
grep -q 'customers_service.proto' <<<"$out"
echo "ok"
