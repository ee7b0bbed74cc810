#!/usr/bin/env bash
# The Kubernetes manifests, offline: k8s/base/services/*.yaml are what k8s/gen-services.py
# writes; each overlay renders with `kubectl kustomize` and passes k8s/validate.mjs (the
# Kubernetes, Strimzi and Prometheus Operator schemas, and the references between objects);
# and broken renders are refused.
set -euo pipefail
src=$1
modules=$2
kubectl=${KUBECTL:-kubectl}
cd "$src"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== k8s/base/services/*.yaml are up to date"
/usr/bin/python3 k8s/gen-services.py --check

# The partition count every service creates its topic with; the KafkaTopics must agree.
parts=$(grep -h 'inline constexpr int32_t kPartitions = ' libs/topics/topics.h | sed -E 's/.*= ([0-9]+);/\1/' | sort -u)
[ "$(wc -l <<<"$parts")" = 1 ] || { echo "libs/topics/topics.h names no single kPartitions: $parts" >&2; exit 1; }

echo "== kustomize: $("$kubectl" version --client 2>/dev/null | head -1)"
"$kubectl" kustomize k8s/overlays/dev >"$tmp/dev.yaml" 2>"$tmp/dev.err" || { cat "$tmp/dev.err" >&2; exit 1; }
"$kubectl" kustomize k8s/overlays/prod >"$tmp/prod.yaml" 2>"$tmp/prod.err" || { cat "$tmp/prod.err" >&2; exit 1; }

prod_opts=(--namespace crm --replicas 3 --min-isr 2 --partitions "$parts" --external-secret crm-signing-key --require-tag)
node k8s/validate.mjs --modules "$modules" --namespace crm-dev --replicas 1 --min-isr 1 --partitions "$parts" "$tmp/dev.yaml"
node k8s/validate.mjs --modules "$modules" "${prod_opts[@]}" "$tmp/prod.yaml"

echo "== broken renders are refused"
node tests/k8s_mutations.mjs "$modules" k8s/validate.mjs "$tmp/prod.yaml" -- "${prod_opts[@]}"
echo ok
