# Runs inside the outer QEMU guest (REPO is set above this line): vtpmd cuse on /dev/vtpm0, then an
# inner QEMU (TCG, nested) with the passthrough TPM backend on that device, booting the same
# kernel with a busybox initramfs that reports what the inner kernel sees. Results in /tmp/share.
KVER_KERNEL="$(ls "$REPO"/.cache/vm/kernel-*/boot/vmlinuz-* | head -1)"
printf '#!/bin/sh\nexec node "%s/dist/main.js" "$@"\n' "$REPO" >/tmp/vtpmd && chmod +x /tmp/vtpmd
/tmp/vtpmd cuse --tpm2 -n vtpm0 --tpmstate dir=/tmp/st --pid file=/tmp/p --log file=/tmp/share/vtpmd.log,level=2 &
i=0; while [ ! -s /tmp/p ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
swtpm_ioctl -i /dev/vtpm0; echo $? >/tmp/share/init.rc
mkdir -p /tmp/inner/bin /tmp/inner/proc /tmp/inner/sys /tmp/inner/dev
cp /bin/busybox /tmp/inner/bin/busybox
cat > /tmp/inner/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys
echo "INNER: tpm0=$(ls -d /sys/class/tpm/tpm0 2>&1)"
echo "INNER: tpm_version_major=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>&1)"
echo "INNER: pcr-sha256-0=$(cat /sys/class/tpm/tpm0/pcr-sha256/0 2>&1)"
reboot -f
INIT
chmod 755 /tmp/inner/init
(cd /tmp/inner && find . | cpio -o -H newc --quiet | gzip -1 > /tmp/inner.gz)
cp "$KVER_KERNEL" /tmp/kernel
t0=$(date +%s)
timeout 400 qemu-system-x86_64 -accel tcg -m 512 -nographic -no-reboot \
  -tpmdev passthrough,id=tpm0,path=/dev/vtpm0,cancel-path=/dev/null -device tpm-tis,tpmdev=tpm0 \
  -kernel /tmp/kernel -initrd /tmp/inner.gz -append 'console=ttyS0 panic=-1 quiet' >/tmp/share/inner.log 2>&1
echo $? >/tmp/share/qemu.rc
echo $(( $(date +%s) - t0 )) >/tmp/share/inner.seconds
grep -a '^INNER: ' /tmp/share/inner.log | tr -d '\r' >/tmp/share/inner.txt
