#!/usr/bin/env bash
# Installs cellc's build and test dependencies from Debian 12 (idempotent: apt skips what is there).
# Pinned by major version: LLVM 19 (llvm-14 may also be installed; CMake pins 19).
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config
      antlr4 libantlr4-runtime-dev uuid-dev
      llvm-19-dev libzstd-dev
      libeigen3-dev liblapack-dev catch2 libbenchmark-dev
      libopenblas0-serial       # becomes liblapack.so.3: spectral_radius's dgeev 2.3x faster at n = 1024
      libtomlplusplus-dev nlohmann-json3-dev
      libopenmpi-dev openmpi-bin                                 # cellc sweep under mpirun
      python3 python3-numpy python3-matplotlib
      python3-dev pybind11-dev python3-pytest python3-venv   # the Python package (python/)
      python3-hypothesis)                                    # the property-based tests (tests/property/)
# python3-torch (cellc.torch and its tests) is optional and large (~140 MB): `--torch` adds it.
# `--fuzz` adds clang and its libFuzzer runtime (the fuzz build, -DCELLC_FUZZ=ON).
for arg in "$@"; do
  case $arg in
    --torch) pkgs+=(python3-torch) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev) ;;
    *) echo "setup.sh: unknown option $arg (--torch, --fuzz)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all dependencies present"; exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=900 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y --no-install-recommends "${missing[@]}"
