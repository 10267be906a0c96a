#!/usr/bin/env python3
"""vessel root disk suite: boots the Debian riscv64 root disk built by
guest/build-rootfs.sh and checks it like a user would.

usage: tests/guest/run_disk.py [VESSEL] [--qemu] [-k NAME]... [--list]
                               [--timeout S] [--image IMG] [--skip-missing]

The cached image ($CACHE/guest/debian/debian.img) is copied (sparse) into a
temporary directory first and the tests run on the copy, in order:

  login     `vessel run --disk COPY` boots systemd to a login prompt on the
            console; log in as root (password "vessel"); systemd is PID 1 and
            no unit failed; write and edit a file, write 8 MiB of random data,
            print their sha256, sync; apt and dpkg work on the installed
            packages, apt removes nano and installs it again from the .deb
            on the disk; fio runs; `poweroff` ends vessel with status 0.
  host      the image is clean (e2fsck -fn) and debugfs reads both files back
            from it with the checksums the guest printed.
  persist   boot the same copy again with vessel's defaults (`vessel run
            --disk COPY`: 1 CPU, 512M), log in, the files are still there
            with the same checksums; poweroff.
  powerdown boot the copy and 6 blank data disks (so the keyboard lands in
            virtio-mmio slot 8, the first beyond QEMU virt's 8, on PLIC source
            12) with the console on a pty, wait for the login prompt and for
            the kernel to register vessel's virtio-input keyboard, type
            Ctrl-A p (vessel's power-down request: KEY_POWER and Ctrl-Alt-Del);
            systemd shuts down (the console shows systemd-shutdown and the
            kernel's "reboot: Power down" or "reboot: Restarting system"),
            vessel exits with status 0 and the image is clean (e2fsck -fn, and
            no needs_recovery: the journal was closed, not just lucky).
            vessel only (QEMU's riscv virt has no power-down key: XFAIL).

--qemu runs the same checks on qemu-system-riscv64 (kernel, firmware and
initramfs of the default guest, root=/dev/vda rw, the copy as a virtio-blk
device) to validate the harness. With no image in the cache the suite fails,
or with --skip-missing reports 0 passed, 0 failed and says why.
Output as tests/guest/run.py: one PASS/FAIL line per check, the last line
exactly "disk: N passed, N failed". Exit status 0 when nothing failed.
Console logs go to build/test-logs/disk-<target>/.

Python 3 standard library only; e2fsprogs (debugfs, e2fsck) on the host.
"""
import argparse
import hashlib
import os
import re
import secrets
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
ROOT_PASSWORD = "vessel"
HOSTNAME = "vessel-debian"
# The guest's shell prompt after login (bash, PS1 of Debian's root .bashrc).
PROMPT = re.compile(r"root@" + HOSTNAME + r":[^\n]*# $")
LOGIN = re.compile(HOSTNAME + r" login: $", re.M)
# Files the tests write on the disk.
TEXT_FILE = "/root/vessel-disk-test.txt"
BLOB_FILE = "/root/vessel-disk-test.bin"
BLOB_MIB = 8
# systemd's shutdown (stop units, unmount, sync) before the VM exits.
POWEROFF_TIMEOUT = 120
# The kernel's line when virtio_input registers vessel's keyboard.
INPUT_DEV = re.compile(r"input: vessel power keyboard as (\S+)")
# With the root disk and 6 data disks (slots 0-6) and virtio-rng (7), the keyboard's slot.
INPUT_SLOT_PATH = "/devices/platform/soc/10009000.virtio_mmio/"
# systemd-shutdown's last words, then the kernel's.
SHUTDOWN = re.compile(r"systemd-shutdown\[1\]: (Powering off|Rebooting)\.")
HALTED = re.compile(r"reboot: (Power down|Restarting system)")


class VesselDiskTarget:
    name = "vessel"

    def __init__(self, binary):
        self.binary = binary

    def describe(self):
        return f"vessel ({self.binary})"

    def argv(self, image, cpus=None, memory=None):
        # The user-facing form: no --kernel, vessel boots the default guest's
        # kernel and initramfs with root=/dev/vda. None: vessel's defaults.
        return [self.binary, "run"] + (["--cpus", str(cpus)] if cpus else []) + (
            ["--memory", memory] if memory else []) + ["--disk", image]


