#!/usr/bin/env bash
# Installs the Debian packages and npm files the build and tests need; installs only what is
# missing, so a second run is a no-op. Run as root on Debian 12.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler grpc-proto
  librdkafka-dev librocksdb-dev libabsl-dev libssl-dev libre2-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  prometheus-cpp-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  kcat python3-kafka python3-grpcio python3-protobuf
)
# npm fetches the google/rpc protos; a machine may already have Node.js from elsewhere, whose
# nodejs package conflicts with Debian's npm, so Debian's is installed only when npm is absent.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

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
echo "install-deps: ok"
