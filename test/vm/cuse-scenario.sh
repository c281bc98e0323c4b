# Runs inside the QEMU guest (scripts/vm/run-guest.sh), as root in a chroot of the host's root.
# REPO is set by the test above this line. Each step writes $S/NAME.out (stdout+stderr) and
# $S/NAME.rc; the vitest file (cuse.test.ts) checks them. No step may hang: each has a timeout.
S=/tmp/share/steps
mkdir -p "$S"
DEV=/dev/vtpm0
T="-T device:$DEV"
step() { name=$1; shift; timeout 60 "$@" >"$S/$name.out" 2>&1; echo $? >"$S/$name.rc"; }
waitfor() { i=0; while [ $i -lt 300 ]; do eval "$1" && return 0; sleep 0.1; i=$((i+1)); done; return 1; }
# The daemons as the installed launcher runs them (scripts/install), with its V8 flags.
printf '#!/bin/sh\nexec node %s "%s/dist/main.js" "$@"\n' "$(cat "$REPO/scripts/daemon-node-flags")" "$REPO" >/tmp/vtpmd && chmod +x /tmp/vtpmd

date +%s.%N >"$S/t0"
step noTpm2 /tmp/vtpmd cuse -n vtpm0 --tpmstate dir=/tmp/st
/tmp/vtpmd cuse --tpm2 -n vtpm0 --tpmstate dir=/tmp/st --pid file=/tmp/vtpmd.pid --log file=/tmp/share/vtpmd.log,level=3 &
PID=$!
waitfor '[ -s /tmp/vtpmd.pid ]'; echo $? >"$S/started.rc"
date +%s.%N >"$S/t1"
step node ls -l $DEV
step pidfile cat /tmp/vtpmd.pid
echo $PID >"$S/pid.out"
step nameTaken /tmp/vtpmd cuse --tpm2 -n vtpm0 --tpmstate dir=/tmp/st-other
step noAccess setpriv --reuid=65534 --regid=65534 --clear-groups node "$REPO/dist/main.js" cuse --tpm2 -n vtpm9 --tpmstate dir=/tmp/st-nobody

step caps swtpm_ioctl -c $DEV
step randomBeforeInit tpm2_getrandom $T 8
step init swtpm_ioctl -i $DEV
step startup tpm2_startup -c $T
step random tpm2_getrandom $T --hex 16
step extend tpm2_pcrextend $T 16:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
step pcrread tpm2_pcrread $T sha256:16
# No resource manager on a device: each tool leaves its transient objects loaded (three slots, as
# a PC Client TPM), so they are flushed between the tools.
step createprimary tpm2_createprimary $T -C o -c /tmp/primary.ctx
step flush1 tpm2_flushcontext $T -t
step primaryPublic tpm2_readpublic $T -c /tmp/primary.ctx
step flush2 tpm2_flushcontext $T -t
step createprimaryAgain tpm2_createprimary $T -C o -c /tmp/primary2.ctx
step flush3 tpm2_flushcontext $T -t
step primaryPublicAgain tpm2_readpublic $T -c /tmp/primary2.ctx
step flush4 tpm2_flushcontext $T -t
step estBefore swtpm_ioctl -e $DEV
step loc2 swtpm_ioctl -l 2 $DEV
step pcrReset20Loc2 tpm2_pcrreset $T 20
step loc1 swtpm_ioctl -l 1 $DEV
step pcrReset20Loc1 tpm2_pcrreset $T 20
step loc0 swtpm_ioctl -l 0 $DEV
step hash swtpm_ioctl -h 1234 $DEV
step estAfterHash swtpm_ioctl -e $DEV
step resetEst swtpm_ioctl -r 3 $DEV
step estAfterReset swtpm_ioctl -e $DEV
step info swtpm_ioctl --info 1 $DEV
step bufsize swtpm_ioctl -b 0 $DEV
step partial node "$REPO/test/vm/guest/partial-read.mjs" $DEV
# One write(2) of 5000 bytes: 4096 taken. (node's fs.writeSync and dd both retry a short write.)
step bigWrite perl -e 'open(my $f, "+<", $ARGV[0]) or die "$!"; my $b = pack("H*", "80010000000c0000017b0010") . ("\0" x 4988); print syswrite($f, $b), "\n";' $DEV
step saveVolatileFile swtpm_ioctl -v $DEV
step volatileExists ls /tmp/st/tpm2-00.volatilestate
step savePermanent swtpm_ioctl --save permanent /tmp/share/permanent.bin $DEV
step pcrBeforeLoad tpm2_pcrread $T sha256:16
step stop swtpm_ioctl --stop $DEV
step randomStopped tpm2_getrandom $T 8
step loadPermanent swtpm_ioctl --load permanent /tmp/share/permanent.bin $DEV
step initAfterLoad swtpm_ioctl -i $DEV
step startupAfterLoad tpm2_startup -c $T
step randomAfterLoad tpm2_getrandom $T --hex 8

