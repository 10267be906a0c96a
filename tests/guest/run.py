#!/usr/bin/env python3
"""vessel guest integration suite: boots the default Debian riscv64 guest and
checks what the guest itself reports.

usage: tests/guest/run.py [VESSEL] [--qemu] [-k NAME]... [--list] [--timeout S]
                          [--engine interp|jit]

VESSEL is the vessel binary (default: $VESSEL_BIN, else ./vessel); run it once
with ./vessel and once with ./vessel-asan. --qemu runs the same checks on
qemu-system-riscv64 instead, to validate the harness itself; checks QEMU is
known not to meet are reported as XFAIL and not counted.

The console is driven through vessel's stdin/stdout as plain pipes (a pty for
the terminal check). Every test is a group of named checks; each check prints
one PASS/FAIL line and the last line is exactly "guest: N passed, N failed".
Exit status 0 when nothing failed, else 1. Console logs of every test go to
build/test-logs/guest-<target>/ (override with --log-dir).

Python 3 standard library only.
"""
import argparse
import hashlib
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

MARKER = "VESSEL-INIT-OK"
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
KMSG = re.compile(r"^\[\s*\d+\.\d+\] ")
SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:")

# Largest allowed time from sending "poweroff" to vessel's exit. The guest must
# act within 1 s; the margin covers the harness's own pipe and wait latency.
POWEROFF_LIMIT = 1.0
POWEROFF_MARGIN = 0.25
# A bad input must be rejected before anything runs.
BAD_INPUT_TIMEOUT = 15


def cache_dir():
    """Same rule as vessel and guest/lib.sh."""
    if os.environ.get("VESSEL_CACHE"):
        return os.environ["VESSEL_CACHE"]
    if os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "vessel")
    return os.path.join(os.path.expanduser("~"), ".cache", "vessel")


def parse_size(s):
    """'128M' -> bytes (binary units, like vessel's --memory)."""
    m = re.fullmatch(r"(\d+)([KMGT]?)", s)
    if not m:
        raise ValueError(s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30, "T": 40}[m.group(2)]


def host_mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class CheckFailed(Exception):
    pass


# ----------------------------------------------------------------------------
# Targets: how to start a VM with a given configuration.


class VesselTarget:
    name = "vessel"

    def __init__(self, binary, engine=None):
        self.binary = binary
        self.engine = engine

    def describe(self):
        return f"vessel ({self.binary}{', --engine ' + self.engine if self.engine else ''})"

    def argv(self, cpus=1, memory="512M", initrd=None, no_reboot=False, overcommit=False):
        a = [self.binary, "run", "--cpus", str(cpus), "--memory", memory]
        if self.engine:
            a += ["--engine", self.engine]
        if overcommit:
            a.append("--overcommit")
        if initrd:
            a += ["--initrd", initrd]
        if no_reboot:
            a.append("--no-reboot")
        return a

    def bad_argv(self, args):
        return [self.binary, "run"] + args


class QemuTarget:
    name = "qemu"

    def __init__(self, binary, guest):
        self.binary = binary
        self.guest = guest

    def describe(self):
        return f"qemu ({self.binary})"

    def argv(self, cpus=1, memory="512M", initrd=None, no_reboot=False, overcommit=False):
        g = self.guest
        a = [self.binary, "-M", "virt", "-nographic", "-smp", str(cpus), "-m", memory,
             "-bios", g["fw"], "-kernel", g["kernel"], "-initrd", initrd or g["initrd"],
             "-append", "console=ttyS0"]
        if no_reboot:
            a.append("-no-reboot")
        return a

    def bad_argv(self, args):
        """Translate vessel options into QEMU's for the bad-input checks."""
        g = self.guest
        out = {"-M": "virt", "-nographic": None, "-bios": g["fw"], "-kernel": g["kernel"],
               "-append": "console=ttyS0"}
        extra = []
        it = iter(args)
        for a in it:
            if a == "--kernel":
                out["-kernel"] = next(it)
            elif a == "--firmware":
                out["-bios"] = next(it)
            elif a == "--initrd":
                out["-initrd"] = next(it)
            elif a == "--memory":
                out["-m"] = next(it)
            elif a == "--cpus":
                out["-smp"] = next(it)
            else:
                extra.append(a)
        argv = [self.binary]
        for k, v in out.items():
            argv += [k] if v is None else [k, v]
        return argv + extra


# ----------------------------------------------------------------------------
# A running VM with its console.


