# Runs inside the QEMU guest booted with systemd as PID 1 (scripts/vm/run-guest.sh --systemd), as
# the unit vtpmd-guest.service, as root on a writable overlay of the host's root. REPO is set by
# the test above this line. The host service as an operator runs it: scripts/install, then
# systemctl start/stop/kill of vtpmd@vm1 and vtpmd-socket@vm2 with systemd-udevd running.
# Each step writes $S/NAME.out (stdout+stderr) and $S/NAME.rc; systemd.test.ts checks them.
S=/share/steps
mkdir -p "$S"
step() { name=$1; shift; timeout 300 "$@" >"$S/$name.out" 2>&1; echo $? >"$S/$name.rc"; }
# waitfor CONDITION SECONDS: by the clock, as each try may itself take a while in a TCG guest.
waitfor() { end=$(($(date +%s) + $2)); while [ "$(date +%s)" -lt $end ]; do eval "$1" && return 0; sleep 0.2; done; return 1; }
now() { date +%s.%N >"$S/$1"; }
P='-p ActiveState -p SubState -p Result -p MainPID -p NRestarts -p StatusText -p ExecMainCode -p ExecMainStatus'
T=device:/dev/vtpm/vm1
NV=0x01500020
EK=0x81010001
EKCERT=0x01C00002
head -c 32 /dev/urandom >/tmp/nv-data1
head -c 32 /dev/urandom >/tmp/nv-data2

now t0
step pid1 cat /proc/1/comm
step failedAtBoot systemctl --failed --no-legend --plain
# Traced with times: a TCG guest on a busy host is slow, and this shows where.
step install env PS4='+ $(date +%s.%N) ' bash -x "$REPO/scripts/install"
now t1

# First start: vtpmd setup provisions the state (ExecStartPre), then the CUSE device serves.
step stateBefore ls -A /var/lib/vtpmd/vm1
step start1 systemctl start vtpmd@vm1
now t2
step show1 systemctl show vtpmd@vm1 $P
# What a VM started right after `systemctl start` returns would find.
step devAtStart stat -c '%U:%G %a %F' /dev/vtpm-vm1
step linkAtStart readlink /dev/vtpm/vm1
step dev stat -c '%U:%G %a %F' /dev/vtpm-vm1
step link readlink /dev/vtpm/vm1
step kvmGid getent group kvm
step stateDir stat -c '%a %U' /var/lib/vtpmd/vm1
step stateFiles ls /var/lib/vtpmd/vm1
step startup1 tpm2_startup -c -T $T
step random1 tpm2_getrandom -T $T --hex 16
step extend1 tpm2_pcrextend -T $T 15:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f 16:sha256=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
step pcr1 tpm2_pcrread -T $T sha256:15,16
step ekPub1 tpm2_readpublic -T $T -c $EK -f pem -o /tmp/ek1.pem
step ekCert1 tpm2_nvread -T $T $EKCERT -C o -o /tmp/ekcert1.der
step ekCertSubject openssl x509 -inform DER -in /tmp/ekcert1.der -noout -issuer
openssl x509 -inform DER -in /tmp/ekcert1.der -noout -pubkey >/tmp/ekcert1-key.pem 2>/dev/null
step ekCertKeyIsEk cmp /tmp/ekcert1-key.pem /tmp/ek1.pem
step nvDefine tpm2_nvdefine -T $T $NV -C o -s 32 -a 'ownerread|ownerwrite'
step nvWrite1 tpm2_nvwrite -T $T $NV -C o -i /tmp/nv-data1

# A clean stop: the daemon saves the state (TPM2_Shutdown(STATE) on its own) and removes the device.
step stop1 systemctl stop vtpmd@vm1
step show2 systemctl show vtpmd@vm1 $P
step devGone ls /dev/vtpm-vm1
step linkGone ls /dev/vtpm/vm1
step stateFilesStopped ls /var/lib/vtpmd/vm1

