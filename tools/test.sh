#!/usr/bin/env bash
# Installs what the test suite needs when it is missing, then runs it: the README's test command,
# and what .ci/run calls.
#
# The preview tests need a Vulkan driver (Mesa's software lavapipe works) and an X server for the
# window test: on Debian/Ubuntu the packages below, installed with apt-get (through sudo when not
# root). Elsewhere the script names the packages and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(mesa-vulkan-drivers libvulkan1 xvfb x11-apps)

if command -v dpkg >/dev/null 2>&1; then
  missing=()
  for pkg in "${packages[@]}"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    sudo=()
    if [ "$(id -u)" -ne 0 ]; then
      if ! command -v sudo >/dev/null 2>&1; then
        echo "tools/test.sh: the tests need ${missing[*]}; install them as root (apt-get install ${missing[*]}) and run again" >&2
        exit 1
      fi
      sudo=(sudo)
    fi
    echo "tools/test.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  # Not Debian: name what is needed rather than guess a package manager.
  if ! command -v Xvfb >/dev/null 2>&1; then
    echo "tools/test.sh: the tests need a Vulkan driver (Mesa's lavapipe), libvulkan, Xvfb and the X11 apps; Xvfb is missing. On Debian/Ubuntu: apt-get install ${packages[*]}" >&2
    exit 1
  fi
fi

# One test run on a fresh machine gains nothing from incremental build data and it costs disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
# 2 threads is the fastest setting on the 2-core machines this project runs on.
export RAYON_NUM_THREADS="${RAYON_NUM_THREADS:-2}"
# The CPU kernels on every dispatch path this CPU has, forced one by one (CLIPGUIDE_ISA; the
# workspace run below takes the path this CPU picks by itself): AVX-512 GEMM micro-kernels and
# elementwise loops, then AVX2 (none of this crate's kernels above it, so no bf16 kernel either: a
# bf16 request must give the f32 result), then the scalar baseline. A path the CPU lacks is named
# here, not tested (a kernel test forced onto it would fail saying so).
for isa in avx512 avx2; do
  flag=$([ "$isa" = avx512 ] && echo avx512f || echo avx2)
  if grep -qw "$flag" /proc/cpuinfo 2>/dev/null; then
    CLIPGUIDE_ISA=$isa cargo test -p clipguide-clip --lib "$@"
  else
    echo "tools/test.sh: this CPU has no $flag: the $isa kernel path is not tested here" >&2
  fi
done
CLIPGUIDE_ISA=baseline cargo test -p clipguide-clip --lib "$@"
exec cargo test --workspace "$@"
