#!/usr/bin/env bash
# Install (or uninstall) virtnet into a prefix, optionally under a staging root (DESTDIR), the way a
# distribution package lays it out. Run from a built tree (`npm run build`).
#
#   packaging/install.sh [--prefix /usr] [--sysconfdir /etc] [--destdir DIR] [--uninstall]
#
# What goes where (PREFIX=/usr, SYSCONFDIR=/etc):
#   PREFIX/lib/virtnet/                     the program (dist/ with the bundled entry points,
#                                            production node_modules/, hooks/)
#   PREFIX/bin/virtnetd, PREFIX/bin/virtnetctl
#   SYSCONFDIR/libvirt/hooks/qemu.d/virtnet, SYSCONFDIR/libvirt/hooks/network.d/virtnet (symlinks)
#   SYSCONFDIR/virtnet/networks/             network XML (the daemon's config dir; kept on uninstall),
#                                            with default.xml (defined, not autostarted) when absent
#   PREFIX/share/dbus-1/system.d/org.virtnet.network1.conf            bus policy
#   PREFIX/share/dbus-1/system-services/org.virtnet.network1.service  bus activation
#   PREFIX/share/dbus-1/interfaces/org.virtnet.network1.*.xml          interface XML
#   PREFIX/share/polkit-1/actions/org.virtnet.network1.policy          polkit actions
#   PREFIX/lib/firewalld/zones/virtnet.xml                             firewalld zone for bridges
#   PREFIX/lib/systemd/system/virtnetd.service                          systemd unit
#   PREFIX/lib/sysctl.d/60-virtnet.conf                                inotify instances for 1,000s of dnsmasq
#   PREFIX/share/virtnet/networks/default.xml                          the embedded default network
#   PREFIX/share/doc/virtnet/README.md
set -euo pipefail

