#!/bin/sh
# The guest's /init with the kernel option vtpmd.init=systemd (run by build-guest.sh's /init after
# the modules are loaded, still as PID 1 in the initramfs, busybox sh). It boots the host's own
# systemd as PID 1 on a writable copy of the host's root: the 9p root (read-only) is the lower
# layer of an overlayfs whose upper layer is a tmpfs, so the guest may install packages, units
# and udev rules and write /var/lib, and nothing reaches the host. The share is /share, the
# checkout is mounted at its own path; systemd starts vtpmd-guest.target (kernel option
# its default target), which runs /share/cmd.sh once and powers off.
fail() { echo "init: $*"; poweroff -f; }
p9='trans=virtio,version=9p2000.L,msize=512000'
mkdir -p /lower /rw /newroot
mount -t 9p -o "$p9,ro,cache=loose" hostroot /lower || fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || fail "cannot mount the overlay root"
r=/newroot
# The host's /tmp and /run are not the guest's; systemd mounts /proc, /sys and /dev itself. The
# host is a container: its marker files would make systemd believe it runs in one (and then it
# ignores the kernel command line and skips udev's device handling).
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs -o mode=0755 tmpfs $r/run
rm -f $r/.dockerenv $r/.containerenv
mkdir -p $r/share
mount -t 9p -o "$p9" share $r/share || fail "cannot mount the share"
if [ -f $r/share/repo-path ]; then
  repo="$(cat $r/share/repo-path)"
  mkdir -p "$r$repo"
  mount -t 9p -o "$p9,ro,cache=loose" checkout "$r$repo" || fail "cannot mount the checkout"
fi

# A machine of its own: a fresh machine id, and none of the host's enabled services beyond what
# sysinit.target and basic.target pull in. Units that cannot work here are masked: no network
# (time sync), no pstore, no binfmt_misc (autofs is not loaded), no modules directory for this
# kernel (the initramfs loaded what is needed).
cat /proc/sys/kernel/random/uuid | tr -d '-' > $r/etc/machine-id
u=$r/etc/systemd/system
for unit in systemd-timesyncd.service systemd-pstore.service proc-sys-fs-binfmt_misc.automount \
  systemd-binfmt.service systemd-modules-load.service; do
  ln -sf /dev/null "$u/$unit"
done
cat > $u/vtpmd-guest.target <<'UNIT'
[Unit]
Description=vtpmd guest: basic system plus the scenario
Requires=basic.target vtpmd-guest.service
After=basic.target
AllowIsolate=yes
UNIT
ln -sf vtpmd-guest.target $u/default.target
cat > $u/vtpmd-guest.service <<'UNIT'
[Unit]
Description=vtpmd guest scenario (/share/cmd.sh)
Wants=systemd-udevd.service systemd-udev-trigger.service
After=basic.target systemd-udevd.service systemd-udev-trigger.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
TimeoutStartSec=infinity
WorkingDirectory=/tmp
Environment=HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
ExecStart=/bin/sh -c '/bin/sh /share/cmd.sh >/share/stdout 2>/share/stderr; echo $$? >/share/rc; sync'
UNIT
echo "init: switching to systemd"
umount /proc /sys 2>/dev/null
umount /dev 2>/dev/null
exec switch_root /newroot /lib/systemd/systemd
