#!/usr/bin/env bash
# deploy/setup.sh installs everything vigil needs to build, run and test on Debian 12 or Ubuntu
# 22.04+: build tools, OpenCV, libav, ffmpeg, PostgreSQL with pgvector, VLC (a real RTSP server
# for the tests), the ONNX Runtime library, Go and the Go modules. It only uses apt, npm and the
# Go module proxy, installs only what is missing, and says what it installed. Run it as root or
# with sudo rights.
set -euo pipefail
cd "$(dirname "$0")/.."

# ONNX Runtime comes from the npm package onnxruntime-node, whose tarball carries the plain C
# library; its install scripts are never run. Both checksums are pinned.
ORT_PACKAGE=onnxruntime-node@1.24.1
ORT_TGZ_SHA256=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
ORT_LIB_SHA256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4
ORT_LIB=.deps/onnxruntime/libonnxruntime.so.1

installed=()
say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || die "run as root, or install sudo"
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive

missing_packages() {
  local p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null)" = installed ] || echo "$p"
  done
}

apt_updated=
apt_install() {
  local want
  want=$(missing_packages "$@")
  [ -n "$want" ] || return 0
  if [ -z "$apt_updated" ]; then
    $SUDO apt-get update -qq
    apt_updated=1
  fi
  # shellcheck disable=SC2086
  $SUDO apt-get install -y -qq --no-install-recommends $want >/dev/null
  installed+=($want)
}

[ -r /etc/os-release ] && . /etc/os-release
case "${ID:-}:${ID_LIKE:-}" in
  debian:*|ubuntu:*|*:*debian*) ;;
  *) die "this script knows Debian and Ubuntu only (found ${PRETTY_NAME:-an unknown system})" ;;
esac

# 1. System packages.
apt_install ca-certificates build-essential pkg-config git \
  libopencv-dev libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg \
  postgresql postgresql-contrib
# VLC's RTSP server is the third-party camera the tests read from.
apt_install vlc-bin vlc-plugin-base
command -v npm >/dev/null || apt_install npm

# 2. pgvector for the newest installed PostgreSQL: the distribution's package where it has one,
#    else built from Debian's source package (bookworm has none; trixie's builds against 15).
PGVER=$(ls /usr/lib/postgresql | sort -n | tail -n 1)
[ -n "$PGVER" ] || die "PostgreSQL did not install"
if [ ! -f "/usr/share/postgresql/$PGVER/extension/vector.control" ]; then
  if apt-cache show "postgresql-$PGVER-pgvector" >/dev/null 2>&1; then
    apt_install "postgresql-$PGVER-pgvector"
  else
    apt_install "postgresql-server-dev-$PGVER" debian-archive-keyring
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/lists/partial"
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" >"$work/sources.list"
    # A private apt configuration: the machine's own sources stay untouched.
    aptsrc=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$work/lists" -o APT::Sandbox::User=root)
    $SUDO apt-get "${aptsrc[@]}" update -qq
    (cd "$work" && $SUDO apt-get "${aptsrc[@]}" source --download-only -qq pgvector >/dev/null)
    tar -xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
    # OPTFLAGS= does what Debian's no-native patch does: a build that runs on any x86-64.
    make -s -C "$work"/pgvector-*/ PG_CONFIG="/usr/lib/postgresql/$PGVER/bin/pg_config" OPTFLAGS= >/dev/null
    $SUDO make -s -C "$work"/pgvector-*/ PG_CONFIG="/usr/lib/postgresql/$PGVER/bin/pg_config" install >/dev/null
    installed+=("pgvector (built from Debian's source package for PostgreSQL $PGVER)")
  fi
fi

# 3. ONNX Runtime shared library into .deps (git ignores it).
if ! echo "$ORT_LIB_SHA256  $ORT_LIB" | sha256sum -c --status 2>/dev/null; then
  work=$(mktemp -d)
  (cd "$work" && npm pack --silent "$ORT_PACKAGE" >/dev/null)
  tgz=$(ls "$work"/*.tgz)
  echo "$ORT_TGZ_SHA256  $tgz" | sha256sum -c --status || die "$ORT_PACKAGE tarball checksum mismatch"
  tar -xzf "$tgz" -C "$work" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
  mkdir -p "$(dirname "$ORT_LIB")"
  mv "$work/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ORT_LIB.tmp"
  rm -rf "$work"
  echo "$ORT_LIB_SHA256  $ORT_LIB.tmp" | sha256sum -c --status || die "onnxruntime library checksum mismatch"
  mv "$ORT_LIB.tmp" "$ORT_LIB"
  installed+=("ONNX Runtime 1.24.1 ($ORT_LIB)")
fi

# 4. Go and the modules. Debian and Ubuntu ship a Go older than go.mod asks for; any Go can fetch
#    the official toolchain as a module from the module proxy, so an old one is used only for that
#    and the toolchain goes into .deps/go (the Makefile puts it first on PATH).
GO_TOOLCHAIN=1.26.8
GO_WANT=$(sed -n 's/^go \([0-9.]*\)$/\1/p' go.mod)
export PATH="$PWD/.deps/go/bin:/usr/local/go/bin:$PATH"
go_ok() {
  local have
  have=$(go env GOVERSION 2>/dev/null | sed 's/^go//') || return 1
  [ -n "$have" ] && [ "$(printf '%s\n%s\n' "$GO_WANT" "$have" | sort -V | head -n 1)" = "$GO_WANT" ]
}
if ! go_ok; then
  command -v go >/dev/null || apt_install golang-go
  work=$(mktemp -d)
  mod="golang.org/toolchain@v0.0.1-go$GO_TOOLCHAIN.linux-$(dpkg --print-architecture)"
  dir=$(cd "$work" && GOTOOLCHAIN=local GOPATH="$work/gopath" GOFLAGS=-modcacherw \
    go mod download -json "$mod" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] && [ -f "$dir/bin/go" ] || die "could not fetch the Go toolchain $mod from the module proxy"
  rm -rf .deps/go
  mkdir -p .deps
  cp -r "$dir" .deps/go
  # Module zips keep no file modes.
  chmod +x .deps/go/bin/* .deps/go/pkg/tool/*/*
  rm -rf "$work"
  go_ok || die "the Go toolchain in .deps/go does not run"
  installed+=("Go $GO_TOOLCHAIN (.deps/go)")
fi
# Quiet and quick when the module cache already holds everything.
go mod download
if [ ${#installed[@]} -eq 0 ]; then
  say "everything was already installed"
else
  for what in "${installed[@]}"; do say "installed $what"; done
fi
