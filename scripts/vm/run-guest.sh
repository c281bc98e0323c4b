#!/usr/bin/env bash
# Boots the guest from build-guest.sh once and runs SHARE/cmd.sh inside it (chroot into the host's
# root, read-only; SHARE is at /tmp/share in the guest, read-write; the checkout is mounted at its
# own path, read-only, since it may live under the guest's tmpfs /tmp). Afterwards SHARE holds
# stdout, stderr and rc of cmd.sh, and console.log (the serial console). Exit status: 0 when the
# guest wrote rc, 3 when QEMU cannot run at all, 4 on the wall-clock limit, 5 when the guest
# ended without an rc. With --systemd the guest boots the host's systemd as PID 1 on an overlay of
# the host's root instead (scripts/vm/guest-systemd.sh); SHARE is /share there.
# Usage: run-guest.sh [--systemd] SHARE [TIMEOUT_SECONDS]
set -euo pipefail
append="console=ttyS0 panic=-1 quiet"
if [ "${1:-}" = --systemd ]; then
  append="$append vtpmd.init=systemd systemd.show_status=error"
  shift
fi
share="$(cd "$1" && pwd)"
limit="${2:-300}"
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
command -v qemu-system-x86_64 >/dev/null || { echo "run-guest: qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)" >&2; exit 3; }
eval "$("$here/build-guest.sh")"
rm -f "$share/rc" "$share/stdout" "$share/stderr" "$share/console.log"
printf '%s' "$repo" > "$share/repo-path"
esc() { printf '%s' "$1" | sed 's/,/,,/g'; }
bios=()
[ -f /usr/share/qemu/qboot.rom ] && bios=(-bios /usr/share/qemu/qboot.rom)
status=0
timeout -k 5 "$limit" qemu-system-x86_64 -nodefaults -no-user-config -accel tcg,thread=multi -cpu max -smp 2 -m 2048 \
  -display none -monitor none -no-reboot -serial "file:$share/console.log" "${bios[@]}" \
  -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
  -virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
  -virtfs "local,path=$(esc "$share"),mount_tag=share,security_model=none,multidevs=remap" \
  -virtfs "local,path=$(esc "$repo"),mount_tag=checkout,security_model=none,readonly=on,multidevs=remap" || status=$?
if [ "$status" = 124 ] || [ "$status" = 137 ]; then echo "run-guest: the guest did not finish within ${limit}s" >&2; exit 4; fi
if [ ! -f "$share/rc" ]; then
  echo "run-guest: the guest ended without a result (qemu status $status); console:" >&2
  tail -20 "$share/console.log" >&2 || true
  exit 5
fi
exit 0
