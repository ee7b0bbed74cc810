#!/usr/bin/env bash
# Installs the Debian packages and npm files the build and tests need; installs only what is
# missing, so a second run is a no-op. Run as root on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config lld
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  librdkafka-dev librocksdb-dev libabsl-dev libssl-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  kcat python3-kafka python3-grpcio python3-protobuf python3-jsonschema
  libcivetweb-dev chromium fonts-wqy-microhei prometheus
  postgresql clang libclang-rt-14-dev libjemalloc-dev
)
# npm fetches the google/rpc protos; a machine may already have Node.js from elsewhere, whose
# nodejs package conflicts with Debian's npm, so Debian's is installed only when npm is absent.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)
# kubectl renders the Kubernetes manifests (`kubectl kustomize`, offline); Debian 12's is 1.20,
# and any newer one already on the machine serves as well.
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# google/rpc/{status,error_details,code}.proto: no Debian package ships them for C++, so they
# come from the npm package google-proto-files into build/third_party (never into the repo).
here=$(cd "$(dirname "$0")/.." && pwd)
gp="$here/build/third_party/google-proto-files"
if [ ! -f "$gp/node_modules/google-proto-files/google/rpc/error_details.proto" ]; then
  echo "install-deps: fetching google/rpc protos (npm google-proto-files)"
  mkdir -p "$gp"
  (cd "$gp" && npm install --silent --no-audit --no-fund --prefix . google-proto-files@4 >/dev/null)
fi
# ECharts for the analytics dashboard, built into the binaries (services/analytics/web_assets):
# the npm tarball at a pinned version, checked against its pinned sha512 (the registry's
# dist.integrity, in hex) before use.
ec="$here/build/third_party/echarts"
ECHARTS_VERSION=5.6.0
ECHARTS_SHA512=a136d54ec5df2ae121c5fb47a8be71a6b80ba1cd24eee49c030b6bc8281617a84f6052d1c0e50788598718204a3f934f14d903568a4e89ec94a98187f056b790
if [ ! -f "$ec/echarts.min.js" ]; then
  echo "install-deps: fetching echarts@$ECHARTS_VERSION (npm)"
  rm -rf "$ec" && mkdir -p "$ec"
  (cd "$ec" && npm pack --silent "echarts@$ECHARTS_VERSION" >/dev/null)
  got=$(sha512sum "$ec/echarts-$ECHARTS_VERSION.tgz" | cut -d' ' -f1)
  if [ "$got" != "$ECHARTS_SHA512" ]; then
    echo "install-deps: echarts-$ECHARTS_VERSION.tgz has sha512 $got, expected $ECHARTS_SHA512" >&2
    exit 1
  fi
  tar -xzf "$ec/echarts-$ECHARTS_VERSION.tgz" -C "$ec" package/dist/echarts.min.js package/LICENSE
  mv "$ec/package/dist/echarts.min.js" "$ec/echarts.min.js"
  mv "$ec/package/LICENSE" "$ec/LICENSE"
  rm -rf "$ec/package" "$ec/echarts-$ECHARTS_VERSION.tgz"
fi
# buf (npm @bufbuild/buf, a static binary) lints the protos and checks them for breaking changes
# against tools/buf/baseline-image.json in `make test`.
BUF_VERSION=1.75.0
bf="$here/build/third_party/buf"
if [ "$("$bf/node_modules/.bin/buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  echo "install-deps: fetching buf $BUF_VERSION (npm @bufbuild/buf)"
  rm -rf "$bf" && mkdir -p "$bf"
  (cd "$bf" && npm install --silent --no-audit --no-fund --prefix . "@bufbuild/buf@$BUF_VERSION" >/dev/null)
fi
# The manifest validator's schemas (k8s/validate.mjs): Kubernetes, Strimzi and the Prometheus
# Operator as npm kubernetes-models packages, and a YAML parser; pinned versions.
K8S_NPM=(kubernetes-models@5.1.0 @kubernetes-models/strimzi-kafka-operator@1.0.1
         @kubernetes-models/prometheus-operator@6.0.0 yaml@2.9.1)
kv="$here/build/third_party/k8s-validate"
if [ "$(cat "$kv/.installed" 2>/dev/null)" != "${K8S_NPM[*]}" ]; then
  echo "install-deps: fetching the manifest schemas (npm ${K8S_NPM[*]})"
  rm -rf "$kv" && mkdir -p "$kv"
  (cd "$kv" && npm install --silent --no-audit --no-fund --prefix . "${K8S_NPM[@]}" >/dev/null)
  echo "${K8S_NPM[*]}" >"$kv/.installed"
fi
echo "install-deps: ok"