# Throughput: the same workload through the device and through vtpmd's socket mode, over TCP
# (tpm2-tools' swtpm TCTI) and over a unix socket (as QEMU's emulator backend's data channel).
/tmp/vtpmd socket --tpm2 --server type=tcp,port=2321 --ctrl type=tcp,port=2322 --flags not-need-init,startup-clear --tpmstate dir=/tmp/st-sock &
SPID=$!
waitfor 'swtpm_ioctl --tcp 127.0.0.1:2322 -c >/dev/null 2>&1'
step throughput python3 "$REPO/test/vm/guest/throughput.py" $DEV 2321 15 20 $PID $SPID
/tmp/vtpmd socket --tpm2 --server type=unixio,path=/tmp/data.sock --ctrl type=unixio,path=/tmp/ctrl.sock --flags not-need-init,startup-clear --tpmstate dir=/tmp/st-unix &
UPID=$!
waitfor 'swtpm_ioctl --unix /tmp/ctrl.sock -c >/dev/null 2>&1'
step throughputUnix python3 "$REPO/test/vm/guest/throughput.py" $DEV /tmp/data.sock 15 20 $PID $UPID
kill -TERM $UPID; wait $UPID

step shutdown swtpm_ioctl -s $DEV
waitfor '! kill -0 $PID 2>/dev/null'; echo $? >"$S/exited.rc"
wait $PID; echo $? >"$S/exitcode.out"
step nodeGone ls $DEV
step pidfileGone ls /tmp/vtpmd.pid

# Second daemon: the thread-pool reader (the fallback when Node cannot poll the channel), fixed
# device numbers, --flags startup-clear; SIGTERM must remove the node and end the process with 0.
VTPMD_CUSE_READER=threadpool /tmp/vtpmd cuse --tpm2 -n vtpm0 -M 240 -m 7 --tpmstate dir=/tmp/st --flags startup-clear --pid file=/tmp/vtpmd2.pid --log file=/tmp/share/vtpmd2.log,level=3 &
PID2=$!
waitfor '[ -s /tmp/vtpmd2.pid ]'; echo $? >"$S/started2.rc"
step node2 ls -l $DEV
step randomStartupClear tpm2_getrandom $T 8
step throughputThreadpool python3 "$REPO/test/vm/guest/throughput.py" $DEV 2321 5 20
kill -TERM $SPID; wait $SPID
kill -TERM $PID2
waitfor '! kill -0 $PID2 2>/dev/null'; echo $? >"$S/exited2.rc"
wait $PID2; echo $? >"$S/exitcode2.out"
step nodeGone2 ls $DEV

# The udev rule on a device named the way the vtpmd@vm1 unit names it: `udevadm test` runs the
# host's rules plus ours (on a tmpfs over the read-only rules directory) for the real device.
/tmp/vtpmd cuse --tpm2 -n vtpm-vm1 --tpmstate dir=/tmp/st-udev --flags not-need-init --pid file=/tmp/vtpmd3.pid &
PID3=$!
waitfor '[ -s /tmp/vtpmd3.pid ]'; echo $? >"$S/started3.rc"
mount -t tmpfs tmpfs /etc/udev/rules.d && cp "$REPO/udev/70-vtpmd.rules" /etc/udev/rules.d/
step udevTest udevadm test --action=add /sys/class/cuse/vtpm-vm1
step kvmGid getent group kvm
step udevLink ls -lL /dev/vtpm/vm1
kill -TERM $PID3
waitfor '! kill -0 $PID3 2>/dev/null'; echo $? >"$S/exited3.rc"
umount /etc/udev/rules.d

# --runas and --daemon: vtpmd cuse opens /dev/cuse as root, becomes nobody once the device exists,
# and --daemon returns only then; the state directory belongs to nobody.
mkdir -p /tmp/st-runas && chown 65534:65534 /tmp/st-runas
step runasStart /tmp/vtpmd cuse --tpm2 -n vtpm-runas --tpmstate dir=/tmp/st-runas --flags not-need-init,startup-clear --runas nobody --daemon --pid file=/tmp/vtpmd4.pid
step runasDevice ls -l /dev/vtpm-runas
step runasUid sh -c 'stat -c %u /proc/$(cat /tmp/vtpmd4.pid)'
step runasRandom tpm2_getrandom -T device:/dev/vtpm-runas --hex 8
step runasNvDefine tpm2_nvdefine -T device:/dev/vtpm-runas 0x1500001 -C o -s 8 -a 'ownerread|ownerwrite'
step runasFiles sh -c 'cd /tmp/st-runas && stat -c "%u %n" .lock tpm2-00.permall tpm2-00.permall.journal'
kill -TERM "$(cat /tmp/vtpmd4.pid)"
waitfor '[ ! -e /dev/vtpm-runas ]'; echo $? >"$S/runasGone.rc"

# --chroot: the daemon's root becomes /tmp/chr, whose /dev is the guest's (a bind mount), so
# /dev/cuse, the state directory and the pid file are all named inside it; clients outside use
# the device as usual.
mkdir -p /tmp/chr/dev /tmp/chr/state && mount --bind /dev /tmp/chr/dev
step chrootStart /tmp/vtpmd cuse --tpm2 -n vtpm-chr --chroot /tmp/chr --tpmstate dir=/state --flags not-need-init,startup-clear --daemon --pid file=/pid
step chrootRoot sh -c 'readlink /proc/$(cat /tmp/chr/pid)/root'
step chrootRandom tpm2_getrandom -T device:/dev/vtpm-chr --hex 8
step chrootFiles ls /tmp/chr/state
kill -TERM "$(cat /tmp/chr/pid)"
waitfor '[ ! -e /dev/vtpm-chr ]'; echo $? >"$S/chrootGone.rc"
umount /tmp/chr/dev
date +%s.%N >"$S/t2"
