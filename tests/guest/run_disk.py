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

  net       the network and ssh, two VMs made from the pristine image, each with a
            fresh key pair's public key given by --ssh-key: A is a managed VM
            (`vessel create A --image debian --ssh-key K.pub --publish P:22`,
            `vessel start`), B a `vessel run --engine jit --disk COPY --net
            user,hostfwd=tcp:127.0.0.1:P-:22 --ssh-key K.pub` on a new copy. The
            host waits for sshd and runs commands over ssh (BatchMode: no password
            prompt); on B (the JIT: quicker): 10.0.2.15 from DHCP (systemd-
            networkd), the DNS server 10.0.2.3 in systemd-resolved, units active,
            sshd refuses passwords, the key installed once, iperf3 in the guest
            sends to an iperf3 server on the host's loopback (through 10.0.2.2) for
            2 s; then A through `vessel ssh net-a` (which finds the private key
            beside K.pub), and A's and B's host keys differ (each made at its
            first boot) and match what the host learned. vessel only (XFAIL on
            QEMU).

--qemu runs the same checks on qemu-system-riscv64 (kernel, firmware and
initramfs of the default guest, root=/dev/vda rw, the copy as a virtio-blk
device) to validate the harness. With no image in the cache the suite fails,
or with --skip-missing reports 0 passed, 0 failed and says why.
Output as tests/guest/run.py: one PASS/FAIL line per check, the last line
exactly "disk: N passed, N failed". Exit status 0 when nothing failed.
Console logs go to build/test-logs/disk-<target>/.