prefix=/usr
sysconfdir=/etc
destdir=
mode=install
skip_modules=0

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=${2:?--prefix needs a value}; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --sysconfdir) sysconfdir=${2:?--sysconfdir needs a value}; shift 2 ;;
    --sysconfdir=*) sysconfdir=${1#*=}; shift ;;
    --destdir) destdir=${2:?--destdir needs a value}; shift 2 ;;
    --destdir=*) destdir=${1#*=}; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --no-node-modules) skip_modules=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$prefix" in /*) ;; *) echo "install.sh: --prefix must be absolute, got '$prefix'" >&2; exit 2 ;; esac
case "$sysconfdir" in /*) ;; *) echo "install.sh: --sysconfdir must be absolute, got '$sysconfdir'" >&2; exit 2 ;; esac

src=$(cd "$(dirname "$0")/.." && pwd)
root=${destdir%/}
libdir=$prefix/lib/virtnet

files_owned() {
  # Every path this script creates, relative to the root (used by uninstall).
  cat <<LIST
$prefix/bin/virtnetd
$prefix/bin/virtnetctl
$sysconfdir/libvirt/hooks/qemu.d/virtnet
$sysconfdir/libvirt/hooks/network.d/virtnet
$prefix/share/dbus-1/system.d/org.virtnet.network1.conf
$prefix/share/dbus-1/system-services/org.virtnet.network1.service
$prefix/share/dbus-1/interfaces/org.virtnet.network1.Manager.xml
$prefix/share/dbus-1/interfaces/org.virtnet.network1.Network.xml
$prefix/share/polkit-1/actions/org.virtnet.network1.policy
$prefix/lib/firewalld/zones/virtnet.xml
$prefix/lib/systemd/system/virtnetd.service
$prefix/lib/sysctl.d/60-virtnet.conf
$prefix/share/virtnet/networks/default.xml
$prefix/share/doc/virtnet/README.md
LIST
}

if [ "$mode" = uninstall ]; then
  while read -r f; do rm -f "$root$f"; done < <(files_owned)
  rm -rf -- "$root${libdir:?}" "$root$prefix/share/virtnet" "$root$prefix/share/doc/virtnet"
  rmdir "$root$sysconfdir/libvirt/hooks/qemu.d" "$root$sysconfdir/libvirt/hooks/network.d" 2>/dev/null || true
  echo "virtnet uninstalled from ${root:-/}$prefix (network definitions in $sysconfdir/virtnet kept)"
  exit 0
fi

[ -f "$src/dist/src/bin/virtnetd.js" ] || { echo "install.sh: $src/dist is missing: run 'npm run build' first" >&2; exit 1; }

inst() { # inst MODE SRC DEST
  install -D -m "$1" "$2" "$root$3"
}

# The program.
rm -rf "$root$libdir"
mkdir -p "$root$libdir"
cp -r "$src/dist" "$root$libdir/dist"
rm -rf "$root$libdir/dist/test"
# What runs at start comes bundled (packaging/bundle.mjs, part of `npm run build`): the entry points
# virtnetd, virtnetctl and the hooks' fallback are replaced by their bundles, same paths.
if [ -d "$root$libdir/dist/bundle" ]; then
  cp -r "$root$libdir/dist/bundle/." "$root$libdir/dist/src/"
  rm -rf "$root$libdir/dist/bundle"
fi
find "$root$libdir/dist" -name '*.map' -delete
cp "$src/package.json" "$src/package-lock.json" "$root$libdir/"
mkdir -p "$root$libdir/hooks"
for h in "$src"/hooks/*; do
  [ -f "$h" ] && install -m 0755 "$h" "$root$libdir/hooks/"
done
if [ "$skip_modules" = 0 ]; then
  (cd "$root$libdir" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
chmod 0755 "$root$libdir/dist/src/bin/virtnetd.js" "$root$libdir/dist/src/bin/virtnetctl.js"

mkdir -p "$root$prefix/bin"
ln -sfn "../lib/virtnet/dist/src/bin/virtnetd.js" "$root$prefix/bin/virtnetd"
ln -sfn "../lib/virtnet/dist/src/bin/virtnetctl.js" "$root$prefix/bin/virtnetctl"

# libvirt hooks (libvirt >= 6.5 runs every executable in qemu.d/ and network.d/).
mkdir -p "$root$sysconfdir/libvirt/hooks/qemu.d" "$root$sysconfdir/libvirt/hooks/network.d"
ln -sfn "$libdir/hooks/qemu" "$root$sysconfdir/libvirt/hooks/qemu.d/virtnet"
ln -sfn "$libdir/hooks/network" "$root$sysconfdir/libvirt/hooks/network.d/virtnet"

# D-Bus, polkit, systemd.
inst 0644 "$src/dbus/org.virtnet.network1.conf" "$prefix/share/dbus-1/system.d/org.virtnet.network1.conf"
sed "s#/usr/bin/virtnetd#$prefix/bin/virtnetd#g" "$src/dbus/org.virtnet.network1.service" \
  | install -D -m 0644 /dev/stdin "$root$prefix/share/dbus-1/system-services/org.virtnet.network1.service"
inst 0644 "$src/dbus/org.virtnet.network1.Manager.xml" "$prefix/share/dbus-1/interfaces/org.virtnet.network1.Manager.xml"
inst 0644 "$src/dbus/org.virtnet.network1.Network.xml" "$prefix/share/dbus-1/interfaces/org.virtnet.network1.Network.xml"
inst 0644 "$src/dbus/org.virtnet.network1.policy" "$prefix/share/polkit-1/actions/org.virtnet.network1.policy"
# The zone a bridge goes into when firewalld runs and neither <bridge zone=…> nor libvirt's zones apply.
inst 0644 "$src/packaging/firewalld/virtnet.xml" "$prefix/lib/firewalld/zones/virtnet.xml"
# One inotify instance per dnsmasq: the kernel's 128 per user would stop a host at ~100 networks.
inst 0644 "$src/packaging/sysctl/60-virtnet.conf" "$prefix/lib/sysctl.d/60-virtnet.conf"
sed -e "s#/usr/bin/virtnetd#$prefix/bin/virtnetd#g" -e "s#/etc/virtnet#$sysconfdir/virtnet#g" \
  "$src/packaging/virtnetd.service" \
  | install -D -m 0644 /dev/stdin "$root$prefix/lib/systemd/system/virtnetd.service"
inst 0644 "$src/packaging/default.xml" "$prefix/share/virtnet/networks/default.xml"
inst 0644 "$src/README.md" "$prefix/share/doc/virtnet/README.md"
install -d -m 0755 "$root$sysconfdir/virtnet/networks"
# The default network is defined but not autostarted (libvirt's own default may own virbr0): an admin
# enables it with `virtnetctl autostart default` and starts it with `virtnetctl start default`. Never
# overwrite an admin's edits (the .deb ships it as a conffile).
if [ ! -e "$root$sysconfdir/virtnet/networks/default.xml" ]; then
  inst 0644 "$src/packaging/default.xml" "$sysconfdir/virtnet/networks/default.xml"
fi

echo "virtnet installed into ${root:-/}$prefix"
