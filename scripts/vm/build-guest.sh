#!/usr/bin/env bash
# Prepares a QEMU guest that can serve CUSE (docs: shared vm-testing.md): Debian's kernel package
# unpacked (not installed) and an initramfs of busybox-static + the modules + an /init that mounts
# the host's root over 9p and runs $SHARE/cmd.sh in a chroot, or (kernel option vtpmd.init=systemd)
# boots the host's systemd as PID 1 on an overlay of that root (see guest-systemd.sh). Idempotent;
# prints two lines, KERNEL=<path> and INITRD=<path>. Cache: $VTPMD_VM_CACHE or <repo>/.cache/vm.
set -euo pipefail
self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
repo="$(cd "$(dirname "$self")/../.." && pwd)"
cache="${VTPMD_VM_CACHE:-$repo/.cache/vm}"
mkdir -p "$cache"
cd "$cache"
# Guests start side by side (npm run test:vm runs the CUSE and the systemd guest at once): one
# builds the cache while the other waits, instead of both unpacking the same kernel.
exec 9>"$cache/.build.lock"
flock 9

pkg="$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image/{print $2; exit}')"
if [ -z "$pkg" ]; then
  apt-get update -qq >&2
  pkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image/{print $2; exit}')"
fi
[ -n "$pkg" ] || { echo "build-guest: cannot find Debian's kernel package (apt-cache depends linux-image-amd64)" >&2; exit 2; }
kver="${pkg#linux-image-}"

if [ ! -f "kernel-$kver/boot/vmlinuz-$kver" ]; then
  deb="$(ls "$pkg"_*.deb 2>/dev/null | head -1 || true)"
  if [ -z "$deb" ]; then
    apt-get download "$pkg" >&2 || { apt-get update -qq >&2 && apt-get download "$pkg" >&2; }
    deb="$(ls "$pkg"_*.deb | head -1)"
  fi
  rm -rf "kernel-$kver.tmp"
  dpkg -x "$deb" "kernel-$kver.tmp"
  mv "kernel-$kver.tmp" "kernel-$kver"
fi
kernel="$cache/kernel-$kver/boot/vmlinuz-$kver"

busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked' && ! ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
  echo "build-guest: $busybox is not static; install busybox-static" >&2
  exit 2
fi

modules=(virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci 9pnet 9pnet_virtio netfs fscache 9p fuse cuse overlay)
initrd="$cache/initrd-$kver.gz"
stamp="$(cat "$self" "$(dirname "$self")/guest-systemd.sh" | sha256sum | cut -c1-16)"
if [ -f "$initrd" ] && [ "$(cat "$initrd.stamp" 2>/dev/null)" = "$stamp" ]; then
  echo "KERNEL=$kernel"
  echo "INITRD=$initrd"
  exit 0
fi

root="$cache/initramfs.tmp"
rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,mnt,modules}
cp "$busybox" "$root/bin/busybox"
cp "$(dirname "$self")/guest-systemd.sh" "$root/guest-systemd.sh"
ln -s busybox "$root/bin/sh"
for m in "${modules[@]}"; do
  ko="$(find "kernel-$kver/lib/modules/$kver" -name "$m.ko" | head -1)"
  [ -n "$ko" ] || { echo "build-guest: module $m.ko not found in $pkg" >&2; exit 2; }
  cp "$ko" "$root/modules/"
done

cat > "$root/init" <<INIT
#!/bin/sh
# Guest /init: modules, host root over 9p (read-only, cache=loose), the share, chroot, cmd.sh.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in ${modules[*]}; do insmod /modules/\$m.ko || echo "init: insmod \$m failed"; done
case " \$(cat /proc/cmdline) " in *" vtpmd.init=systemd "*) exec /bin/sh /guest-systemd.sh ;; esac
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose hostroot /mnt || { echo "init: cannot mount the host root"; poweroff -f; }
mount -t proc proc /mnt/proc
mount -t sysfs sys /mnt/sys
mount -t devtmpfs dev /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs tmpfs /mnt/dev/shm
mount -t tmpfs tmpfs /mnt/tmp
mount -t tmpfs tmpfs /mnt/run
mkdir -p /mnt/tmp/share
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 share /mnt/tmp/share || { echo "init: cannot mount the share"; poweroff -f; }
# The checkout, at its own path: it may live under /tmp or /run, which are tmpfs in here.
if [ -f /mnt/tmp/share/repo-path ]; then
  repo="\$(cat /mnt/tmp/share/repo-path)"
  mkdir -p "/mnt\$repo" 2>/dev/null
  mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose checkout "/mnt\$repo" || { echo "init: cannot mount the checkout"; poweroff -f; }
fi
ifconfig lo 127.0.0.1 up
echo "init: running cmd.sh"
chroot /mnt /bin/sh -c 'cd /tmp && HOME=/tmp PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin /bin/sh /tmp/share/cmd.sh >/tmp/share/stdout 2>/tmp/share/stderr; echo \$? >/tmp/share/rc'
sync
echo "init: done"
poweroff -f
INIT
chmod 755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1 > "$initrd.tmp")
mv "$initrd.tmp" "$initrd"
echo "$stamp" > "$initrd.stamp"
rm -rf "$root"
echo "KERNEL=$kernel"
echo "INITRD=$initrd"