Python 3 standard library only; e2fsprogs (debugfs, e2fsck) on the host, and for
`net` openssh-client (ssh, ssh-keygen) and iperf3 (scripts/host-deps.txt).
"""
import argparse
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
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


    def t_net(self, group):
        checks = ["ssh_b", "dhcp", "dns", "units", "no_password", "authorized_keys", "iperf3",
                  "ssh_a", "host_keys", "stop"]

        def body():
            if self.target.name != "vessel":
                for c in checks:
                    yield (c, False, "--ssh-key is vessel's", "vessel only")
                return
            missing = [t for t in ("ssh", "ssh-keygen", "iperf3") if not shutil.which(t)]
            if missing:
                raise guest.CheckFailed(f"{', '.join(missing)} not found on the host "
                                        "(scripts/setup-host.sh: openssh-client, iperf3)")
            tmp = tempfile.mkdtemp(prefix="vessel-disk-net-", dir=os.path.dirname(self.image))
            store = os.path.join(tmp, "store")
            key = os.path.join(tmp, "id_test")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "vessel-test",
                            "-f", key], check=True)
            with open(key + ".pub") as f:
                pub = f.read().split()[1]
            port_a, port_b = free_port(), free_port()
            while port_b == port_a:
                port_b = free_port()
            vb = None
            iperf = None
            vessel = self.target.binary

            def mgr(*args, timeout=120):
                return subprocess.run([vessel] + list(args) + ["--store", store],
                                      capture_output=True, text=True, timeout=timeout)

            def ssh_a(cmd, timeout=120):
                return subprocess.run(
                    [vessel, "ssh", "net-a", "--store", store, "--", "-o", "BatchMode=yes",
                     "-o", "ConnectTimeout=20", cmd],
                    capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

            known_b = os.path.join(tmp, "known_hosts_b")

            def ssh_b(cmd, timeout=120, extra=()):
                return subprocess.run(
                    ["ssh", "-p", str(port_b), "-i", key, "-o", "BatchMode=yes",
                     "-o", "IdentitiesOnly=yes", "-o", "ConnectTimeout=20",
                     "-o", f"UserKnownHostsFile={known_b}",
                     "-o", "StrictHostKeyChecking=accept-new"] + list(extra) +
                    ["root@127.0.0.1", cmd],
                    capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)

            def wait_ssh(run, what, t0, dead):
                """Retry until sshd answers a command (it comes up after DHCP and, on the first
                boot, the host keys); return seconds from t0. dead(): why the VM is gone."""
                deadline = t0 + self.opts.timeout
                last = None
                while time.monotonic() < deadline:
                    try:
                        last = run("echo SSH-UP")
                    except subprocess.TimeoutExpired:
                        continue
                    if last.returncode == 0 and "SSH-UP" in last.stdout:
                        return time.monotonic() - t0
                    if "Permission denied" in last.stderr:
                        # sshd is up, and the keys are installed before it starts: final
                        why = next(ln for ln in last.stderr.split("\n") if "denied" in ln)
                        raise guest.CheckFailed(f"{what}: the key is refused: {why.strip()}")
                    why = dead()
                    if why:
                        raise guest.CheckFailed(f"{what}: {why}")
                    time.sleep(3)
                why = guest.first_line(last.stderr) if last else "no answer"
                raise guest.CheckFailed(f"{what}: no ssh login within {self.opts.timeout:.0f} s "
                                        f"({why})")

            try:
                # A: a managed VM, the user's way.
                r = mgr("create", "net-a", "--image", "debian", "--cpus", "1", "--memory", "1G",
                        "--ssh-key", key + ".pub", "--publish", f"127.0.0.1:{port_a}:22")
                if r.returncode != 0:
                    raise guest.CheckFailed(f"vessel create A: {guest.first_line(r.stderr)}")
                t0 = time.monotonic()
                r = mgr("start", "net-a")
                if r.returncode != 0:
                    raise guest.CheckFailed(f"vessel start A: {guest.first_line(r.stderr)}")
                # B: vessel run on a copy of the pristine image, under the JIT.
                copy_b = os.path.join(tmp, "b.img")
                subprocess.run(["cp", "--sparse=always", self.pristine, copy_b], check=True)
                vb = guest.VM([vessel, "run", "--store", store, "--engine", "jit", "--cpus", "1",
                               "--memory", "1G", "--disk", copy_b, "--ssh-key", key + ".pub",
                               "--net", f"user,hostfwd=tcp:127.0.0.1:{port_b}-:22"],
                              self.log_path(group))
                t_b0 = vb.start_time

                def dead_a():
                    st = json.loads(mgr("list", "--json").stdout or "[]")
                    st = next((v["state"] for v in st if v["name"] == "net-a"), "gone")
                    return None if st in ("running", "starting") else f"the VM is {st}"

                def dead_b():
                    rc = vb.proc.poll()
                    return None if rc is None else f"vessel run exited with status {rc}: " + \
                        guest.first_line(vb.stderr_text())

                t = wait_ssh(ssh_b, "B", t_b0, dead_b)
                self.measure.append(("start to ssh login (jit)", t))
                r = ssh_b("echo TOKEN-$((6*7)); id -un")
                ok = r.returncode == 0 and r.stdout.split() == ["TOKEN-42", "root"]
                yield ("ssh_b", ok, f"ssh -p {port_b}: a command as root {t:.0f} s after "
                       "vessel run" if ok else
                       f"status {r.returncode}: {r.stdout!r} {r.stderr[-200:]!r}")

                r = ssh_b("ip -4 -o addr show scope global; ip -4 route show default; "
                          "networkctl list --no-legend --no-pager")
                out = r.stdout
                ok = (r.returncode == 0 and re.search(r"inet 10\.0\.2\.15/24 .*dynamic", out)
                      and re.search(r"default via 10\.0\.2\.2 ", out) and
                      re.search(r"ether\s+routable\s+configured", out))
                yield ("dhcp", bool(ok), "10.0.2.15/24 by DHCP, default via 10.0.2.2, "
                       "networkd: routable configured" if ok else out[-300:] + r.stderr[-200:])

                r = ssh_b("resolvectl dns --no-pager; readlink /etc/resolv.conf; "
                          "grep ^nameserver /etc/resolv.conf")
                ok = r.returncode == 0 and "10.0.2.3" in r.stdout and \
                    "stub-resolv.conf" in r.stdout and "nameserver 127.0.0.53" in r.stdout
                yield ("dns", ok, "resolved has 10.0.2.3 from DHCP; resolv.conf is its stub"
                       if ok else r.stdout[-300:] + r.stderr[-200:])

                r = ssh_b("systemctl is-system-running --wait; systemctl is-active "
                          "systemd-networkd systemd-resolved ssh vessel-ssh-keygen "
                          "vessel-ssh-authorized-keys; systemctl --failed --no-legend --plain")
                lines = r.stdout.split()
                ok = lines[:6] == ["running"] + ["active"] * 5
                yield ("units", ok, "running; networkd, resolved, ssh and vessel's two units "
                       "active" if ok else r.stdout[-300:] + r.stderr[-200:])

                # Passwords are refused over ssh (the documented one is for the console).
                r = ssh_b("sshd -T 2>/dev/null | grep -Ei '^(permitrootlogin|passwordauth"
                          "entication|kbdinteractiveauthentication) '")
                cfg = dict(ln.split(None, 1) for ln in r.stdout.strip().split("\n") if " " in ln)
                r2 = subprocess.run(
                    ["ssh", "-p", str(port_b), "-o", "BatchMode=yes", "-o",
                     "PreferredAuthentications=password,keyboard-interactive", "-o",
                     "PubkeyAuthentication=no", "-o", "StrictHostKeyChecking=no", "-o",
                     "UserKnownHostsFile=/dev/null", "root@127.0.0.1", "true"],
                    capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
                ok = (cfg.get("permitrootlogin") in ("without-password", "prohibit-password")
                      and cfg.get("passwordauthentication") == "no"
                      and cfg.get("kbdinteractiveauthentication") == "no"
                      and r2.returncode == 255 and "Permission denied (publickey)" in r2.stderr)
                yield ("no_password", ok, "sshd: root by key only; a password login is refused"
                       if ok else f"{cfg}; {r2.returncode} {r2.stderr[-200:]!r}")

                r = ssh_b("cat /root/.ssh/authorized_keys; stat -c %a /root/.ssh "
                          "/root/.ssh/authorized_keys")
                out = r.stdout.split("\n")
                ok = (r.returncode == 0 and sum(pub in ln for ln in out) == 1 and
                      out[0].startswith("# BEGIN vessel") and "700" in out and "600" in out)
                yield ("authorized_keys", ok, "the --ssh-key key, once, 0700/0600"
                       if ok else r.stdout[-300:] + r.stderr[-200:])

                # iperf3 in the guest to an iperf3 server on the host's loopback.
                iport = free_port()
                iperf = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p",
                                          str(iport)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                time.sleep(0.5)
                r = ssh_b(f"iperf3 --version | head -n1; iperf3 -c 10.0.2.2 -p {iport} -t 2 -J",
                          timeout=180)
                m = re.search(r'"sum_received":\s*\{[^}]*"bits_per_second":\s*([\d.e+]+)',
                              r.stdout)
                ok = r.returncode == 0 and r.stdout.startswith("iperf 3") and m is not None
                yield ("iperf3", ok, f"{r.stdout.split(chr(10))[0]}: guest to host "
                       f"{float(m.group(1)) / 8 / 2**20:.1f} MiB/s over 2 s" if ok
                       else r.stdout[-300:] + r.stderr[-200:])

                t = wait_ssh(ssh_a, "A", t0, dead_a)
                self.measure.append(("start to ssh login (interp)", t))
                r = ssh_a("echo TOKEN-$((6*7)); id -un; hostname")
                ok = r.returncode == 0 and r.stdout.split() == ["TOKEN-42", "root",
                                                                  HOSTNAME]
                yield ("ssh_a", ok, f"vessel ssh A: a command as root {t:.0f} s after start"
                       if ok else f"status {r.returncode}: {r.stdout!r} {r.stderr[-200:]!r}")

                # Each VM made its own host keys, and the host learned them.
                keys = {}
                for name, run in (("A", ssh_a), ("B", ssh_b)):
                    r = run("cat /etc/ssh/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_rsa_key.pub "
                            "/etc/ssh/ssh_host_ecdsa_key.pub")
                    keys[name] = [ln.split()[1] for ln in r.stdout.strip().split("\n")
                                  if len(ln.split()) > 1]
                learned = {}
                for name, path in (("A", os.path.join(store, "vms", "net-a", "known_hosts")),
                                   ("B", known_b)):
                    try:
                        with open(path) as f:
                            learned[name] = {ln.split()[2] for ln in f if len(ln.split()) > 2}
                    except OSError:
                        learned[name] = set()
                ok = (len(keys["A"]) == 3 and len(keys["B"]) == 3 and
                      not set(keys["A"]) & set(keys["B"]) and
                      keys["A"][0] in learned["A"] and keys["B"][0] in learned["B"])
                yield ("host_keys", ok, "ed25519, rsa and ecdsa of A and B all differ; each VM's "
                       "known_hosts has its own" if ok else f"A {keys['A']} B {keys['B']} "
                       f"learned {learned}")

                t1 = time.monotonic()
                r = mgr("stop", "net-a", "--timeout", "120", timeout=180)
                try:
                    ssh_b("systemctl poweroff", timeout=60)  # (its console is not logged in)
                except subprocess.TimeoutExpired:
                    pass
                rc = vb.wait_exit(POWEROFF_TIMEOUT)
                ok = r.returncode == 0 and rc == 0
                yield ("stop", ok, f"vessel stop A and B's poweroff in {time.monotonic() - t1:.0f} "
                       "s" if ok else f"stop A: {r.returncode} {guest.first_line(r.stderr)}; "
                       f"B exit status {rc}")
            finally:
                if iperf and iperf.poll() is None:
                    iperf.kill()
                    iperf.wait()
                if vb:
                    vb.close()
                try:
                    shutil.copy(os.path.join(store, "vms", "net-a", "console.log"),
                                self.log_path(group + "-A"))
                except OSError:
                    pass
                mgr("rm", "--force", "net-a")
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


TESTS = ["login", "host", "persist", "powerdown", "net"]


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
        suite.pristine = image
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
