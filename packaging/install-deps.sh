#!/usr/bin/env bash
# Install what a fresh Debian 12 (bookworm) or 13 (trixie) machine lacks to build virtnet, run its
# tests and run the demo. Idempotent: packages already installed are left alone, `apt-get update`
# runs only when something must be installed and apt does not know it yet, and a second run changes
# nothing. Used by .ci/run and by the README's quick start.
#
#   packaging/install-deps.sh [--with-libvirt] [--with-frr] [--with-firewalls] [--dry-run]
#
#   --with-libvirt  also libvirtd + QEMU + virt-install (libvirt-daemon, libvirt-daemon-driver-qemu, libvirt-clients,
#                   qemu-system-x86, virtinst) for the end-to-end hook tests with real libvirt
#   --with-frr      also FRR (zebra, bgpd, vtysh) for spanning networks in mode 'evpn'
#   --with-firewalls also firewalld and ufw, which the coexistence tests run sealed in namespaces
#   (packages with a service — frr, firewalld, libvirt — are installed without starting it, and frr's
#   and firewalld's units are left disabled: the tests never run them on the host)
#   --dry-run       print what would be installed, install nothing
#
# Node.js >= 20.19 is required to build and test (vitest, Biome; the installed .deb itself runs on
# Debian 12's nodejs 18.19). When it is missing or older, the Debian package is installed if the
# distribution's version is new enough (Debian 13); otherwise the script stops and says so (Debian 12
# ships Node 18: install Node 20.19+ from https://nodejs.org or NodeSource first).
set -euo pipefail

NODE_MIN=20.19
WITH_LIBVIRT=0
WITH_FRR=0
WITH_FIREWALLS=0
DRY_RUN=0

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

for arg in "$@"; do
  case "$arg" in
    --with-libvirt) WITH_LIBVIRT=1 ;;
    --with-frr) WITH_FRR=1 ;; # FRR (zebra + bgpd): spans in mode 'evpn' and their test
    --with-firewalls) WITH_FIREWALLS=1 ;;
    --dry-run) DRY_RUN=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

say() { echo "install-deps: $*"; }
die() { echo "install-deps: ERROR: $*" >&2; exit 1; }

command -v dpkg-query >/dev/null && command -v apt-get >/dev/null ||
  die "this script is for Debian 12/13 (apt/dpkg not found); install the packages listed in it by hand"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=(sudo); else die "run as root (or install sudo)"; fi
fi

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
# Whether apt knows a candidate version for the package (its lists are current enough).
known() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

UPDATED=0
apt_update_once() {
  [ "$UPDATED" = 1 ] && return 0
  say "apt-get update"
  "${SUDO[@]}" apt-get update -qq
  UPDATED=1
}

# The first of several alternative package names apt knows (Debian 12/13 split dbus into
# dbus-daemon/dbus-bin; older layouts have everything in 'dbus').
# Sets FIRST (the last name when apt knows none of them: the install then fails with apt's message).
first_known() {
  for p in "$@"; do known "$p" && { FIRST="$p"; return 0; }; done
  apt_update_once
  for p in "$@"; do known "$p" && { FIRST="$p"; return 0; }; done
  FIRST="${*: -1}"
}

# --- what is needed ---------------------------------------------------------------------------------
# iproute2: ip, ip netns, ip -batch   dnsmasq-base: DHCP/DNS   nftables, iptables: both firewall backends
# dbus-daemon: private test bus / system bus   dbus-bin: dbus-send (hook fast path)   systemd: busctl
# busybox: udhcpc/nslookup for simulated guests   procps, psmisc: pgrep/ps/fuser
# util-linux: unshare, setpriv, nsenter   ca-certificates: npm over https
# curl: HTTP through port forwards in the traffic tests (busybox wget is not reliable here)
# strace: the "daemon never execs a shell" check   polkitd: authorization through the real polkit
# python3: the sd_notify socket listener in the notify test   python3-dbus: the libdbus client of `npm run bench`
# mmdebstrap, systemd-container (systemd-nspawn): the booted Debian root for the package's systemd checks
WANT=(iproute2 dnsmasq-base nftables iptables busybox procps psmisc util-linux systemd ca-certificates curl strace polkitd python3 python3-dbus mmdebstrap systemd-container)
if ! command -v dbus-daemon >/dev/null; then first_known dbus-daemon dbus; WANT+=("$FIRST"); fi
if ! command -v dbus-send >/dev/null; then first_known dbus-bin dbus; WANT+=("$FIRST"); fi
[ "$WITH_FRR" = 1 ] && WANT+=(frr)
[ "$WITH_FIREWALLS" = 1 ] && WANT+=(firewalld ufw)
if [ "$WITH_LIBVIRT" = 1 ]; then
  WANT+=(libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients qemu-system-x86)
  WANT+=(virtinst) # virt-install: the e2e test of a VM made the way users make them
fi

# --- Node.js ----------------------------------------------------------------------------------------
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]; }
node_version() { command -v node >/dev/null && node -p 'process.versions.node' 2>/dev/null || true; }

NODE_V="$(node_version)"
if [ -n "$NODE_V" ] && version_ge "$NODE_V" "$NODE_MIN"; then
  command -v npm >/dev/null || WANT+=(npm)
else
  apt_update_once
  CAND="$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: \([0-9][^-+~]*\).*/\1/p' | head -n1)"
  if [ -n "$CAND" ] && version_ge "${CAND#*:}" "$NODE_MIN"; then
    WANT+=(nodejs npm)
  else
    die "Node.js >= $NODE_MIN is required (found: ${NODE_V:-none}; this distribution offers: ${CAND:-none}).
  Install Node.js $NODE_MIN or newer (https://nodejs.org, or NodeSource's Debian packages), then run this again."
  fi
fi

# --- install what is missing ------------------------------------------------------------------------
MISSING=()
for p in "${WANT[@]}"; do installed "$p" || MISSING+=("$p"); done

if [ "${#MISSING[@]}" -eq 0 ]; then
  say "nothing to install (all of: ${WANT[*]} present; node $(node_version))"
  exit 0
fi

if [ "$DRY_RUN" = 1 ]; then
  say "would install: ${MISSING[*]}"
  exit 0
fi

for p in "${MISSING[@]}"; do known "$p" || { apt_update_once; break; }; done
say "installing: ${MISSING[*]}"
# Test-only services must not start on this host (firewalld would take over its firewall): while apt
# runs, a policy-rc.d says no (unless the machine already has one), and their units stay disabled.
POLICY=/usr/sbin/policy-rc.d
OWN_POLICY=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# install-deps: no service starts while test dependencies install\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  OWN_POLICY=1
fi
status=0
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${MISSING[@]}" || status=$?
[ "$OWN_POLICY" = 1 ] && "${SUDO[@]}" rm -f "$POLICY"
[ "$status" = 0 ] || die "apt-get install failed (exit $status)"
for unit in firewalld.service frr.service; do
  if printf '%s\n' "${MISSING[@]}" | grep -qx "${unit%.service}" && command -v systemctl >/dev/null; then
    "${SUDO[@]}" systemctl disable "$unit" >/dev/null 2>&1 || true
  fi
done

NODE_V="$(node_version)"
[ -n "$NODE_V" ] && version_ge "$NODE_V" "$NODE_MIN" || die "Node.js >= $NODE_MIN still missing (found: ${NODE_V:-none})"
say "done (node $NODE_V)"