class QemuDiskTarget:
    name = "qemu"

    def __init__(self, binary, g):
        self.binary = binary
        self.g = g

    def describe(self):
        return f"qemu ({self.binary})"

    def argv(self, image, cpus=None, memory=None):
        g = self.g
        return [self.binary, "-M", "virt", "-nographic", "-smp", str(cpus or 1),
                "-m", memory or "512M",
                "-bios", g["fw"], "-kernel", g["kernel"], "-initrd", g["initrd"],
                "-append", "console=ttyS0 root=/dev/vda rw",
                "-drive", f"if=none,file={image},format=raw,id=d0",
                "-device", "virtio-blk-device,drive=d0"]


class DiskSuite(guest.Suite):
    def __init__(self, target, opts, g, image):
        super().__init__(target, opts, g)
        self.image = image
        self.token = secrets.token_hex(8)
        self.sums = {}  # guest path -> sha256 the guest printed

    def boot_disk(self, group, defaults=False):
        """defaults: exactly `vessel run --disk IMAGE` (1 CPU, 512M); else 2 CPUs, 1G."""
        if defaults:
            return guest.VM(self.target.argv(self.image), self.log_path(group))
        cpus = min(2, os.cpu_count() or 1)
        return guest.VM(self.target.argv(self.image, cpus=cpus, memory="1G"),
                        self.log_path(group))

    def login(self, vm):
        t_prompt = login(vm, self.opts.timeout)
        self.measure.append(("boot to login prompt", t_prompt))
        return t_prompt

    def poweroff(self, vm):
        t0 = time.monotonic()
        vm.send("poweroff\n")
        rc = vm.wait_exit(POWEROFF_TIMEOUT)
        if rc is None:
            return False, f"still running {POWEROFF_TIMEOUT} s after poweroff"
        dt = vm.exit_time - t0
        self.measure.append(("poweroff to exit", dt))
        if rc != 0:
            return False, f"exit status {rc}, want 0 ({guest.first_line(vm.stderr_text())})"
        return True, f"{dt:.1f} s"

    # -- the tests
    def t_login(self, group):
        checks = ["boot_login", "systemd", "units", "write", "apt", "apt_install", "dpkg", "fio",
                  "poweroff"] + (
            ["stderr_clean"] if self.target.name == "vessel" else [])

        def body():
            vm = self.boot_disk(group)
            try:
                t = self.login(vm)
                yield ("boot_login", True, f"login prompt after {t:.1f} s")

                st, out = vm.sh("cat /proc/1/comm; findmnt -n -o SOURCE,FSTYPE,OPTIONS /")
                ok = st == 0 and out[:1] == ["systemd"] and len(out) > 1 and \
                    re.match(r"/dev/vda\s+ext4\s+rw\b", out[1])
                yield ("systemd", bool(ok), " | ".join(out))

                st, out = vm.sh("systemctl is-system-running --wait; "
                                "systemctl --failed --no-legend --plain", timeout=self.opts.timeout)
                state = out[0].strip() if out else ""
                yield ("units", state == "running", f"state {state!r}" + (
                    "" if state == "running" else ", failed: " + " | ".join(out[1:])[:300]))

                # Write a file, edit it in place, add random data; checksums.
                st, out = vm.sh(
                    f"printf 'vessel disk test %s\\nsecond line\\n' {self.token} > {TEXT_FILE} && "
                    f"sed -i 's/second line/edited line/' {TEXT_FILE} && "
                    f"head -c {BLOB_MIB}M /dev/urandom > {BLOB_FILE} && "
                    f"sync && sha256sum {TEXT_FILE} {BLOB_FILE} && cat {TEXT_FILE}",
                    timeout=self.opts.timeout)
                sums = parse_sums(out)
                want_text = f"vessel disk test {self.token}\nedited line\n"
                ok = (st == 0 and set(sums) == {TEXT_FILE, BLOB_FILE} and
                      sums[TEXT_FILE] == hashlib.sha256(want_text.encode()).hexdigest())
                self.sums = sums if ok else {}
                yield ("write", ok, f"{BLOB_MIB} MiB + edited text file, synced" if ok
                       else f"status {st}: {' | '.join(out)[:300]}")

                st, out = vm.sh("apt-cache policy fio; apt list --installed 2>/dev/null | "
                                "grep -c '\\[installed'; apt-get check >/dev/null && echo APT-CHECK-OK",
                                timeout=self.opts.timeout)
                inst = next((ln.split()[1] for ln in out if ln.strip().startswith("Installed:")),
                            None)
                count = next((int(ln) for ln in out if ln.strip().isdigit()), 0)
                ok = st == 0 and inst not in (None, "(none)") and count > 50 and \
                    "APT-CHECK-OK" in out
                yield ("apt", ok, f"fio {inst} installed, {count} packages, apt-get check ok"
                       if ok else f"status {st}: {' | '.join(out)[:300]}")

                # apt changes the system: remove a package, install it again from the
                # .deb kept on the disk (no network), and it works again.
                st, out = vm.sh(
                    "export DEBIAN_FRONTEND=noninteractive; "
                    "apt-get -y -q remove nano >/dev/null && ! command -v nano && echo REMOVED; "
                    "apt-get -y -q --no-download install /var/cache/apt/archives/nano_*.deb "
                    ">/dev/null && dpkg-query -W -f='${Status} ${Version}\\n' nano && "
                    "nano --version | head -n 1", timeout=self.opts.timeout)
                ok = st == 0 and "REMOVED" in out and any(
                    ln.startswith("install ok installed") for ln in out) and any(
                    "GNU nano" in ln for ln in out)
                yield ("apt_install", ok, " | ".join(out)[:200] if ok
                       else f"status {st}: {' | '.join(out)[-300:]}")

                st, out = vm.sh("dpkg --audit && dpkg -V fio systemd && echo DPKG-OK",
                                timeout=self.opts.timeout)
                yield ("dpkg", st == 0 and out[-1:] == ["DPKG-OK"], " | ".join(out)[:300])

                st, out = vm.sh(
                    "fio --name=disk --filename=/root/fio.dat --size=4M --bs=4k --rw=randrw "
                    "--ioengine=psync --direct=1 --fsync=16 --minimal; rm -f /root/fio.dat",
                    timeout=self.opts.timeout)
                # --minimal: "3;fio-3.x;disk;0;0;..." ; field 5 is the error code.
                terse = next((ln for ln in out if ln.startswith("3;fio-")), "")
                f = terse.split(";")
                ok = st == 0 and len(f) > 5 and f[4] == "0"
                yield ("fio", ok, f[1] if ok else f"status {st}: {' | '.join(out)[:300]}")

                yield ("poweroff",) + self.poweroff(vm)
                if self.target.name == "vessel":
                    yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_host(self, group):
        checks = ["fsck", "debugfs"]

        def body():
            r = subprocess.run(["e2fsck", "-fn", self.image], capture_output=True, text=True)
            yield ("fsck", r.returncode == 0, "clean" if r.returncode == 0 else
                   f"e2fsck status {r.returncode}: {(r.stdout + r.stderr)[-300:]}")
            if not self.sums:
                yield ("debugfs", False, "no checksums from the guest (login/write failed)")
                return
            bad = []
            with tempfile.TemporaryDirectory(prefix="vessel-disk-") as tmp:
                for path, want in sorted(self.sums.items()):
                    out = os.path.join(tmp, "f")
                    r = subprocess.run(["debugfs", "-R", f"dump {path} {out}", self.image],
                                       capture_output=True, text=True)
                    got = sha256_file(out) if os.path.exists(out) else None
                    if got != want:
                        bad.append(f"{path}: {got or 'not found: ' + r.stderr.strip()[-100:]}")
                    if os.path.exists(out):
                        os.unlink(out)
            yield ("debugfs", not bad, "both files match the guest's sha256" if not bad
                   else "; ".join(bad))

        self.run_group(group, checks, body)

    def t_persist(self, group):
        checks = ["boot_login", "read_back", "poweroff"]

        def body():
            vm = self.boot_disk(group, defaults=True)
            try:
                t = self.login(vm)
                yield ("boot_login", True, f"login prompt after {t:.1f} s")
                st, out = vm.sh(f"sha256sum {TEXT_FILE} {BLOB_FILE}", timeout=self.opts.timeout)
                sums = parse_sums(out)
                ok = bool(self.sums) and sums == self.sums
                yield ("read_back", ok, "same sha256 as written" if ok else
                       f"got {sums}, wrote {self.sums or 'nothing'}")
                yield ("poweroff",) + self.poweroff(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_powerdown(self, group):
        checks = ["boot_prompt", "keyboard", "request", "shutdown", "exit", "fsck"]

        def body():
            if self.target.name != "vessel":
                for c in checks:
                    yield (c, False, "QEMU's riscv virt has no power-down key", "vessel only")
                return
            cpus = min(2, os.cpu_count() or 1)
            argv = self.target.argv(self.image, cpus=cpus, memory="1G")
            data = []
            for i in range(6):
                data.append(os.path.join(os.path.dirname(self.image), f"blank{i}.img"))
                with open(data[-1], "wb") as f:
                    f.truncate(1 << 20)
                argv += ["--disk", data[-1]]
            # A pty: the Ctrl-A escapes apply only when the console is a terminal.
            vm = guest.VM(argv, self.log_path(group), use_pty=True)
            try:
                vm.wait_for(lambda t: LOGIN.search(t), self.opts.timeout, "login prompt")
                t = time.monotonic() - vm.start_time
                yield ("boot_prompt", True, f"login prompt after {t:.1f} s")
                # udev loads virtio_input; the VT keyboard handler attaches when it registers.
                try:
                    vm.wait_for(lambda t: INPUT_DEV.search(t), 60, "the input device")
                    where = INPUT_DEV.search(vm.text()).group(1)
                    yield ("keyboard", where.startswith(INPUT_SLOT_PATH), where)
                except guest.CheckFailed as e:
                    yield ("keyboard", False, str(e))
                n = len(vm.text())
                t0 = time.monotonic()
                vm.send("\x01p")
                rc = vm.wait_exit(POWEROFF_TIMEOUT)
                err = vm.stderr_text()
                ok = "power-down request sent" in err
                yield ("request", ok, "vessel: power-down request sent" if ok
                       else "stderr: " + guest.first_line(err))
                out = vm.text()[n:]
                sd, k = SHUTDOWN.search(out), HALTED.search(out)
                yield ("shutdown", bool(sd and k), f"{sd.group(0)} {k.group(0)}" if sd and k else
                       f"no systemd shutdown on the console within {POWEROFF_TIMEOUT} s"
                       if rc is None else "vessel exited without systemd's shutdown")
                if rc is None:
                    yield ("exit", False, f"still running {POWEROFF_TIMEOUT} s after Ctrl-A p")
                else:
                    dt = vm.exit_time - t0
                    self.measure.append(("Ctrl-A p to exit", dt))
                    yield ("exit", rc == 0, f"status {rc} after {dt:.1f} s")
            finally:
                vm.close()
                for d in data:
                    os.unlink(d)
            r = subprocess.run(["e2fsck", "-fn", self.image], capture_output=True, text=True)
            h = subprocess.run(["dumpe2fs", "-h", self.image], capture_output=True, text=True)
            feat = next((ln for ln in h.stdout.split("\n") if ln.startswith("Filesystem features:")),
                        "")
            ok = r.returncode == 0 and feat and "needs_recovery" not in feat
            yield ("fsck", bool(ok), "clean, journal closed" if ok else
                   f"e2fsck status {r.returncode}, {feat.strip() or 'no features line'}: "
                   f"{(r.stdout + r.stderr)[-300:]}")

        self.run_group(group, checks, body)


def login(vm, timeout):
    """Wait for the login prompt on vm's console, log in as root; return the
    seconds from the VM's start to the login prompt. Afterwards the shell has
    no line editing, no pager and no colours (plain output to parse). Also used
    by bench/fio.py."""
    t0 = time.monotonic()
    vm.wait_for(lambda t: LOGIN.search(t), timeout, "login prompt")
    t_prompt = time.monotonic() - vm.start_time
    n = len(vm.text())
    vm.send("root\n")
    vm.wait_for(lambda t: "Password:" in t[n:], 60, "password prompt")
    n = len(vm.text())
    vm.send(ROOT_PASSWORD + "\n")
    left = max(timeout - (time.monotonic() - t0), 60)
    vm.wait_for(lambda t: PROMPT.search(t[n:]) or "Login incorrect" in t[n:], left,
                "shell prompt after login")
    if "Login incorrect" in vm.text()[n:]:
        raise guest.CheckFailed(f"root password {ROOT_PASSWORD!r} not accepted")
    st, _ = vm.sh("set +o emacs +o vi; export TERM=dumb PAGER=cat SYSTEMD_PAGER=cat "
                  "SYSTEMD_COLORS=0 APT_PAGER=cat")
    if st != 0:
        raise guest.CheckFailed("setting up the shell failed")
    return t_prompt


def parse_sums(lines):
    sums = {}
    for ln in lines:
        m = re.match(r"([0-9a-f]{64})\s+(\S+)$", ln.strip())
        if m:
            sums[m.group(2)] = m.group(1)
    return sums


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


TESTS = ["login", "host", "persist", "powerdown"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vessel", nargs="?", default=os.environ.get("VESSEL_BIN", "./vessel"),
                    help="vessel binary (default $VESSEL_BIN or ./vessel)")
    ap.add_argument("--qemu", nargs="?", const="qemu-system-riscv64", metavar="QEMU",
                    help="run the checks on QEMU instead of vessel")
    ap.add_argument("-k", dest="only", action="append", default=[],
                    help="run only tests whose name contains this (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--timeout", type=float,
                    default=float(os.environ.get("VESSEL_DISK_TEST_TIMEOUT", "600")),
                    help="boot / command timeout in seconds (default 600)")
    ap.add_argument("--image", help="root disk to copy (default: the cached one)")
    ap.add_argument("--skip-missing", action="store_true",
                    help="no image: report 0 passed, 0 failed instead of failing")
    ap.add_argument("--log-dir", help="where console logs go")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()

    if opts.list:
        print("\n".join(TESTS))
        return 0
    tests = [t for t in TESTS if not opts.only or any(k in t for k in opts.only)]
    if not tests:
        print(f"disk: no test matches {opts.only}")
        print("disk: 0 passed, 1 failed")
        return 1

    c = guest.cache_dir()
    g = {
        "kernel": os.path.join(c, "guest/default/Image"),
        "fw": os.path.join(c, "guest/default/fw_dynamic.bin"),
        "initrd": os.path.join(c, "guest/default/initramfs.cpio.gz"),
    }
    image = opts.image or os.path.join(c, "guest/debian/debian.img")
    missing = [p for p in [image] + list(g.values()) if not os.path.isfile(p)]
    if missing:
        why = f"missing {missing[0]} (build it with guest/build-rootfs.sh)"
        if opts.skip_missing:
            print(f"disk: skipped: {why}")
            print("disk: 0 passed, 0 failed")
            return 0
        print(f"disk: {why}")
        print("disk: 0 passed, 1 failed")
        return 1
    for tool in ("debugfs", "e2fsck", "dumpe2fs"):
        if not shutil.which(tool):
            print(f"disk: {tool} not found (apt-get install e2fsprogs)")
            print("disk: 0 passed, 1 failed")
            return 1

    if opts.qemu:
        target = QemuDiskTarget(opts.qemu, g)
    else:
        if not (os.path.isfile(opts.vessel) and os.access(opts.vessel, os.X_OK)):
            print(f"disk: vessel binary {opts.vessel} not found or not executable")
            print("disk: 0 passed, 1 failed")
            return 1
        target = VesselDiskTarget(os.path.abspath(opts.vessel))
    if not opts.log_dir:
        opts.log_dir = os.path.join(ROOT, "build", "test-logs", "disk-" + (
            "qemu" if opts.qemu else os.path.basename(opts.vessel)))
    os.makedirs(opts.log_dir, exist_ok=True)

    tmp = tempfile.mkdtemp(prefix="vessel-disk-test-")
    try:
        copy = os.path.join(tmp, "debian.img")
        t0 = time.monotonic()
        # Sparse copy: the cached image stays pristine.
        subprocess.run(["cp", "--sparse=always", image, copy], check=True)
        print(f"disk: target {target.describe()}, {len(tests)} tests, image {image} "
              f"(copied in {time.monotonic() - t0:.1f} s), logs in {opts.log_dir}", flush=True)
        suite = DiskSuite(target, opts, g, copy)
        t0 = time.monotonic()
        for name in tests:
            getattr(suite, "t_" + name)(name)
        by = {}
        for what, sec in suite.measure:
            by.setdefault(what, []).append(sec)
        for what, v in by.items():
            print(f"disk: {what}: min {min(v):.1f} s, max {max(v):.1f} s, n={len(v)}")
        print(f"disk: total {time.monotonic() - t0:.1f} s")
        print(f"disk: {suite.passed} passed, {suite.failed} failed", flush=True)
        return 1 if suite.failed else 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
