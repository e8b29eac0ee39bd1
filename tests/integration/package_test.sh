#!/bin/bash
# The Debian package (scripts/package): builds sluice_<version>_amd64.deb,
# checks it with lintian (no errors), installs it with dpkg in a throw-away
# root (an overlay of / in a mount namespace of its own, so the host's dpkg
# database, /etc and /usr are untouched), and runs what it installed:
# `sluiced --config /etc/sluice/laptop.toml --check` and `sluicectl --version`.
# Usage: package_test.sh [DEB]   (DEB: check that package instead of building one)
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "installing in a throw-away root needs root (mount namespaces, overlayfs)"
for tool in dpkg-buildpackage dh lintian fakeroot unshare; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (scripts/setup-deps installs it)"
done

work=$(mktemp -d /var/tmp/sluice-package-test.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ $# -ge 1 ]; then
  deb=$(realpath "$1")
else
  echo "== scripts/package"
  deb=$("$root/scripts/package" "$work/out") || fail "scripts/package failed"
fi
version=$(sed -n "s/^  version: '\([^']*\)'.*/\1/p" "$root/meson.build" | head -n 1)
[ "$(basename "$deb")" = "sluice_${version}_amd64.deb" ] || fail "package named $(basename "$deb"), not sluice_${version}_amd64.deb"
echo "$deb"

echo "== what it holds"
contents=$(dpkg-deb --contents "$deb") || fail "dpkg-deb cannot read $deb"
for f in ./usr/bin/sluiced ./usr/bin/sluicectl ./usr/bin/sluice-bench ./lib/systemd/system/sluiced.service \
  ./etc/sluice/sluice.toml ./etc/sluice/laptop.toml ./usr/share/doc/sluice/README.md.gz \
  ./usr/share/doc/sluice/logging.md.gz ./usr/share/sluice/grafana/sluice-dashboard.json; do
  echo "$contents" | grep -q " $f\$" || fail "the package has no $f"
done
conffiles=$(dpkg-deb --info "$deb" conffiles) || fail "the package has no conffiles"
echo "$conffiles" | grep -qx "/etc/sluice/sluice.toml" || fail "/etc/sluice/sluice.toml is not a conffile"
depends=$(dpkg-deb --field "$deb" Depends)
echo "Depends: $depends"
for lib in libssl3 libsrtp2 libipsec-mb librte-ethdev librte-mempool-ring; do
  echo "$depends" | grep -q "$lib" || fail "Depends lacks $lib"
done

echo "== lintian"
lintian --fail-on error --no-tag-display-limit "$deb"
[ $? -eq 0 ] || fail "lintian reports errors"

echo "== dpkg -i in a throw-away root"
# The overlay's upper layer takes every write of dpkg and the maintainer
# scripts; the mount namespace (and with it the overlay) ends with the
# subshell. /tmp and /var/tmp of the host stay out of the lower layer's way.
# The layers live on a tmpfs: overlayfs refuses an upper layer inside its
# lower one on the same file system.
mkdir -p "$work/layers" "$work/merged"
unshare --mount --propagation private /bin/bash -euc '
  work=$1
  mount -t tmpfs -o size=512m tmpfs "$work/layers"
  mkdir "$work/layers/upper" "$work/layers/ovl"
  mount -t overlay overlay \
    -o "lowerdir=/,upperdir=$work/layers/upper,workdir=$work/layers/ovl" "$work/merged"
  m=$work/merged
  mount -t proc proc "$m/proc"
  mount --rbind /dev "$m/dev"
  mount -t tmpfs tmpfs "$m/tmp"
  mount -t tmpfs tmpfs "$m/run"
  cp "$2" "$m/tmp/"
  chroot "$m" /bin/bash -euc "
    if dpkg-query -W -f=\"\\\${Status}\" sluice 2>/dev/null | grep -q \"install ok installed\"; then
      dpkg --purge sluice >/dev/null
    fi
    dpkg -i /tmp/$(basename "$2")
    dpkg-query -W -f=\"\\\${Package} \\\${Version} \\\${Status}\\n\" sluice
    getent group sluice
    test -x /usr/bin/sluiced && test -x /usr/bin/sluicectl
    /usr/bin/sluiced --config /etc/sluice/laptop.toml --check
    /usr/bin/sluicectl --version
    dpkg --purge sluice
    if test -e /usr/bin/sluiced || test -e /etc/sluice/sluice.toml; then echo \"purge left files\"; exit 1; fi
  "
' bash "$work" "$deb" || fail "installing, running or purging the package failed"
echo "PASS"
