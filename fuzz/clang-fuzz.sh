#!/bin/sh
# The compiler and linker launcher of the fuzz targets (CMake's CXX_COMPILER_LAUNCHER and
# CXX_LINKER_LAUNCHER): runs clang++ in place of the project's compiler, with libFuzzer's
# coverage, ASan and UBSan (every UB finding fatal). Arguments: clang++, then ccache or "-",
# then the command CMake would have run (its compiler first).
clang="$1"; cache="$2"; shift 3
san="-fsanitize=fuzzer,address,undefined"
for a in "$@"; do
  if [ "$a" = "-c" ]; then san="-fsanitize=fuzzer-no-link,address,undefined"; fi
done
if [ "$cache" = "-" ]; then cache=""; fi
exec $cache "$clang" "$@" -O1 -g0 -fno-omit-frame-pointer -fno-sanitize-recover=undefined $san