# Second start: setup leaves the state alone; a resume (Startup(STATE)) finds PCR 15 as it was.
step start2 systemctl start vtpmd@vm1
step show3 systemctl show vtpmd@vm1 $P
step startup2 tpm2_startup -T $T
[ "$(cat "$S/startup2.rc")" = 0 ] || step startup2Clear tpm2_startup -c -T $T
step pcr2 tpm2_pcrread -T $T sha256:15,16
step ekPub2 tpm2_readpublic -T $T -c $EK -f pem -o /tmp/ek2.pem
step ekSame2 cmp /tmp/ek1.pem /tmp/ek2.pem
step ekCert2 tpm2_nvread -T $T $EKCERT -C o -o /tmp/ekcert2.der
step ekCertSame2 cmp /tmp/ekcert1.der /tmp/ekcert2.der
step nvRead2 tpm2_nvread -T $T $NV -C o -s 32 -o /tmp/nv-read2
step nvSame2 cmp /tmp/nv-data1 /tmp/nv-read2
step nvWrite2 tpm2_nvwrite -T $T $NV -C o -i /tmp/nv-data2

# A crash: SIGKILL to the daemon. Restart=on-failure brings it back with what it had persisted.
systemctl show -p MainPID --value vtpmd@vm1 >"$S/pidBeforeKill"
step kill systemctl kill -s KILL vtpmd@vm1
old=$(cat "$S/pidBeforeKill")
waitfor '[ "$(systemctl show -p NRestarts --value vtpmd@vm1)" = 1 ] && [ "$(systemctl show -p ActiveState --value vtpmd@vm1)" = active ]' 120
echo $? >"$S/restarted.rc"
step show4 systemctl show vtpmd@vm1 $P
step devAfterCrash stat -c '%U:%G %a %F' /dev/vtpm-vm1
step startupStateAfterCrash tpm2_startup -T $T
step startup3 tpm2_startup -c -T $T
step random3 tpm2_getrandom -T $T --hex 16
step ekPub3 tpm2_readpublic -T $T -c $EK -f pem -o /tmp/ek3.pem
step ekSame3 cmp /tmp/ek1.pem /tmp/ek3.pem
step nvRead3 tpm2_nvread -T $T $NV -C o -s 32 -o /tmp/nv-read3
step nvSame3 cmp /tmp/nv-data2 /tmp/nv-read3
step security systemd-analyze security --no-pager vtpmd@vm1
step stop3 systemctl stop vtpmd@vm1
step show5 systemctl show vtpmd@vm1 $P
now t3

# Socket mode, as QEMU's emulator backend uses it: the control channel initialises the TPM.
SOCK=/run/vtpmd/vm2/tpm.sock
step sockStart systemctl start vtpmd-socket@vm2
step sockShow1 systemctl show vtpmd-socket@vm2 $P
step sockPerm stat -c '%n %U:%G %a %F' /run/vtpmd/vm2 $SOCK $SOCK.ctrl
step sockInit swtpm_ioctl --unix $SOCK.ctrl -i
step sockStartup tpm2_startup -c -T swtpm:path=$SOCK
step sockRandom tpm2_getrandom -T swtpm:path=$SOCK --hex 16
step sockEkCert tpm2_nvread -T swtpm:path=$SOCK $EKCERT -C o -o /tmp/sock-ekcert.der
step sockEkCertSubject openssl x509 -inform DER -in /tmp/sock-ekcert.der -noout -issuer
step sockSecurity systemd-analyze security --no-pager vtpmd-socket@vm2
step sockStop systemctl stop vtpmd-socket@vm2
step sockShow2 systemctl show vtpmd-socket@vm2 $P
step sockGone ls $SOCK
now t4

step journal journalctl -b --no-pager -o short-monotonic -u 'vtpmd*'
step failedAtEnd systemctl --failed --no-legend --plain
