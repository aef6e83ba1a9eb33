# shellcheck shell=sh
# The common part of hooks/qemu and hooks/network (sourced, not run): hand the event to the running
# virtnet daemon with ONE dbus-send call; when no daemon answers, run the same handler in-process.
#
# Expects: VIRTNET_HOOK (qemu|network), self (this hook's real path), "$@" = libvirt's 4 arguments.
# Rules: never calls libvirt; bounded time; exit non-zero only when the domain must not start
# (qemu prepare/start), with exactly one line on stderr (libvirt logs it).
#
# Environment (optional; libvirt clears it, so these are for tests and unusual layouts):
# VIRTNET_HOOK_TIMEOUT_MS (daemon reply timeout, default 15000), VIRTNET_NODE (node binary),
# VIRTNET_HOOK_MAIN (the fallback's script, default <libdir>/dist/src/hooks/main.js),
# DBUS_SYSTEM_BUS_ADDRESS (the system bus); the fallback also reads VIRTNET_CONFIG_DIR/VIRTNET_RUN_DIR.

virtnet_fail() { # virtnet_fail MESSAGE: one line, exit code by the rules above
  printf 'virtnet: %s %s %s: %s\n' "$VIRTNET_HOOK" "$virtnet_object" "$virtnet_op" "$1" >&2
  case "$VIRTNET_HOOK:$virtnet_op" in
    qemu:prepare | qemu:start) exit 1 ;;
    *) exit 0 ;;
  esac
}

virtnet_object=${1-}
virtnet_op=${2-}
if [ $# -ne 4 ]; then
  printf 'virtnet: %s hook: expected 4 arguments (object operation sub-operation extra), got %s\n' \
    "$VIRTNET_HOOK" "$#" >&2
  exit 2
fi

# Read stdin completely first (libvirt writes it all, then waits for us).
virtnet_xml=$(cat) || virtnet_fail "cannot read the XML on stdin"

virtnet_inprocess() {
  virtnet_lib=${self%/hooks/*}
  virtnet_node=${VIRTNET_NODE:-}
  if [ -z "$virtnet_node" ]; then
    for virtnet_n in node nodejs /usr/bin/node /usr/local/bin/node; do
      if command -v "$virtnet_n" >/dev/null 2>&1; then
        virtnet_node=$virtnet_n
        break
      fi
    done
  fi
  virtnet_main=${VIRTNET_HOOK_MAIN:-$virtnet_lib/dist/src/hooks/main.js}
  [ -n "$virtnet_node" ] || virtnet_fail "no virtnet daemon on the bus and no node to run the handler in-process"
  [ -f "$virtnet_main" ] || virtnet_fail "no virtnet daemon on the bus and $virtnet_main is missing"
  exec "$virtnet_node" "$virtnet_main" "$VIRTNET_HOOK" "$@" <<VIRTNET_EOF
$virtnet_xml
VIRTNET_EOF
}

# dbus-send passes the XML as one argv element: past ~128 KiB (the kernel's limit per argument) the
# event is handled in-process instead.
if [ "${#virtnet_xml}" -gt 120000 ]; then
  virtnet_inprocess "$@"
fi

virtnet_timeout=${VIRTNET_HOOK_TIMEOUT_MS:-15000}
virtnet_err=$(dbus-send --system --print-reply=literal --reply-timeout="$virtnet_timeout" \
  --dest=org.virtnet.network1 /org/virtnet/network1 org.virtnet.network1.Manager.HookEvent \
  "string:$1" "string:$2" "string:$3" "string:$4" "string:$virtnet_xml" 2>&1 >/dev/null) && exit 0

case $virtnet_err in
  # No daemon (not running, not activatable, no bus at all): do the work ourselves.
  *org.freedesktop.DBus.Error.ServiceUnknown* | *org.freedesktop.DBus.Error.NameHasNoOwner* | \
    *org.freedesktop.DBus.Error.Spawn.* | *org.freedesktop.systemd1.* | \
    *org.freedesktop.DBus.Error.NoServer* | *org.freedesktop.DBus.Error.FileNotFound* | \
    *org.freedesktop.DBus.Error.Disconnected* | *"Failed to open connection"*)
    virtnet_inprocess "$@"
    ;;
  *org.freedesktop.DBus.Error.NoReply* | *org.freedesktop.DBus.Error.Timeout*)
    virtnet_fail "the virtnet daemon did not answer within ${virtnet_timeout} ms"
    ;;
  "Error org.virtnet.network1.Error."*)
    virtnet_msg=${virtnet_err#Error org.virtnet.network1.Error.}
    virtnet_fail "${virtnet_msg#*: }"
    ;;
  *)
    virtnet_fail "$(printf '%s' "$virtnet_err" | tr '\n' ' ')"
    ;;
esac
