#!/usr/bin/env python3
"""vessel virtio-blk suite: data disks on the default (busybox) guest.

usage: tests/guest/run_blk.py [VESSEL] [-k NAME]... [--list] [--timeout S]
                              [--no-build] [--small] [--log-dir DIR] [-v]

VESSEL is the vessel binary (default: $VESSEL_BIN, else ./vessel); run it once
with ./vessel and once with ./vessel-asan. Every VM boots the default kernel
and busybox initramfs with --cmdline console=ttyS0 (so --disk images are plain
data disks, not a root disk); the guest loads virtio_mmio, virtio_blk (and
ext4 where needed) from /lib/modules itself. Images are made on the host in a
temporary directory (mke2fs, vessel disk create) and checked there with
e2fsprogs (e2fsck, debugfs):

  persist      ext4: the guest writes 20 MiB + a text file, umounts, powers
               off; the host fsck is clean and debugfs reads the same sha256;
               a second boot reads the same sha256 again
  persist_cache_none  the same with --disk IMG,cache=none (O_DIRECT on the host)
  fsck_clean   ext4: the guest writes 100 MiB in 5 files, umounts, powers
               off; e2fsck -fn is clean and every file matches
  crash        ext4: the guest writes and fsyncs numbered records, printing
               "DONE n SHA" after each; vessel is killed with SIGKILL in the
               middle; e2fsck -fy needs at most a journal replay (status 0/1),
               the image is clean after it and every DONE record is intact
  readonly     IMAGE,readonly: /sys/block/vda/ro is 1, reads match the host,
               raw writes and discards fail, the image is unchanged
  multi        3 disks of different sizes are vda, vdb, vdc in --disk order
               with the right sizes; a write to each lands in its own image
  serial       serial=ID shows in /sys/block/vdX/serial (20 characters max;
               none: empty)
  discard      64 MiB of raw writes allocate host blocks; blkdiscard of half the disk
               frees that half only (the other half's data intact), of the
               whole disk frees nearly everything
  write_zeroes fallocate(PUNCH_HOLE / ZERO_RANGE) on /dev/vda (tests/guest/
               blkzero.c in the test initramfs) becomes WRITE_ZEROES: zeroes
               on the host and in the guest, neighbours intact, host blocks
               freed for the unmap variant
  lock         a second vessel on an image in use fails at once (status 2,
               one line naming the first one's pid), read-write or readonly;
               the first keeps running, vessel disk info names it
  lock_shared  two readonly users share an image; a writer is refused
  qcow2        a qcow2 overlay made by qemu-img on a raw base: the guest reads
               the base through it, writes 200 MiB of random data (plus a
               partial cluster), syncs, powers off; qemu-img check is clean,
               qemu-img convert reads the guest's sha256, the base is unchanged
  qcow2_crash  a qcow2 image made by vessel disk create: the guest writes
               numbered 256 KiB records with fsync, vessel is killed with
               SIGKILL mid-way; vessel disk check finds at most leaks,
               --repair fixes them, qemu-img check is clean after it, every
               DONE record is intact
  bad_disk_*   bad --disk inputs: status 2, one line on stderr, the terminal
               untouched, no image created or changed

--small writes less data (qcow2 16 MiB on a 64 MiB disk, persist 4 MiB, fsck_clean 20 MiB, discard 16 MiB,
write_zeroes 4 MiB, crash 10 records) for the slow sanitizer build; the checks
are the same.

One PASS/FAIL line per check; the last line is exactly "blk: N passed, N
failed"; exit status 0 when nothing failed, else 1. Console logs go to
build/test-logs/blk-<binary>/ (override with --log-dir).

Python 3 standard library only (tests/guest/run.py supplies the VM and
reporting helpers); e2fsprogs on the host.
"""
import argparse
import fcntl
import hashlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run as guest  # noqa: E402  (tests/guest/run.py: VM, Suite, helpers)

ROOT = guest.ROOT
CheckFailed = guest.CheckFailed
MiB = 1 << 20
SHA = re.compile(r"\b([0-9a-f]{64})\b")
# The modules a raw data disk needs, and the rest of the list for ext4.
VIRTIO_MODULES = ("virtio_mmio", "virtio_blk")
# A second vessel on a locked image must give up at once, not after a boot.
LOCK_REFUSE_LIMIT = 5.0


def sha256_file(path, offset=0, length=None):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        f.seek(offset)
        left = length
        while left is None or left > 0:
            b = f.read(MiB if left is None else min(MiB, left))
            if not b:
                break
            h.update(b)
            if left is not None:
                left -= len(b)
    return h.hexdigest()