class VM:
    def __init__(self, argv, log_path, use_pty=False):
        self.argv = argv
        self.log_path = log_path
        self.use_pty = use_pty
        self.buf = bytearray()
        self.err = bytearray()
        self.cond = threading.Condition()
        self.eof = False
        self.seq = 1000
        self.exit_time = None
        self.log = open(log_path, "wb")
        self.log.write(("$ " + " ".join(argv) + "\n").encode())
        if use_pty:
            self.master, self.slave = pty.openpty()
            self.tty_before = termios.tcgetattr(self.slave)
            self.proc = subprocess.Popen(argv, stdin=self.slave, stdout=self.slave,
                                         stderr=subprocess.PIPE, start_new_session=False)
            self.out_fd = self.master
            self.in_fd = self.master
        else:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE)
            self.out_fd = self.proc.stdout.fileno()
            self.in_fd = self.proc.stdin.fileno()
        self.start_time = time.monotonic()
        self.t_out = threading.Thread(target=self._reader, daemon=True)
        self.t_err = threading.Thread(target=self._err_reader, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _reader(self):
        while True:
            if self.use_pty:
                # The slave stays open on our side, so no EOF: poll for exit.
                r, _, _ = select.select([self.out_fd], [], [], 0.1)
                if not r:
                    if self.proc.poll() is not None:
                        break
                    continue
            try:
                data = os.read(self.out_fd, 65536)
            except OSError:
                data = b""
            if not data:
                break
            with self.cond:
                self.buf += data
                self.log.write(data)
                self.log.flush()
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _err_reader(self):
        fd = self.proc.stderr.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            with self.cond:
                self.err += data
                self.cond.notify_all()

    def text(self):
        """Console so far, escape sequences and CRs removed."""
        with self.cond:
            raw = bytes(self.buf)
        return ANSI.sub("", raw.decode("utf-8", "replace")).replace("\r", "")

    def wait_for(self, pred, timeout, what):
        """Wait until pred(text) returns a true value; return it."""
        deadline = time.monotonic() + timeout
        while True:
            t = self.text()
            v = pred(t)
            if v:
                return v
            with self.cond:
                if self.eof or self.proc.poll() is not None:
                    # One last look at what arrived before the exit.
                    self.t_out.join(1)
                    v = pred(self.text())
                    if v:
                        return v
                    raise CheckFailed(f"{what}: VM exited (status {self.proc.poll()}) first")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise CheckFailed(f"{what}: not seen within {timeout:.0f} s")
                self.cond.wait(min(left, 0.5))

    def wait_marker(self, count, timeout):
        """Wait for the count-th VESSEL-INIT-OK and a shell prompt after it."""

        prompt = re.compile(r"^[\w@:~/.-]*[#$] ", re.M)

        def ready(t):
            parts = t.split(MARKER)
            return len(parts) > count and prompt.search(parts[count])

        t0 = time.monotonic()
        self.wait_for(lambda t: t.count(MARKER) >= count, timeout, f"{MARKER} #{count}")
        t_marker = time.monotonic() - self.start_time
        self.wait_for(ready, max(timeout - (time.monotonic() - t0), 10), "shell prompt")
        return t_marker

    def send(self, s):
        data = s.encode()
        with self.cond:
            self.log.write(b"\n<<< " + data.replace(b"\r", b"\n").replace(b"\n", b"\\n") + b"\n")
        try:
            os.write(self.in_fd, data)
        except OSError as e:
            raise CheckFailed(f"writing to the console: {e}")

    def sh(self, cmd, timeout=60):
        """Run a shell command in the guest; return (status, output lines).
        The markers are built by shell arithmetic so the terminal's echo of the
        typed line never matches them."""
        self.seq += 1
        n = self.seq
        nl = "\r" if self.use_pty else "\n"
        self.send(f"echo @B$(({n}+0))@; {cmd}; echo @E$(({n}+0)):$?@{nl}")
        pat = re.compile(rf"@B{n}@\n(.*?)@E{n}:(\d+)@", re.S)
        m = self.wait_for(lambda t: pat.search(t), timeout, f"output of '{cmd}'")
        lines = [ln for ln in m.group(1).split("\n") if ln.strip() and not KMSG.match(ln)]
        return int(m.group(2)), lines

    def wait_exit(self, timeout):
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.exit_time = time.monotonic()
        self.t_err.join(2)
        return rc

    def stderr_text(self):
        with self.cond:
            return bytes(self.err).decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.t_out.join(2)
        self.t_err.join(2)
        with self.cond:
            self.log.write(b"\n--- exit status %r\n--- stderr:\n" % (self.proc.returncode,))
            self.log.write(bytes(self.err))
            self.log.close()
        if self.use_pty:
            for fd in (self.master, self.slave):
                try:
                    os.close(fd)
                except OSError:
                    pass
        else:
            for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass


# ----------------------------------------------------------------------------
# The suite.


class Suite:
    def __init__(self, target, opts, guest):
        self.target = target
        self.opts = opts
        self.guest = guest
        self.passed = 0
        self.failed = 0
        self.xfail = 0
        self.measure = []  # (what, seconds) for the summary

    # -- reporting
    def report(self, group, check, ok, detail="", xfail_reason=None):
        name = f"{group}/{check}" if check else group
        if xfail_reason and not ok:
            print(f"XFAIL {name}: {detail} [{xfail_reason}]", flush=True)
            self.xfail += 1
            return
        if ok:
            self.passed += 1
            print(f"PASS {name}" + (f" ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            print(f"FAIL {name}: {detail}", flush=True)

    def log_path(self, group):
        return os.path.join(self.opts.log_dir, group + ".log")

    def overcommit_for(self, cpus, memory):
        return cpus > (os.cpu_count() or 1) or parse_size(memory) > host_mem_available()

    def boot(self, group, cpus=1, memory="512M", initrd=None, no_reboot=False, use_pty=False):
        argv = self.target.argv(cpus=cpus, memory=memory, initrd=initrd, no_reboot=no_reboot,
                                overcommit=self.overcommit_for(cpus, memory))
        return VM(argv, self.log_path(group), use_pty=use_pty)

    def run_group(self, group, checks, body):
        """Run body(vm-less context) that yields (check, ok, detail); any
        check not reported when body stops (exception) counts as failed."""
        done = set()
        t0 = time.monotonic()
        try:
            for check, ok, detail, *rest in body():
                done.add(check)
                xfail = rest[0] if rest and self.target.name == "qemu" else None
                self.report(group, check, ok, detail, xfail)
        except CheckFailed as e:
            first = self._first_missing(checks, done)
            for c in checks:
                if c not in done:
                    self.report(group, c, False, str(e) if c == first else "not reached")
                    done.add(c)
            print(f"  log: {self.log_path(group)}", flush=True)
            self._tail(group)
        except Exception as e:  # a harness bug must not hide the other tests
            for c in checks:
                if c not in done:
                    self.report(group, c, False, f"harness error: {e!r}")
                    done.add(c)
        for c in checks:
            if c not in done:
                self.report(group, c, False, "check not run (harness bug)")
        if self.opts.verbose:
            print(f"  {group}: {time.monotonic() - t0:.1f} s", flush=True)

    @staticmethod
    def _first_missing(checks, done):
        for c in checks:
            if c not in done:
                return c
        return None

    def _tail(self, group, n=15):
        try:
            with open(self.log_path(group), "rb") as f:
                data = f.read()
        except OSError:
            return
        text = ANSI.sub("", data.decode("utf-8", "replace")).replace("\r", "")
        for line in text.rstrip("\n").split("\n")[-n:]:
            print(f"  | {line}", flush=True)

    # -- pieces shared by the boot tests
    def check_boot(self, vm, count=1):
        t = vm.wait_marker(count, self.opts.timeout)
        self.measure.append((f"boot to marker #{count}", t))
        return t

    def check_poweroff(self, vm):
        """Send poweroff; the VM must exit 0 within POWEROFF_LIMIT (+margin)."""
        nl = "\r" if vm.use_pty else "\n"
        t0 = time.monotonic()
        vm.send("poweroff" + nl)
        rc = vm.wait_exit(self.opts.timeout)
        if rc is None:
            return False, f"still running {self.opts.timeout:.0f} s after poweroff"
        dt = vm.exit_time - t0
        self.measure.append(("poweroff to exit", dt))
        if rc != 0:
            return False, f"exit status {rc}, want 0 ({first_line(vm.stderr_text())})"
        if dt > POWEROFF_LIMIT + POWEROFF_MARGIN:
            return False, f"exited {dt:.2f} s after poweroff, limit {POWEROFF_LIMIT} s"
        return True, f"{dt:.2f} s"

    def check_stderr_clean(self, vm):
        m = SANITIZER.search(vm.stderr_text())
        if m:
            line = next(ln for ln in vm.stderr_text().split("\n") if m.group(0) in ln)
            return False, "sanitizer report: " + line.strip()
        return True, ""

    def check_nproc(self, vm, want):
        st, out = vm.sh("nproc")
        got = out[-1].strip() if out else ""
        return got == str(want), f"nproc={got}" + ("" if got == str(want) else f", want {want}")

    def check_memtotal(self, vm, memory):
        st, out = vm.sh("grep MemTotal /proc/meminfo")
        m = re.search(r"MemTotal:\s+(\d+) kB", "\n".join(out))
        if not m:
            return False, f"no MemTotal in {out!r}"
        got = int(m.group(1)) * 1024
        size = parse_size(memory)
        # MemTotal = RAM minus what firmware and kernel reserve: a fixed part
        # (the first 2 MiB for OpenSBI, Debian's ~30 MiB kernel image, more boot
        # reservations; 128M under QEMU 7.2 gives 61 MiB, 48%) and a part that
        # grows with RAM (struct page arrays ~1.6%, a 64 MiB swiotlb above 4 GiB;
        # QEMU: 1G gives 92%, 8G 96.7%). Allow 80 MiB + 4%.
        low = size * 0.96 - 80 * 2**20
        ok = low <= got <= size
        if size >= 8 * 2**30:
            ok = ok and got > 7 * 2**30
        pct = 100.0 * got / size
        return ok, f"MemTotal {got >> 20} MiB = {pct:.1f}% of {memory}" + (
            "" if ok else f", want {int(low) >> 20}..{size >> 20} MiB")

    # -- the tests
    def t_boot(self, group, cpus, memory, initrd=None, amo=False, date=False):
        checks = ["boot", "nproc", "memtotal"] + (["date"] if date else []) + (
            ["amo"] if amo else []) + ["poweroff"] + (
            ["stderr_clean"] if self.target.name == "vessel" else [])

        def body():
            vm = self.boot(group, cpus=cpus, memory=memory, initrd=initrd)
            try:
                t = self.check_boot(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                yield ("nproc",) + self.check_nproc(vm, cpus)
                yield ("memtotal",) + self.check_memtotal(vm, memory)
                if date:
                    t0 = time.time()
                    st, out = vm.sh("date +%s")
                    t1 = time.time()
                    try:
                        g = int(out[-1])
                    except (ValueError, IndexError):
                        yield ("date", False, f"bad date output {out!r}")
                    else:
                        # date prints whole seconds (truncated).
                        ok = int(t0) - 2 <= g <= t1 + 2
                        yield ("date", ok, f"guest {g}, host {t0:.1f}..{t1:.1f}")
                if amo:
                    st, out = vm.sh(f"amo_counter {cpus}", timeout=self.opts.timeout)
                    txt = " | ".join(out)
                    yield ("amo", st == 0 and "AMO-OK" in out, txt[-300:])
                yield ("poweroff",) + self.check_poweroff(vm)
                if self.target.name == "vessel":
                    yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_smp_memory(self, group, cpus):
        """Memory model and code patching on a Linux guest with `cpus` harts (issue 8):
        tests/litmus/litmus_linux.c (store buffering, message passing, load buffering with
        and without barriers; each checker shown to see its outcome) and tests/guest/codepatch.c
        (patch/run/unpatch/flush on one hart; patch + remote fence.i, run on another)."""
        checks = ["boot", "litmus", "patch_local", "patch_remote", "poweroff"] + (
            ["stderr_clean"] if self.target.name == "vessel" else [])

        def body():
            vm = self.boot(group, cpus=cpus, memory="512M", initrd=self.guest["test_initrd"])
            try:
                t = self.check_boot(vm)
                yield ("boot", True, f"marker after {t:.1f} s")
                t0 = time.monotonic()
                st, out = vm.sh(f"litmus {cpus}", timeout=max(self.opts.timeout, 600))
                lines = [ln for ln in out if ln.startswith(("PASS ", "FAIL "))]
                bad = [ln for ln in lines if ln.startswith("FAIL ")]
                # The "must be seen" self-checks need the two harts' racing accesses to
                # overlap. A sanitizer build runs each guest instruction several times slower,
                # which narrows that window (SB+none went unseen in 20M rounds once, on a busy
                # host): there they are reported, and enforced by the plain and JIT runs.
                unseen = [ln for ln in bad if "must be seen" in ln]
                if "asan" in os.path.basename(self.target.binary) and len(unseen) == len(bad):
                    bad = []
                ok = st == 0 and len(lines) == 11 and not bad and (
                    "LITMUS-OK" in out or unseen)
                seen = "; ".join(ln.split(" (")[0][5:] for ln in lines
                                 if "must be seen" in ln or ln.startswith("FAIL"))
                yield ("litmus", ok, (f"{len(lines)} tests in {time.monotonic() - t0:.0f} s; "
                                      + (" | ".join(bad) if bad else seen))[-400:])
                st, out = vm.sh("codepatch local", timeout=self.opts.timeout)
                yield ("patch_local", st == 0 and "PATCH-OK" in out, " | ".join(out)[-300:])
                st, out = vm.sh("codepatch remote", timeout=self.opts.timeout)
                yield ("patch_remote", st == 0 and "PATCH-OK" in out, " | ".join(out)[-300:])
                yield ("poweroff",) + self.check_poweroff(vm)
                if self.target.name == "vessel":
                    yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_reboot(self, group):
        checks = ["boot", "reboot", "poweroff"]

        def body():
            vm = self.boot(group, cpus=1, memory="512M")
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                t0 = time.monotonic()
                vm.send("reboot\n")
                vm.wait_marker(2, self.opts.timeout)
                st, out = vm.sh("echo alive")
                ok = out[-1:] == ["alive"]
                yield ("reboot", ok, f"booted again after {time.monotonic() - t0:.1f} s"
                       if ok else f"shell after reboot said {out!r}")
                yield ("poweroff",) + self.check_poweroff(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_reboot_no_reboot(self, group):
        checks = ["boot", "exit"]

        def body():
            # Two harts: vessel must stop the secondary one too to exit.
            argv = self.target.argv(cpus=2, memory="256M", no_reboot=True)
            vm = VM(argv, self.log_path(group))
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                t0 = time.monotonic()
                vm.send("reboot\n")
                rc = vm.wait_exit(self.opts.timeout)
                if rc is None:
                    yield ("exit", False, "still running after reboot with --no-reboot")
                else:
                    dt = vm.exit_time - t0
                    ok = rc == 0 and vm.text().count(MARKER) == 1
                    yield ("exit", ok, f"status {rc} after {dt:.2f} s" + (
                        "" if ok else f" ({first_line(vm.stderr_text())})"))
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_terminal(self, group):
        """Console on a terminal: vessel may put it in raw mode, and must put
        it back as it was when it exits."""
        checks = ["boot", "poweroff", "tty_restored"]

        def body():
            vm = self.boot(group, cpus=1, memory="256M", use_pty=True)
            try:
                try:
                    self.check_boot(vm)
                except CheckFailed as e:
                    # If vessel died by itself, it still had to restore the terminal.
                    yield ("boot", False, str(e))
                    if vm.proc.poll() is None:
                        raise
                    yield ("poweroff", False, "not reached")
                else:
                    yield ("boot", True, "")
                    yield ("poweroff",) + self.check_poweroff(vm)
                after = termios.tcgetattr(vm.slave)
                yield ("tty_restored", after == vm.tty_before,
                       "" if after == vm.tty_before else tty_diff(vm.tty_before, after))
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_virtio_input(self, group, initrd):
        """vessel's virtio-input keyboard (issue 9, clean shutdown): virtio_mmio
        enumerates it (device 0x0012, the slot after virtio-rng); with
        virtio_input loaded (initrd: the default initramfs plus that module)
        the kernel registers "vessel power keyboard"; Ctrl-A p on the console
        sends Ctrl-Alt-Del, busybox init runs ::ctrlaltdel:/sbin/reboot, and
        after a power-down request a guest reboot ends vessel with status 0."""
        checks = ["boot", "enumerate", "driver", "powerdown"] + (
            ["stderr_clean"] if self.target.name == "vessel" else [])

        def body():
            if self.target.name != "vessel":
                for c in checks:
                    yield (c, False, "no virtio-input device on QEMU's command line", "vessel only")
                return
            # A pty: the Ctrl-A escapes apply only when the console is a terminal.
            vm = self.boot(group, cpus=1, memory="256M", initrd=initrd, use_pty=True)
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                vm.sh("dmesg -n 1")
                st, out = vm.sh(
                    "kv=$(uname -r); insmod /lib/modules/$kv/kernel/drivers/virtio/virtio_mmio.ko.xz; "
                    "i=0; while [ ! -e /sys/bus/virtio/devices/virtio1 ] && [ $i -lt 100 ]; do "
                    "usleep 50000; i=$((i+1)); done; "
                    "for d in /sys/bus/virtio/devices/*; do echo $(readlink -f $d) $(cat $d/device); done")
                # No disks: virtio-rng in slot 0, the keyboard in slot 1.
                want = ("10001000.virtio_mmio/virtio0 0x0004", "10002000.virtio_mmio/virtio1 0x0012")
                ok = st == 0 and len(out) == 2 and all(
                    any(ln.endswith(w) for ln in out) for w in want)
                yield ("enumerate", ok, " | ".join(out)[-300:])
                st, out = vm.sh(
                    "insmod /lib/modules/$(uname -r)/kernel/drivers/virtio/virtio_input.ko.xz; "
                    "i=0; while ! grep -q 'vessel power keyboard' /proc/bus/input/devices && "
                    "[ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; "
                    "grep -E '^(N|B): ' /proc/bus/input/devices")
                name = 'N: Name="vessel power keyboard"'
                # EV bits: EV_SYN and EV_KEY; KEY bits include KEY_POWER (116).
                yield ("driver", st == 0 and name in out and "B: EV=3" in out,
                       " | ".join(out)[-300:])
                n = len(vm.text())
                t0 = time.monotonic()
                vm.send("\x01p")
                rc = vm.wait_exit(30)
                said = "reboot: Restarting system" in vm.text()[n:]
                if rc is None:
                    yield ("powerdown", False, "still running 30 s after Ctrl-A p" + (
                        " (the guest rebooted)" if said else ""))
                else:
                    dt = vm.exit_time - t0
                    yield ("powerdown", rc == 0 and said, f"status {rc} after {dt:.1f} s" + (
                        "" if said else ", no 'reboot: Restarting system' on the console"))
                if self.target.name == "vessel":
                    yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    FASTMEM_LINE = re.compile(
        r"hart 0 fastmem: (\d+) pages mapped, \d+ flushes, \d+ pages unmapped, (\d+) host "
        r"faults to slow paths, \d+ address-space switches \((\d+) kept their pages\), "
        r"(\d+) address spaces warmed up")

    def t_fastmem(self, group, mmu=None):
        """The JIT's fast memory for user programs (docs/engine.md "Fast memory"): a
        sha256sum of 16 MiB, from a file and through a pipe, hashes what the host hashes;
        under Sv39 (the default, /proc/cpuinfo says so) its pages go through fast memory
        (pages mapped, host faults to the slow path, address spaces warmed up) and the two
        processes of the pipe keep their pages across switches (ASIDs); under --mmu sv57
        the guest runs Sv57 and fast memory stays unused."""
        checks = ["boot", "mmu", "hash", "pipe_hash", "exit", "fastmem"]
        data = (b"vessel-fastmem\n" * ((16 << 20) // 15 + 1))[:16 << 20]
        want_hash = hashlib.sha256(data).hexdigest()

        def body():
            argv = self.target.argv(cpus=1, memory="256M") + ["--log-level", "debug"]
            if mmu:
                argv += ["--mmu", mmu]
            vm = VM(argv, self.log_path(group))
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                st, out = vm.sh("grep -m1 mmu /proc/cpuinfo")
                seen = out[-1].split()[-1] if st == 0 and out else "?"
                yield ("mmu", seen == (mmu or "sv39"), f"/proc/cpuinfo: {seen}")
                vm.sh("yes vessel-fastmem | head -c 16777216 > /tmp/z", 120)
                st, out = vm.sh("sha256sum /tmp/z", 120)
                got = out[-1].split()[0] if st == 0 and out else "?"
                yield ("hash", got == want_hash, got)
                st, out = vm.sh("cat /tmp/z | sha256sum", 120)
                got = out[-1].split()[0] if st == 0 and out else "?"
                yield ("pipe_hash", got == want_hash, got)
                vm.send("poweroff\n")
                rc = vm.wait_exit(self.opts.timeout)
                yield ("exit", rc == 0, f"status {rc}")
                m = self.FASTMEM_LINE.search(vm.stderr_text())
                if not m:
                    yield ("fastmem", False, "no 'hart 0 fastmem:' line at --log-level debug")
                    return
                mapped, faults, kept, warmed = (int(x) for x in m.groups())
                detail = (f"{mapped} pages mapped, {faults} host faults, {kept} switches kept "
                          f"their pages, {warmed} address spaces warmed up")
                if mmu == "sv57":
                    ok = mapped == 0 and faults == 0 and warmed == 0
                else:
                    ok = mapped > 0 and faults > 0 and kept > 0 and warmed > 0
                yield ("fastmem", ok, detail)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_bad_input(self, group, args, codes=(2,), note="", qemu_xfail=None):
        """A bad input: non-zero exit (one of codes), exactly one line on
        stderr, the terminal (a pty on stdin/stdout) left as it was."""
        checks = ["rejected"]
        is_qemu = self.target.name == "qemu"

        def body():
            argv = self.target.bad_argv(args)
            master, slave = pty.openpty()
            before = termios.tcgetattr(slave)
            with open(self.log_path(group), "wb") as log:
                log.write(("$ " + " ".join(argv) + "\n").encode())
                p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=subprocess.PIPE)
                try:
                    _, err = p.communicate(timeout=BAD_INPUT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    p.kill()
                    _, err = p.communicate()
                    log.write(err)
                    os.close(master)
                    os.close(slave)
                    yield ("rejected", False, f"still running after {BAD_INPUT_TIMEOUT} s",
                           qemu_xfail)
                    return
                log.write(err)
                after = termios.tcgetattr(slave)
            os.close(master)
            os.close(slave)
            lines = err.decode("utf-8", "replace").rstrip("\n").split("\n") if err else []
            problems = []
            if p.returncode == 0:
                problems.append("exit status 0")
            elif not is_qemu and p.returncode not in codes:
                problems.append(f"exit status {p.returncode}, want {'/'.join(map(str, codes))}")
            if len(lines) != 1 or not lines[0].strip():
                problems.append(f"{len(lines)} lines on stderr, want 1")
            if after != before:
                problems.append("terminal changed: " + tty_diff(before, after))
            detail = f"status {p.returncode}: {lines[0] if lines else '(no stderr)'}"
            if note:
                detail += f" [{note}]"
            if problems:
                yield ("rejected", False, "; ".join(problems) + " -- " + " | ".join(lines[:4]),
                       qemu_xfail)
            else:
                yield ("rejected", True, detail)

        self.run_group(group, checks, body)


def first_line(s):
    s = s.strip()
    return s.split("\n", 1)[0] if s else "no stderr"


def tty_diff(a, b):
    names = ["iflag", "oflag", "cflag", "lflag", "ispeed", "ospeed"]
    out = [f"{n} {x:#o}->{y:#o}" for n, x, y in zip(names, a, b) if x != y]
    out += [f"cc[{i}] {x!r}->{y!r}" for i, (x, y) in enumerate(zip(a[6], b[6])) if x != y]
    return ", ".join(out)


def make_fake_x86_kernel(path):
    """The first 4 KiB of an x86 bzImage: "MZ", the setup header magic "HdrS"
    at 0x202, no RISC-V Image magic at 56 (Documentation/arch/x86/boot.rst)."""
    b = bytearray(4096)
    b[0:2] = b"MZ"
    b[0x1F1] = 0x1F  # setup_sects
    b[0x1FE:0x200] = b"\x55\xaa"  # boot_flag
    b[0x202:0x206] = b"HdrS"
    b[0x206:0x208] = (0x020F).to_bytes(2, "little")
    with open(path, "wb") as f:
        f.write(b)


def build_tests(suite, tmp):
    """Return [(name, callable)] in run order."""
    g = suite.guest
    T = []

    def add(name, fn, *a, **kw):
        T.append((name, lambda: fn(name, *a, **kw)))

    add("boot_1cpu_128M", suite.t_boot, 1, "128M")
    add("boot_2cpu_1G", suite.t_boot, 2, "1G", date=True)
    add("boot_4cpu_8G_amo", suite.t_boot, 4, "8G", initrd=g["test_initrd"], amo=True)
    add("smp_memory_2cpu", suite.t_smp_memory, 2)
    add("smp_memory_4cpu", suite.t_smp_memory, 4)
    add("reboot", suite.t_reboot)
    add("reboot_no_reboot", suite.t_reboot_no_reboot)
    add("terminal", suite.t_terminal)
    add("virtio_input", suite.t_virtio_input, input_initrd(g, tmp))
    if suite.target.name == "vessel" and suite.target.engine != "interp":
        add("fastmem_sv39", suite.t_fastmem)
        add("fastmem_off_sv57", suite.t_fastmem, "sv57")

    # Bad inputs. Kernel and firmware are given explicitly where the check is
    # about another input.
    kern = ["--kernel", g["kernel"]]
    empty = os.path.join(tmp, "empty-kernel")
    open(empty, "wb").close()
    if os.geteuid() == 0:
        # root reads any file whatever its mode: use a directory instead.
        unreadable = os.path.join(tmp, "kernel-dir")
        os.mkdir(unreadable)
        unreadable_note = "root: a directory stands in for an unreadable file"
    else:
        unreadable = os.path.join(tmp, "unreadable-kernel")
        with open(unreadable, "wb") as f:
            f.write(b"\0" * 4096)
        os.chmod(unreadable, 0)
        unreadable_note = "mode 000"
    x86 = sorted(p for p in (os.path.join("/boot", n) for n in
                             (os.listdir("/boot") if os.path.isdir("/boot") else []))
                 if os.path.basename(p).startswith("vmlinuz-") and os.access(p, os.R_OK))
    if x86:
        x86_kernel, x86_note = x86[-1], x86[-1]
    else:
        x86_kernel = os.path.join(tmp, "vmlinuz-x86")
        make_fake_x86_kernel(x86_kernel)
        x86_note = "no /boot/vmlinuz-*: synthesized bzImage header"
    big_initrd = os.path.join(tmp, "initrd-200M")
    with open(big_initrd, "wb") as f:
        f.truncate(200 << 20)  # sparse

    qx = "QEMU reports this differently"
    add("bad_kernel_missing", suite.t_bad_input, ["--kernel", os.path.join(tmp, "no-such-kernel")],
        qemu_xfail=qx)
    add("bad_kernel_unreadable", suite.t_bad_input, ["--kernel", unreadable], note=unreadable_note)
    add("bad_kernel_empty", suite.t_bad_input, ["--kernel", empty])
    add("bad_kernel_x86", suite.t_bad_input, ["--kernel", x86_kernel], note=x86_note, qemu_xfail=qx)
    add("bad_firmware_missing", suite.t_bad_input,
        kern + ["--firmware", os.path.join(tmp, "no-such-firmware")])
    add("bad_initrd_too_big", suite.t_bad_input, ["--memory", "128M", "--initrd", big_initrd],
        qemu_xfail=qx)
    add("bad_memory_unit", suite.t_bad_input, ["--memory", "12Q"], qemu_xfail=qx)
    # 100T cannot be given without --overcommit: a bad argument (2) or, if
    # vessel treats it as the host lacking memory, a host error (1).
    add("bad_memory_100T", suite.t_bad_input, ["--memory", "100T"], codes=(2, 1))
    add("bad_cpus_0", suite.t_bad_input, ["--cpus", "0"], qemu_xfail=qx)
    add("bad_unknown_option", suite.t_bad_input, ["--no-such-option"])
    add("bad_mmu", suite.t_bad_input, ["--mmu", "sv32"], qemu_xfail=qx)
    return T


def input_initrd(g, tmp):
    """The default initramfs plus virtio_input.ko from the default guest's
    module tree (neither initramfs carries it). Not built for --list (no
    module tree); if building fails the test's boot fails."""
    out = os.path.join(tmp, "initramfs-input.cpio.gz")
    mods = os.path.join(os.path.dirname(g["initrd"]), "modules")
    if not os.path.isdir(mods):
        return out
    kver = os.path.basename(os.path.realpath(mods))
    rel = "kernel/drivers/virtio/virtio_input.ko.xz"
    extra = os.path.join(tmp, "input.cpio.gz")
    spec = f"file /lib/modules/{kver}/{rel} {os.path.join(mods, rel)} 0644 0 0\n"
    r = subprocess.run([os.path.join(ROOT, "guest", "mkcpio.py"), "--gzip", "--mtime", "0",
                        "-o", extra, "-"], input=spec, text=True, capture_output=True)
    if r.returncode == 0:
        with open(out, "wb") as f:
            for part in (g["initrd"], extra):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f)
    return out


def find_guest(opts):
    c = cache_dir()
    g = {
        "kernel": os.path.join(c, "guest/default/Image"),
        "fw": os.path.join(c, "guest/default/fw_dynamic.bin"),
        "initrd": os.path.join(c, "guest/default/initramfs.cpio.gz"),
        "test_initrd": os.path.join(c, "guest/test/initramfs-test.cpio.gz"),
    }
    if not opts.no_build:
        r = subprocess.run([os.path.join(HERE, "build.sh")], stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            sys.exit("guest: building the guest artifacts failed (tests/guest/build.sh)")
    for k, p in g.items():
        if not os.path.isfile(p):
            sys.exit(f"guest: missing {p}; run guest/build.sh and tests/guest/build.sh")
    return g


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
                    default=float(os.environ.get("VESSEL_TEST_TIMEOUT", "120")),
                    help="boot / command timeout in seconds (default 120)")
    ap.add_argument("--log-dir", help="where console logs go")
    ap.add_argument("--no-build", action="store_true",
                    help="do not run tests/guest/build.sh first")
    ap.add_argument("--engine", choices=("interp", "jit"),
                    help="pass --engine to vessel (default: vessel's default)")
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="vessel-guest-test-")
    try:
        if opts.list:
            fake = {k: "/nonexistent" for k in ("kernel", "fw", "initrd", "test_initrd")}
            for name, _ in build_tests(Suite(None, opts, fake), tmp):
                print(name)
            return 0
        guest = find_guest(opts)
        if opts.qemu:
            target = QemuTarget(opts.qemu, guest)
        else:
            if not (os.path.isfile(opts.vessel) and os.access(opts.vessel, os.X_OK)):
                print(f"guest: vessel binary {opts.vessel} not found or not executable")
                print("guest: 0 passed, 1 failed")
                return 1
            target = VesselTarget(os.path.abspath(opts.vessel), opts.engine)
        if not opts.log_dir:
            opts.log_dir = os.path.join(ROOT, "build", "test-logs", "guest-" + (
                "qemu" if opts.qemu else os.path.basename(opts.vessel) + (
                    "-" + opts.engine if opts.engine else "")))
        os.makedirs(opts.log_dir, exist_ok=True)
        suite = Suite(target, opts, guest)
        tests = build_tests(suite, tmp)
        if opts.only:
            tests = [t for t in tests if any(k in t[0] for k in opts.only)]
            if not tests:
                print(f"guest: no test matches {opts.only}")
                print("guest: 0 passed, 1 failed")
                return 1
        print(f"guest: target {target.describe()}, {len(tests)} tests, logs in {opts.log_dir}",
              flush=True)
        t0 = time.monotonic()
        for name, fn in tests:
            fn()
        if suite.measure:
            by = {}
            for what, sec in suite.measure:
                by.setdefault(what, []).append(sec)
            for what, v in by.items():
                print(f"guest: {what}: min {min(v):.2f} s, max {max(v):.2f} s, n={len(v)}")
        print(f"guest: total {time.monotonic() - t0:.1f} s" + (
            f", {suite.xfail} expected failures" if suite.xfail else ""))
        print(f"guest: {suite.passed} passed, {suite.failed} failed", flush=True)
        return 1 if suite.failed else 0
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", tmp], stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())