def file_state(path):
    """What "unchanged" compares: existence, size, mtime, content."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if not os.path.isfile(path):
        return ("dir", st.st_mtime_ns, sorted(os.listdir(path)))
    return (st.st_size, st.st_mtime_ns, sha256_file(path))


def allocated(path):
    return os.stat(path).st_blocks * 512


def mib(n):
    return f"{n / MiB:.1f} MiB"


def run_host(argv, timeout=300):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def mkfs_ext4(img, size):
    """A fresh ext4 image. Inode tables and journal are initialized here, so
    the guest's lazy-init thread does not write behind the tests' backs."""
    if os.path.exists(img):
        os.unlink(img)
    r = run_host(["mke2fs", "-q", "-t", "ext4", "-F", "-L", "vessel-blk",
                  "-E", "lazy_itable_init=0,lazy_journal_init=0", img, size])
    if r.returncode != 0:
        raise CheckFailed(f"host: mke2fs {img} failed: {(r.stdout + r.stderr).strip()[-300:]}")


def e2fsck(img, opts):
    r = run_host(["e2fsck", opts, img])
    return r.returncode, (r.stdout + r.stderr).strip()


def debugfs_rdump(img, src, dest):
    """Copy directory src out of an ext4 image into dest/<basename>."""
    os.makedirs(dest, exist_ok=True)
    r = run_host(["debugfs", "-R", f"rdump {src} {dest}", img])
    out = os.path.join(dest, os.path.basename(src))
    if not os.path.isdir(out):
        raise CheckFailed(f"host: debugfs rdump {src} failed: "
                          f"{(r.stdout + r.stderr).strip()[-300:]}")
    return out


def last_lines(text, n=3):
    lines = [ln for ln in text.strip().split("\n") if ln.strip()]
    return " | ".join(lines[-n:])


class BlkSuite(guest.Suite):
    def __init__(self, binary, opts, g, tmp):
        super().__init__(guest.VesselTarget(binary), opts, g)
        self.binary = binary
        self.tmp = tmp
        # --small: less data where the amount does not change what is tested
        # (for the slow sanitizer build).
        small = getattr(opts, "small", False)
        self.blob_mib = 4 if small else 20
        self.fsck_per_file = 1 if small else 5
        self.crash_records = 10 if small else 25
        self.chunk_mib = 1 if small else 4

    # -- VMs with disks
    def argv(self, disks, memory="512M", initrd=None):
        a = [self.binary, "run", "--cpus", "1", "--memory", memory, "--cmdline", "console=ttyS0"]
        if initrd:
            a += ["--initrd", initrd]
        for d in disks:
            a += ["--disk", d]
        return a

    def start(self, group, disks, memory="512M", tag="", initrd=None):
        return guest.VM(self.argv(disks, memory, initrd), self.log_path(group + tag))

    def up(self, vm, ndisks=1, ext4=False):
        """Boot to the shell, load the drivers, wait for vda.. to appear."""
        t = self.check_boot(vm)
        # Kernel messages stay in dmesg (shown at the end of each log) instead
        # of breaking up command output on the console.
        vm.sh("dmesg -n 1")
        want = "" if ext4 else " ".join(VIRTIO_MODULES)
        filt = f'case " {want} " in *" $n "*) ;; *) continue ;; esac; ' if want else ""
        st, out = vm.sh(
            "kv=$(uname -r); while read -r n p; do case \"$n\" in '' | '#'*) continue ;; esac; "
            + filt + "[ -d /sys/module/$n ] || insmod /lib/modules/$kv/$p || echo INSMOD-FAIL $n; "
            "done </lib/modules/initramfs-modules", timeout=self.opts.timeout)
        if st != 0 or any("INSMOD-FAIL" in ln for ln in out):
            raise CheckFailed(f"guest: loading the block modules failed: {' | '.join(out)[-300:]}")
        last = "vd" + chr(ord("a") + ndisks - 1)
        st, out = vm.sh(f"i=0; while [ ! -b /dev/{last} ] && [ $i -lt 200 ]; do usleep 50000; "
                        f"i=$((i+1)); done; ls /sys/block | grep '^vd' | tr '\\n' ' '")
        return t, (out[-1].split() if out else [])

    def poweroff(self, vm):
        """poweroff must end vessel with status 0 (the guest syncs first)."""
        t0 = time.monotonic()
        vm.send("poweroff\n")
        rc = vm.wait_exit(self.opts.timeout)
        if rc is None:
            return False, f"still running {self.opts.timeout:.0f} s after poweroff"
        dt = vm.exit_time - t0
        if rc != 0:
            return False, f"exit status {rc}, want 0 ({guest.first_line(vm.stderr_text())})"
        return True, f"{dt:.2f} s"

    def dmesg_to_log(self, vm):
        """Kernel messages into the console log, for whoever reads a failure."""
        try:
            vm.sh("dmesg | tail -n 40", timeout=20)
        except CheckFailed:
            pass

    def sh_ok(self, vm, cmd, what, timeout=None):
        st, out = vm.sh(cmd, timeout or self.opts.timeout)
        if st != 0:
            raise CheckFailed(f"guest: {what}: status {st}: {' | '.join(out)[-300:]}")
        return out

    def disk_info(self, img):
        r = run_host([self.binary, "disk", "info", img], timeout=30)
        info = {}
        for ln in r.stdout.split("\n"):
            k, sep, v = ln.partition(":")
            if sep:
                info[k.strip()] = v.strip()
        return r.returncode, info, (r.stdout + r.stderr).strip()

    def sums(self, out, prefix):
        """{name: sha} from sha256sum lines for files under prefix."""
        got = {}
        for ln in out:
            m = re.search(r"\b([0-9a-f]{64})\s+" + re.escape(prefix) + r"/(\S+)", ln)
            if m:
                got[m.group(2)] = m.group(1)
        return got

    def refused(self, argv, pid):
        """Start a vessel that must be refused at once: (ok, detail)."""
        t0 = time.monotonic()
        # about the disk, not the host's resources: other VMs of this test may hold every vCPU
        argv = argv + ["--overcommit"]
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=guest.BAD_INPUT_TIMEOUT)
        except subprocess.TimeoutExpired:
            return False, f"still running after {guest.BAD_INPUT_TIMEOUT} s"
        dt = time.monotonic() - t0
        err = p.stderr.decode("utf-8", "replace").rstrip("\n")
        lines = err.split("\n") if err else []
        problems = []
        if p.returncode != 2:
            problems.append(f"exit status {p.returncode}, want 2")
        if len(lines) != 1:
            problems.append(f"{len(lines)} lines on stderr, want 1")
        pids = [pid] if isinstance(pid, int) else list(pid)
        if not any(re.search(rf"\b{q}\b", err) for q in pids):
            problems.append(f"stderr does not name pid {' or '.join(map(str, pids))}")
        if p.stdout:
            problems.append(f"{len(p.stdout)} bytes of console output (it booted?)")
        if dt > LOCK_REFUSE_LIMIT:
            problems.append(f"took {dt:.1f} s, limit {LOCK_REFUSE_LIMIT} s")
        detail = f"status {p.returncode} after {dt:.2f} s: {lines[0] if lines else '(no stderr)'}"
        return not problems, ("; ".join(problems) + " -- " + detail) if problems else detail

    def close(self, vm):
        vm.close()

    # -- 1: data survives power-off and a second boot
    def t_persist(self, group, opts=""):
        """opts: extra --disk options (",cache=none" runs the same checks with O_DIRECT)."""
        checks = ["boot", "write", "poweroff", "host_fsck", "host_read", "boot2", "read_back",
                  "poweroff2", "stderr_clean"]

        def body():
            img = os.path.join(self.tmp, group + ".img")
            mkfs_ext4(img, "256M")
            note = f"vessel persist {random.getrandbits(64):016x}"
            n = self.blob_mib
            vm = self.start(group, [img + opts])
            try:
                t, _ = self.up(vm, ext4=True)
                yield ("boot", True, f"marker after {t:.1f} s")
                self.sh_ok(vm, "mount -t ext4 /dev/vda /mnt && mkdir -p /mnt/data", "mount")
                t0 = time.monotonic()
                out = self.sh_ok(vm, f"dd if=/dev/urandom of=/mnt/data/blob bs=1M count={n} "
                                 f"iflag=fullblock 2>/dev/null && echo '{note}' >/mnt/data/note && "
                                 "sha256sum /mnt/data/blob /mnt/data/note && "
                                 "stat -c 'SIZE %s' /mnt/data/blob && sync && umount /mnt",
                                 f"write {n} MiB")
                dt = time.monotonic() - t0
                sums = self.sums(out, "/mnt/data")
                size = next((ln.split()[1] for ln in out if ln.startswith("SIZE ")), "?")
                ok = set(sums) == {"blob", "note"} and size == str(n * MiB)
                yield ("write", ok, f"{n} MiB written, synced, unmounted in {dt:.1f} s" if ok
                       else f"sha256sum/stat output {out!r}")
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
                err1 = vm.stderr_text()
            finally:
                self.close(vm)
            rc, log = e2fsck(img, "-fn")
            yield ("host_fsck", rc == 0, "e2fsck -fn clean" if rc == 0
                   else f"e2fsck -fn status {rc}: {last_lines(log, 4)}")
            d = debugfs_rdump(img, "/data", os.path.join(self.tmp, group + "-out"))
            host = {n: sha256_file(os.path.join(d, n)) for n in ("blob", "note")
                    if os.path.isfile(os.path.join(d, n))}
            text_ok = False
            if "note" in host:
                with open(os.path.join(d, "note")) as f:
                    text_ok = f.read() == note + "\n"
            ok = host == sums and text_ok
            yield ("host_read", ok, "debugfs reads the guest's sha256 for both files" if ok
                   else f"host {host} guest {sums} note text ok: {text_ok}")
            vm = self.start(group, [img + opts], tag="-2")
            try:
                t, _ = self.up(vm, ext4=True)
                yield ("boot2", True, f"marker after {t:.1f} s")
                out = self.sh_ok(vm, "mount -t ext4 /dev/vda /mnt && sha256sum /mnt/data/blob "
                                 "/mnt/data/note && umount /mnt", "read back")
                again = self.sums(out, "/mnt/data")
                yield ("read_back", again == sums, "same sha256 after a second boot"
                       if again == sums else f"second boot {again}, first {sums}")
                self.dmesg_to_log(vm)
                yield ("poweroff2",) + self.poweroff(vm)
                vm.t_err.join(2)
                yield ("stderr_clean",) + self.stderr_clean(err1 + vm.stderr_text())
            finally:
                self.close(vm)

        self.run_group(group, checks, body)

    def stderr_clean(self, text):
        m = guest.SANITIZER.search(text)
        if m:
            line = next(ln for ln in text.split("\n") if m.group(0) in ln)
            return False, "sanitizer report: " + line.strip()
        return True, ""

    # -- 2: 100 MiB written, clean unmount and power-off: fsck finds nothing
    def t_fsck_clean(self, group):
        checks = ["boot", "write", "poweroff", "fsck", "contents", "stderr_clean"]
        # 5 files x 5 x 4 MiB = 100 MiB (--small: 5 x 1 x 4 MiB = 20 MiB)
        nfiles, chunk_mib, per_file = 5, 4, self.fsck_per_file

        def body():
            img = os.path.join(self.tmp, "fsck.img")
            mkfs_ext4(img, "256M")
            vm = self.start(group, [img])
            try:
                t, _ = self.up(vm, ext4=True)
                yield ("boot", True, f"marker after {t:.1f} s")
                self.sh_ok(vm, "mount -t ext4 /dev/vda /mnt && mkdir /mnt/big", "mount")
                # Fresh random data per file, repeated inside it: 100 MiB
                # without 100 MiB of (slow, emulated) urandom.
                total = nfiles * per_file * chunk_mib
                t0 = time.monotonic()
                out = self.sh_ok(
                    vm, f"for i in $(seq {nfiles}); do "
                    f"dd if=/dev/urandom of=/tmp/chunk bs=1M count={chunk_mib} iflag=fullblock "
                    f"2>/dev/null && for j in $(seq {per_file}); do cat /tmp/chunk; done "
                    ">/mnt/big/f$i || exit 1; done; rm -f /tmp/chunk; sha256sum /mnt/big/*; "
                    "du -sk /mnt/big; sync && umount /mnt", f"write {total} MiB",
                    timeout=max(self.opts.timeout, 300))
                dt = time.monotonic() - t0
                sums = self.sums(out, "/mnt/big")
                du = next((int(ln.split()[0]) for ln in out if ln.endswith("/mnt/big")), 0)
                want_kib = nfiles * per_file * chunk_mib * 1024
                ok = len(sums) == nfiles and du >= want_kib
                yield ("write", ok, f"{du // 1024} MiB in {nfiles} files, synced, unmounted "
                       f"in {dt:.1f} s" if ok else f"du {du} KiB, sums {sums}, output {out!r}")
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
            finally:
                self.close(vm)
            rc, log = e2fsck(img, "-fn")
            yield ("fsck", rc == 0, "fsck.ext4 -fn: clean" if rc == 0
                   else f"e2fsck -fn status {rc}: {last_lines(log, 6)}")
            d = debugfs_rdump(img, "/big", os.path.join(self.tmp, "fsck-out"))
            host = {n: sha256_file(os.path.join(d, n)) for n in sorted(os.listdir(d))}
            sizes = {os.path.getsize(os.path.join(d, n)) for n in host}
            ok = host == sums and sizes == {per_file * chunk_mib * MiB}
            yield ("contents", ok, f"{len(host)} files match the guest's sha256" if ok
                   else f"host {host} sizes {sizes}, guest {sums}")
            yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())

        self.run_group(group, checks, body)

    # -- 3: SIGKILL in the middle of fsync'd writes
    def t_crash(self, group):
        checks = ["boot", "records", "killed", "lock_released", "fsck_replay", "fsck_clean",
                  "records_intact", "stderr_clean"]
        kill_after = self.crash_records  # DONE lines before the kill
        done_re = re.compile(r"^DONE (\d+) ([0-9a-f]{64})", re.M)
        failed_re = re.compile(r"^FAILED \d+", re.M)

        def body():
            img = os.path.join(self.tmp, "crash.img")
            mkfs_ext4(img, "256M")
            vm = self.start(group, [img])
            try:
                t, _ = self.up(vm, ext4=True)
                yield ("boot", True, f"marker after {t:.1f} s")
                self.sh_ok(vm, "mount -t ext4 /dev/vda /mnt && mkdir /mnt/rec && sync", "mount")
                # Each record: 256 KiB written with fsync (dd conv=fsync), then
                # the directory fsync'd; only then DONE. The loop never ends
                # by itself: vessel is killed while it runs.
                vm.send("i=0; while :; do dd if=/dev/urandom of=/mnt/rec/r$i bs=64k count=4 "
                        "iflag=fullblock conv=fsync 2>/dev/null && sync /mnt/rec && "
                        "echo DONE $i $(sha256sum </mnt/rec/r$i) || echo FAILED $i; "
                        "i=$((i+1)); done\n")
                t0 = time.monotonic()
                vm.wait_for(lambda s: len(done_re.findall(s)) >= kill_after or failed_re.search(s),
                            self.opts.timeout, f"{kill_after} DONE records")
                if failed_re.search(vm.text()):
                    raise CheckFailed("guest: a record write failed: " + last_lines(vm.text(), 3))
                dt = time.monotonic() - t0
                yield ("records", True, f"{kill_after} records fsync'd in {dt:.1f} s")
                # Let the next record get under way, then kill.
                time.sleep(random.uniform(0.02, 0.2))
                os.kill(vm.proc.pid, signal.SIGKILL)
                rc = vm.wait_exit(30)
                vm.t_out.join(5)
                yield ("killed", rc == -signal.SIGKILL, f"status {rc}")
                done = {int(n): s for n, s in done_re.findall(vm.text())}
            finally:
                self.close(vm)
            rc, info, txt = self.disk_info(img)
            ok = rc == 0 and info.get("in use") == "no"
            yield ("lock_released", ok, "vessel disk info: not in use" if ok
                   else f"status {rc}: {txt[-200:]}")
            rc, log = e2fsck(img, "-fy")
            replay = "recovering journal" in log
            yield ("fsck_replay", rc in (0, 1), f"e2fsck -fy status {rc}"
                   + (", journal replayed" if replay else "")
                   + ("" if rc in (0, 1) else f": {last_lines(log, 6)}"))
            rc, log = e2fsck(img, "-fn")
            yield ("fsck_clean", rc == 0, "e2fsck -fn clean after it" if rc == 0
                   else f"e2fsck -fn status {rc}: {last_lines(log, 6)}")
            d = debugfs_rdump(img, "/rec", os.path.join(self.tmp, "crash-out"))
            bad = []
            for n, s in sorted(done.items()):
                p = os.path.join(d, f"r{n}")
                if not os.path.isfile(p):
                    bad.append(f"r{n} missing")
                elif os.path.getsize(p) != 256 * 1024 or sha256_file(p) != s:
                    bad.append(f"r{n} differs ({os.path.getsize(p)} bytes)")
            extra = sorted(set(os.listdir(d)) - {f"r{n}" for n in done})
            yield ("records_intact", not bad,
                   f"all {len(done)} DONE records intact (r0..r{max(done)}); "
                   f"also on disk: {', '.join(extra) or 'nothing'}" if not bad
                   else "; ".join(bad[:8]))
            yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())

        self.run_group(group, checks, body)

    # -- qcow2: qemu-img's overlay on a raw base, written by the guest
    def t_qcow2(self, group):
        checks = ["boot", "reads_base", "write", "poweroff", "qemu_img_check", "contents",
                  "base_unchanged", "stderr_clean"]
        n = 16 if self.opts.small else 200
        disk_mib = 64 if self.opts.small else 256  # read whole twice in the guest

        def body():
            base = os.path.join(self.tmp, "qbase.raw")
            ov = os.path.join(self.tmp, "qov.qcow2")
            with open(base, "wb") as f:
                f.write(os.urandom(8 * MiB))
                f.truncate(disk_mib * MiB)
            r = run_host(["qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", ov])
            if r.returncode != 0:
                raise CheckFailed(f"qemu-img create: {r.stderr.strip()}")
            base_sha = sha256_file(base)
            vm = self.start(group, [ov])
            try:
                t, _ = self.up(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                out = self.sh_ok(vm, "sha256sum </dev/vda", "read the base", timeout=600)
                got = SHA.search(" ".join(out))
                ok = got and got.group(1) == base_sha
                yield ("reads_base", ok, "the overlay reads as its base" if ok
                       else f"guest {got and got.group(1)} base {base_sha}")
                # 200 MiB after the base's data, and 12 KiB in the middle of a cluster the
                # base holds (the rest of that cluster is copied from the base).
                t0 = time.monotonic()
                out = self.sh_ok(vm, f"dd if=/dev/urandom of=/dev/vda bs=1M count={n} seek=16 "
                                 "iflag=fullblock conv=fsync 2>/dev/null && dd if=/dev/urandom "
                                 "of=/dev/vda bs=4k count=3 seek=5 conv=fsync 2>/dev/null && "
                                 "sync && echo 3 >/proc/sys/vm/drop_caches && sha256sum </dev/vda",
                                 f"write {n} MiB", timeout=900)
                got = SHA.search(" ".join(out))
                dt = time.monotonic() - t0
                yield ("write", bool(got), f"{n} MiB + 12 KiB written and read back in {dt:.1f} s"
                       if got else f"output {out!r}")
                guest_sha = got.group(1) if got else None
                yield ("poweroff",) + self.poweroff(vm)
                err = vm.stderr_text()
            finally:
                self.close(vm)
            r = run_host(["qemu-img", "check", ov])
            yield ("qemu_img_check", r.returncode == 0, "clean" if r.returncode == 0
                   else f"status {r.returncode}: {last_lines(r.stdout + r.stderr, 4)}")
            flat = os.path.join(self.tmp, "qflat.raw")
            r = run_host(["qemu-img", "convert", "-O", "raw", ov, flat])
            host_sha = sha256_file(flat) if r.returncode == 0 else None
            os.unlink(flat) if os.path.exists(flat) else None
            yield ("contents", host_sha == guest_sha, "qemu-img reads the guest's sha256"
                   if host_sha == guest_sha else f"host {host_sha} guest {guest_sha}")
            yield ("base_unchanged", sha256_file(base) == base_sha, "base untouched")
            yield ("stderr_clean",) + self.stderr_clean(err)

        self.run_group(group, checks, body)

    def t_qcow2_crash(self, group):
        checks = ["boot", "records", "killed", "check_leaks_only", "repair", "qemu_img_check",
                  "records_intact", "stderr_clean"]
        kill_after = self.crash_records
        done_re = re.compile(r"^DONE (\d+) ([0-9a-f]{64})", re.M)
        failed_re = re.compile(r"^FAILED \d+", re.M)
        rec = 256 * 1024

        def body():
            img = os.path.join(self.tmp, "qcrash.qcow2")
            r = run_host([self.binary, "disk", "create", "-f", "qcow2", img, "128M"])
            if r.returncode != 0:
                raise CheckFailed(f"vessel disk create: {r.stderr.strip()}")
            vm = self.start(group, [img])
            try:
                t, _ = self.up(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                # Records at 256 KiB * i, each written with fsync (a FLUSH) before DONE; the
                # loop never ends by itself.
                vm.send("i=0; while :; do dd if=/dev/urandom of=/tmp/r bs=64k count=4 "
                        "iflag=fullblock 2>/dev/null && dd if=/tmp/r of=/dev/vda bs=64k "
                        "seek=$((i*4)) conv=fsync 2>/dev/null && "
                        "echo DONE $i $(sha256sum </tmp/r) || echo FAILED $i; "
                        "i=$((i+1)); done\n")
                t0 = time.monotonic()
                vm.wait_for(lambda s: len(done_re.findall(s)) >= kill_after or failed_re.search(s),
                            self.opts.timeout, f"{kill_after} DONE records")
                if failed_re.search(vm.text()):
                    raise CheckFailed("guest: a record write failed: " + last_lines(vm.text(), 3))
                yield ("records", True, f"{kill_after} records flushed in "
                       f"{time.monotonic() - t0:.1f} s")
                time.sleep(random.uniform(0.02, 0.2))
                os.kill(vm.proc.pid, signal.SIGKILL)
                rc = vm.wait_exit(30)
                vm.t_out.join(5)
                yield ("killed", rc == -signal.SIGKILL, f"status {rc}")
                done = {int(k): v for k, v in done_re.findall(vm.text())}
                err = vm.stderr_text()
            finally:
                self.close(vm)
            r = run_host([self.binary, "disk", "check", img])
            yield ("check_leaks_only", r.returncode in (0, 3),
                   f"status {r.returncode}: {last_lines(r.stdout, 2)}")
            r = run_host([self.binary, "disk", "check", "--repair", img])
            yield ("repair", r.returncode == 0, f"status {r.returncode}: {last_lines(r.stdout, 2)}")
            r = run_host(["qemu-img", "check", img])
            yield ("qemu_img_check", r.returncode == 0, "clean" if r.returncode == 0
                   else f"status {r.returncode}: {last_lines(r.stdout + r.stderr, 4)}")
            flat = os.path.join(self.tmp, "qcrash.raw")
            r = run_host([self.binary, "disk", "convert", "-O", "raw", img, flat])
            bad = [] if r.returncode == 0 else [f"convert: {r.stderr.strip()}"]
            for k, v in sorted(done.items()):
                if not bad and sha256_file(flat, k * rec, rec) != v:
                    bad.append(f"record {k} differs")
            if os.path.exists(flat):
                os.unlink(flat)
            yield ("records_intact", not bad, f"all {len(done)} DONE records intact"
                   if not bad else "; ".join(bad[:8]))
            yield ("stderr_clean",) + self.stderr_clean(err)

        self.run_group(group, checks, body)

    # -- 4: readonly
    def t_readonly(self, group):
        checks = ["boot", "ro_flag", "info", "read", "write_fails", "discard_fails", "poweroff",
                  "image_unchanged", "stderr_clean"]

        def body():
            img = os.path.join(self.tmp, "ro.img")
            with open(img, "wb") as f:
                f.write(os.urandom(4 * MiB))
                f.truncate(32 * MiB)
            head_sha = sha256_file(img, 0, 4 * MiB)
            before = file_state(img)
            vm = self.start(group, [img + ",readonly"])
            try:
                t, _ = self.up(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                st, out = vm.sh("cat /sys/block/vda/ro")
                yield ("ro_flag", out[-1:] == ["1"], f"/sys/block/vda/ro = {out[-1:]}")
                rc, info, txt = self.disk_info(img)
                want = f"read-only by process {vm.proc.pid}"
                ok = rc == 0 and info.get("in use", "").startswith(want)
                yield ("info", ok, f"in use: {info.get('in use')}" if ok
                       else f"want '{want}', got: {txt[-200:]}")
                st, out = vm.sh("dd if=/dev/vda bs=1M count=4 2>/dev/null | sha256sum")
                got = SHA.search(" ".join(out))
                ok = bool(got) and got.group(1) == head_sha
                yield ("read", ok, "first 4 MiB match the host" if ok
                       else f"guest {out!r}, host {head_sha}")
                st, out = vm.sh("dd if=/dev/zero of=/dev/vda bs=4k count=1 conv=fsync; "
                                "dd if=/dev/zero of=/dev/vda bs=4k count=1 seek=16 oflag=direct")
                errs = [ln for ln in out if "error" in ln.lower()]
                # A write to a read-only disk stops in the guest kernel
                # (blkdev_write_iter: EPERM) before it reaches the device.
                ok = st != 0 and len(errs) == 2
                yield ("write_fails", ok, errs[0] if ok else f"status {st}: {out!r}")
                st, out = vm.sh("blkdiscard /dev/vda")
                yield ("discard_fails", st != 0, " ".join(out)[-200:])
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
            finally:
                self.close(vm)
            after = file_state(img)
            yield ("image_unchanged", after == before, "same size, mtime and sha256"
                   if after == before else f"before {before}, after {after}")
            yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())

        self.run_group(group, checks, body)

    # -- 5: several disks
    def t_multi(self, group):
        checks = ["boot", "names", "sizes", "order", "poweroff", "writes", "stderr_clean"]
        # Different sizes, one of them large and sparse, one not a multiple of 1 MiB.
        sizes = [8 * MiB, 100 * MiB + 3 * 512, 2 << 30]

        def body():
            imgs, labels = [], []
            for i, size in enumerate(sizes):
                img = os.path.join(self.tmp, f"multi{i}.img")
                label = f"VESSEL-DISK-{i}-{random.getrandbits(40):010x}"  # 24 characters
                with open(img, "wb") as f:
                    f.write(label.encode())
                    f.truncate(size)
                imgs.append(img)
                labels.append(label)
            vm = self.start(group, imgs)
            names = ["vda", "vdb", "vdc"]
            try:
                t, seen = self.up(vm, ndisks=3)
                yield ("boot", True, f"marker after {t:.1f} s")
                yield ("names", seen == names, f"/sys/block: {' '.join(seen)}")
                st, out = vm.sh("for d in vda vdb vdc; do echo $d $(cat /sys/block/$d/size); done")
                got = dict(ln.split()[:2] for ln in out if len(ln.split()) == 2)
                want = {n: str(s // 512) for n, s in zip(names, sizes)}
                yield ("sizes", got == want, f"sectors {got}" + ("" if got == want
                                                                 else f", want {want}"))
                st, out = vm.sh("for d in vda vdb vdc; do echo $d $(head -c 24 /dev/$d); done")
                got = dict(ln.split()[:2] for ln in out if len(ln.split()) == 2)
                want = dict(zip(names, labels))
                yield ("order", got == want, "each image's label read from its vdX in --disk "
                       "order" if got == want else f"guest read {got}, want {want}")
                # The second 4 KiB of each disk gets its own name.
                self.sh_ok(vm, "for d in vda vdb vdc; do printf 'written-to-%s' $d | "
                           "dd of=/dev/$d bs=4096 seek=1 conv=sync,fsync 2>/dev/null || exit 1; "
                           "done", "write")
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
            finally:
                self.close(vm)
            bad = []
            for n, img, size, label in zip(names, imgs, sizes, labels):
                with open(img, "rb") as f:
                    head = f.read(len(label))
                    f.seek(4096)
                    blk = f.read(4096)
                want = (f"written-to-{n}".encode()).ljust(4096, b"\0")
                if head != label.encode() or blk != want or os.path.getsize(img) != size:
                    bad.append(f"{n}: label {head!r}, block 1 {blk[:16]!r}, "
                               f"size {os.path.getsize(img)}")
            yield ("writes", not bad, "each write landed in its own image, sizes unchanged"
                   if not bad else "; ".join(bad))
            yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())

        self.run_group(group, checks, body)

    # -- 6: serial numbers
    def t_serial(self, group):
        checks = ["boot", "serial", "serial_20", "serial_none", "poweroff", "stderr_clean"]
        s20 = "VSL-" + "".join(random.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789")
                               for _ in range(16))

        def body():
            imgs = []
            for i in range(3):
                img = os.path.join(self.tmp, f"serial{i}.img")
                with open(img, "wb") as f:
                    f.truncate(4 * MiB)
                imgs.append(img)
            vm = self.start(group, [imgs[0] + ",serial=data1", imgs[1] + f",serial={s20}",
                                    imgs[2]])
            try:
                t, _ = self.up(vm, ndisks=3)
                yield ("boot", True, f"marker after {t:.1f} s")
                # The kernel's serial attribute has no trailing newline.
                for check, dev, want in (("serial", "vda", "data1"), ("serial_20", "vdb", s20),
                                         ("serial_none", "vdc", "")):
                    st, out = vm.sh(f"echo \"<$(cat /sys/block/{dev}/serial)>\"")
                    got = out[-1] if out else "(nothing)"
                    yield (check, st == 0 and got == f"<{want}>",
                           f"/sys/block/{dev}/serial = {got}" + (
                               "" if got == f"<{want}>" else f", want <{want}>"))
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
                yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())
            finally:
                self.close(vm)

        self.run_group(group, checks, body)

    # -- 7: discard gives host blocks back
    def t_discard(self, group):
        c = self.chunk_mib  # 16 chunks of c MiB (64 MiB; --small: 16 MiB)
        total, half = 16 * c * MiB, 8 * c * MiB
        checks = ["create", "boot", "write", "allocated", "data", "discard_half",
                  "half_freed", "rest_intact", "discard_all", "all_freed", "poweroff",
                  "stderr_clean"]

        def body():
            img = os.path.join(self.tmp, "discard.img")
            r = run_host([self.binary, "disk", "create", img, "128M"])
            ok = r.returncode == 0 and os.path.getsize(img) == 128 * MiB and allocated(img) < MiB
            yield ("create", ok, f"vessel disk create: 128 MiB, {mib(allocated(img))} allocated"
                   if ok else f"status {r.returncode}: {(r.stdout + r.stderr).strip()[-200:]}")
            vm = self.start(group, [img])
            try:
                t, _ = self.up(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                # 16 chunks: one random chunk repeated 4 times per quarter.
                t0 = time.monotonic()
                out = self.sh_ok(
                    vm, f"for q in 0 1 2 3; do dd if=/dev/urandom of=/tmp/c$q bs=1M count={c} "
                    "iflag=fullblock 2>/dev/null || exit 1; done; sha256sum /tmp/c0 /tmp/c1 "
                    "/tmp/c2 /tmp/c3; for q in 0 1 2 3; do for j in 1 2 3 4; do cat /tmp/c$q; "
                    "done; done >/dev/vda && sync && rm /tmp/c0 /tmp/c1 /tmp/c2 /tmp/c3",
                    f"write {mib(total)}")
                sums = self.sums(out, "/tmp")
                yield ("write", len(sums) == 4,
                       f"{mib(total)} raw in {time.monotonic() - t0:.1f} s")
                a1 = allocated(img)
                rc, info, txt = self.disk_info(img)
                m = re.search(r"\((\d+) bytes\)", info.get("allocated", ""))
                info_ok = bool(m) and int(m.group(1)) == a1
                ok = a1 >= total and info_ok
                yield ("allocated", ok, f"{mib(a1)} allocated; vessel disk info: "
                       f"{info.get('allocated')}" + ("" if info_ok else " (differs from stat)"))
                bad = [f"{(q * 4 + j) * c} MiB" for q in range(4) for j in range(4)
                       if sha256_file(img, (q * 4 + j) * c * MiB, c * MiB) != sums.get(f"c{q}")]
                yield ("data", not bad, "the image holds what the guest wrote" if not bad
                       else f"chunks differ at {', '.join(bad)}")
                st, out = vm.sh(f"blkdiscard -o {half} -l {half} /dev/vda")
                yield ("discard_half", st == 0, f"blkdiscard of the second {mib(half)}" if st == 0
                       else f"status {st}: {' '.join(out)[-200:]}")
                a2 = allocated(img)
                ok = a1 - a2 >= half - half // 16 and a2 >= half
                yield ("half_freed", ok, f"{mib(a1)} -> {mib(a2)}")
                bad = [f"{(q * 4 + j) * c} MiB" for q in range(2) for j in range(4)
                       if sha256_file(img, (q * 4 + j) * c * MiB, c * MiB) != sums.get(f"c{q}")]
                st, out = vm.sh("echo 3 >/proc/sys/vm/drop_caches; "
                                f"dd if=/dev/vda bs=1M count={8 * c} 2>/dev/null | sha256sum")
                g = SHA.search(" ".join(out))
                want = sha256_file(img, 0, half)
                if not g or g.group(1) != want:
                    bad.append(f"guest read of the first {mib(half)} differs")
                yield ("rest_intact", not bad, f"first {mib(half)} intact (host and guest)"
                       if not bad
                       else "; ".join(bad))
                st, out = vm.sh("blkdiscard /dev/vda")
                yield ("discard_all", st == 0, "blkdiscard of the whole disk" if st == 0
                       else f"status {st}: {' '.join(out)[-200:]}")
                a3 = allocated(img)
                ok = a3 <= total // 16 and os.path.getsize(img) == 128 * MiB
                yield ("all_freed", ok, f"{mib(a2)} -> {mib(a3)}, size "
                       f"{os.path.getsize(img) // MiB} MiB")
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
                yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())
            finally:
                self.close(vm)

        self.run_group(group, checks, body)

    # -- write zeroes (beyond the list: no busybox tool issues it)
    def t_write_zeroes(self, group):
        checks = ["boot", "supported", "write", "punch", "punch_host", "punch_freed",
                  "punch_guest", "zero_range", "zero_host", "zero_guest", "poweroff",
                  "stderr_clean"]
        c = self.chunk_mib  # 4 chunks of c MiB
        csize = c * MiB
        zeros4 = hashlib.sha256(bytes(csize)).hexdigest()

        def body():
            img = os.path.join(self.tmp, "zeroes.img")
            with open(img, "wb") as f:
                f.truncate(64 * MiB)
            # The test initramfs: blkzero (tests/guest/blkzero.c) in /usr/local/bin.
            vm = self.start(group, [img], initrd=self.guest["test_initrd"])
            try:
                t, _ = self.up(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                st, out = vm.sh("cat /sys/block/vda/queue/write_zeroes_max_bytes")
                ok = bool(out) and out[-1].isdigit() and int(out[-1]) > 0
                yield ("supported", ok, f"write_zeroes_max_bytes {out[-1:]}")
                # Four chunks of random data.
                out = self.sh_ok(
                    vm, f"for q in 0 1 2 3; do dd if=/dev/urandom of=/tmp/c$q bs=1M count={c} "
                    "iflag=fullblock 2>/dev/null || exit 1; done; sha256sum /tmp/c0 /tmp/c1 "
                    "/tmp/c2 /tmp/c3; cat /tmp/c0 /tmp/c1 /tmp/c2 /tmp/c3 >/dev/vda && sync && "
                    "rm /tmp/c0 /tmp/c1 /tmp/c2 /tmp/c3", f"write {mib(4 * csize)}")
                sums = self.sums(out, "/tmp")
                host = [sha256_file(img, q * csize, csize) for q in range(4)]
                ok = len(sums) == 4 and host == [sums.get(f"c{q}") for q in range(4)]
                yield ("write", ok, "the image holds what the guest wrote" if ok
                       else f"host {host}, guest {sums}")
                a1 = allocated(img)

                def chunks():
                    return [sha256_file(img, q * csize, csize) for q in range(4)]

                def guest_chunks():
                    st, out = vm.sh(f"for q in 0 1 2 3; do dd if=/dev/vda bs=1M skip=$((q*{c})) "
                                    f"count={c} 2>/dev/null | sha256sum; done")
                    return SHA.findall(" ".join(out))

                # Chunks 1 and 2 with the unmap flag.
                st, out = vm.sh(f"blkzero punch /dev/vda {csize} {2 * csize}")
                yield ("punch", st == 0, "fallocate(PUNCH_HOLE) on /dev/vda" if st == 0
                       else f"status {st}: {' '.join(out)[-200:]}")
                want = [sums["c0"], zeros4, zeros4, sums["c3"]]
                got = chunks()
                yield ("punch_host", got == want, f"{mib(2 * csize)} zeroed, neighbours intact"
                       if got == want else f"host chunks {[h[:12] for h in got]}")
                a2 = allocated(img)
                yield ("punch_freed", a1 - a2 >= 2 * csize - csize // 8, f"{mib(a1)} -> {mib(a2)}")
                got = guest_chunks()
                yield ("punch_guest", got == want, "the guest reads the same"
                       if got == want else f"guest chunks {[h[:12] for h in got]}")
                # Chunk 0 without the unmap flag: zeroes all the same.
                st, out = vm.sh(f"blkzero zero /dev/vda 0 {csize}")
                yield ("zero_range", st == 0, "fallocate(ZERO_RANGE) on /dev/vda" if st == 0
                       else f"status {st}: {' '.join(out)[-200:]}")
                want = [zeros4, zeros4, zeros4, sums["c3"]]
                got = chunks()
                yield ("zero_host", got == want, f"{mib(csize)} zeroed, last chunk intact"
                       if got == want else f"host chunks {[h[:12] for h in got]}")
                got = guest_chunks()
                yield ("zero_guest", got == want, "the guest reads the same"
                       if got == want else f"guest chunks {[h[:12] for h in got]}")
                self.dmesg_to_log(vm)
                yield ("poweroff",) + self.poweroff(vm)
                yield ("stderr_clean",) + self.stderr_clean(vm.stderr_text())
            finally:
                self.close(vm)

        self.run_group(group, checks, body)

    # -- 8: image locks
    def t_lock(self, group):
        checks = ["boot", "second_refused", "second_readonly_refused", "info", "first_alive",
                  "poweroff", "released", "stderr_clean"]

        def body():
            img = os.path.join(self.tmp, "lock.img")
            with open(img, "wb") as f:
                f.truncate(16 * MiB)
            a = self.start(group, [img], memory="256M")
            try:
                t, _ = self.up(a)
                yield ("boot", True, f"marker after {t:.1f} s")
                yield ("second_refused",) + self.refused(self.argv([img], "256M"), a.proc.pid)
                yield ("second_readonly_refused",) + self.refused(
                    self.argv([img + ",readonly"], "256M"), a.proc.pid)
                rc, info, txt = self.disk_info(img)
                want = f"read-write by process {a.proc.pid}"
                ok = rc == 0 and info.get("in use", "").startswith(want)
                yield ("info", ok, f"in use: {info.get('in use')}" if ok
                       else f"want '{want}', got: {txt[-200:]}")
                st, out = a.sh("printf still-here | dd of=/dev/vda conv=sync,fsync 2>/dev/null && "
                               "echo 3 >/proc/sys/vm/drop_caches && head -c 10 /dev/vda; echo")
                ok = st == 0 and out[-1:] == ["still-here"]
                yield ("first_alive", ok, "the first VM still writes and reads its disk" if ok
                       else f"status {st}: {out!r}")
                self.dmesg_to_log(a)
                yield ("poweroff",) + self.poweroff(a)
            finally:
                self.close(a)
            rc, info, txt = self.disk_info(img)
            with open(img, "rb") as f:
                head = f.read(10)
            ok = rc == 0 and info.get("in use") == "no" and head == b"still-here"
            yield ("released", ok, "not in use after poweroff; the write is in the image" if ok
                   else f"head {head!r}; {txt[-200:]}")
            yield ("stderr_clean",) + self.stderr_clean(a.stderr_text())

        self.run_group(group, checks, body)

    def t_lock_shared(self, group):
        checks = ["boot_a", "boot_b", "both_read", "writer_refused", "poweroff_a", "poweroff_b",
                  "stderr_clean"]

        def body():
            img = os.path.join(self.tmp, "shared.img")
            label = f"SHARED-{random.getrandbits(32):08x}"
            with open(img, "wb") as f:
                f.write(label.encode())
                f.truncate(16 * MiB)
            a = self.start(group, [img + ",readonly"], memory="256M", tag="-a")
            b = None
            try:
                t, _ = self.up(a)
                yield ("boot_a", True, f"marker after {t:.1f} s")
                b = self.start(group, [img + ",readonly"], memory="256M", tag="-b")
                t, _ = self.up(b)
                yield ("boot_b", True, f"second readonly user booted, marker after {t:.1f} s")
                got = []
                for vm in (a, b):
                    st, out = vm.sh(f"head -c {len(label)} /dev/vda; echo")
                    got.append(out[-1] if out else "")
                yield ("both_read", got == [label, label], f"both read {got}")
                yield ("writer_refused",) + self.refused(self.argv([img], "256M"),
                                                         (a.proc.pid, b.proc.pid))
                yield ("poweroff_a",) + self.poweroff(a)
                yield ("poweroff_b",) + self.poweroff(b)
                yield ("stderr_clean",) + self.stderr_clean(a.stderr_text() + b.stderr_text())
            finally:
                self.close(a)
                if b:
                    self.close(b)

        self.run_group(group, checks, body)

    # -- 9: bad inputs
    def t_bad_disk(self, group, disks, watch, holder=None):
        """vessel run with these --disk values must be rejected (run.py's
        check: status 2, one line, terminal untouched) and leave every path in
        watch as it was (missing ones not created). holder: a path this
        process keeps write-locked meanwhile; stderr must name our pid."""
        before = {p: file_state(p) for p in watch}
        args = ["--memory", "256M", "--cmdline", "console=ttyS0"]
        for d in disks:
            args += ["--disk", d]
        fd = None
        if holder:
            fd = os.open(holder, os.O_RDWR)
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            self.t_bad_input(group, args)
        finally:
            if fd is not None:
                os.close(fd)

        def body():
            changed = [p for p in watch if file_state(p) != before[p]]
            yield ("unchanged", not changed, "nothing created or written" if not changed
                   else "changed: " + ", ".join(os.path.basename(p) for p in changed))
            if holder:
                with open(self.log_path(group), "rb") as f:
                    log = f.read().decode("utf-8", "replace")
                ok = re.search(rf"\b{os.getpid()}\b", log.split("\n", 1)[-1]) is not None
                yield ("names_holder", ok, f"names pid {os.getpid()}" if ok
                       else "the message does not name the holder's pid")

        self.run_group(group, ["unchanged"] + (["names_holder"] if holder else []), body)


def build_tests(suite, tmp):
    T = []

    def add(name, fn, *a, **kw):
        T.append((name, lambda: fn(name, *a, **kw)))

    add("persist", suite.t_persist)
    add("persist_cache_none", suite.t_persist, ",cache=none")
    add("fsck_clean", suite.t_fsck_clean)
    add("crash", suite.t_crash)
    add("readonly", suite.t_readonly)
    add("multi", suite.t_multi)
    add("serial", suite.t_serial)
    add("discard", suite.t_discard)
    add("write_zeroes", suite.t_write_zeroes)
    add("lock", suite.t_lock)
    add("lock_shared", suite.t_lock_shared)
    add("qcow2", suite.t_qcow2)
    add("qcow2_crash", suite.t_qcow2_crash)

    # Bad inputs: files made once, up front.
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad, exist_ok=True)
    good = os.path.join(bad, "good.img")
    with open(good, "wb") as f:
        f.write(b"vessel-bad-input-test\n")
        f.truncate(4 * MiB)
    missing = os.path.join(bad, "missing.img")
    directory = os.path.join(bad, "a-directory")
    os.makedirs(directory, exist_ok=True)
    tiny = os.path.join(bad, "tiny.img")
    with open(tiny, "wb") as f:
        f.write(b"x" * 100)
    empty = os.path.join(bad, "empty.img")
    open(empty, "wb").close()
    many = []
    for i in range(8):
        p = os.path.join(bad, f"many{i}.img")
        with open(p, "wb") as f:
            f.truncate(MiB)
        many.append(p)
    held = os.path.join(bad, "held.img")
    with open(held, "wb") as f:
        f.truncate(4 * MiB)

    add("bad_disk_missing", suite.t_bad_disk, [missing], [missing])
    add("bad_disk_directory", suite.t_bad_disk, [directory], [directory])
    add("bad_disk_tiny", suite.t_bad_disk, [tiny], [tiny])
    add("bad_disk_empty", suite.t_bad_disk, [empty], [empty])
    add("bad_disk_option_typo", suite.t_bad_disk, [good + ",readonyl"], [good])
    add("bad_disk_cache_mode", suite.t_bad_disk, [good + ",cache=direct"], [good])
    add("bad_disk_serial_too_long", suite.t_bad_disk, [good + ",serial=" + "x" * 21], [good])
    add("bad_disk_no_path", suite.t_bad_disk, [",readonly"], [good])
    add("bad_disk_too_many", suite.t_bad_disk, many, many)
    add("bad_disk_twice", suite.t_bad_disk, [good, good], [good])
    # A good disk before the bad one: nothing may be written to it either.
    add("bad_disk_in_use", suite.t_bad_disk, [good, held], [good, held], holder=held)
    return T


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vessel", nargs="?", default=os.environ.get("VESSEL_BIN", "./vessel"),
                    help="vessel binary (default $VESSEL_BIN or ./vessel)")
    ap.add_argument("-k", dest="only", action="append", default=[],
                    help="run only tests whose name contains this (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--timeout", type=float,
                    default=float(os.environ.get("VESSEL_TEST_TIMEOUT", "120")),
                    help="boot / command timeout in seconds (default 120)")
    ap.add_argument("--log-dir", help="where console logs go")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run tests/guest/build.sh first")
    ap.add_argument("--small", action="store_true",
                    help="less data (20 MiB instead of 100 for fsck_clean, 16 instead of "
                    "64 for discard, ...): for the sanitizer build")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vessel-blk-test-")
    try:
        if opts.list:
            for name, _ in build_tests(BlkSuite(None, opts, {}, tmp), tmp):
                print(name)
            return 0
        g = guest.find_guest(opts)
        if not (os.path.isfile(opts.vessel) and os.access(opts.vessel, os.X_OK)):
            print(f"blk: vessel binary {opts.vessel} not found or not executable")
            print("blk: 0 passed, 1 failed")
            return 1
        missing = [t for t in ("mke2fs", "e2fsck", "debugfs") if not shutil.which(t)]
        if missing:
            print(f"blk: {', '.join(missing)} not found (apt-get install e2fsprogs)")
            print("blk: 0 passed, 1 failed")
            return 1
        if not opts.log_dir:
            opts.log_dir = os.path.join(ROOT, "build", "test-logs",
                                        "blk-" + os.path.basename(opts.vessel))
        os.makedirs(opts.log_dir, exist_ok=True)
        suite = BlkSuite(os.path.abspath(opts.vessel), opts, g, tmp)
        tests = build_tests(suite, tmp)
        if opts.only:
            tests = [t for t in tests if any(k in t[0] for k in opts.only)]
            if not tests:
                print(f"blk: no test matches {opts.only}")
                print("blk: 0 passed, 1 failed")
                return 1
        print(f"blk: target vessel ({suite.binary}), {len(tests)} tests, logs in {opts.log_dir}",
              flush=True)
        t0 = time.monotonic()
        for name, fn in tests:
            fn()
        print(f"blk: total {time.monotonic() - t0:.1f} s")
        print(f"blk: {suite.passed} passed, {suite.failed} failed", flush=True)
        return 1 if suite.failed else 0
    finally:
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
