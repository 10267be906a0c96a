#!/usr/bin/env python3
"""vessel networking suite (issue 12): virtio-net with user-mode networking
(libslirp) on the default busybox guest.

usage: tests/net/run.py [VESSEL] [-k NAME]... [--list] [--timeout S]

The default initramfs does not carry the virtio-net driver: the suite appends
virtio_mmio's neighbours virtio_net.ko, net_failover.ko and failover.ko from
the default guest's module tree (as tests/guest/run.py does for virtio_input).
Groups:
  user       DHCP lease 10.0.2.15, --mac seen by the guest, an HTTP download from
             a server this script runs on the host's loopback (through 10.0.2.2)
             with its sha256, UDP through 10.0.2.2 (a DNS server of its own on 127.0.0.1:53), DNS at 10.0.2.3 answered by
             the host's resolver (when it answers the host), a hostfwd port reaching busybox httpd in the guest,
             the VM process sandboxed (Seccomp 2), guest reboot (the backend and
             its forward survive), poweroff, clean stderr
  restrict   restrict=on: DHCP still answers, the host's server is out of reach,
             the forwarded port still reaches the guest
  publish    --publish HOSTPORT:GUESTPORT alone reaches busybox httpd in the guest
  snapshot   a snapshot of a guest on user networking (PUT /snapshot/create), loaded
             in a new VM process: address and MAC kept, a download from the host
             with its sha256, the forward reaching the guest's server again
  ssh_cmd    vessel ssh: the ssh command for a stored VM's published port 22, refusals
  isolation  two VMs on user networking: the second cannot reach the first's
             listener at 10.0.2.15 (its own address) nor see its MAC
  tap        (root only) a tap made for the test with a host address: an HTTP download
             from the host with its sha256, the host reaching busybox httpd in the
             guest, a second VM on the same tap and an unprivileged user refused with
             one line each
  vsock      virtio-vsock with Firecracker's host convention: a 1 MiB echo host->guest
             ("CONNECT <port>" on the VM's socket, "OK <hostport>", sha256) and
             guest->host (to "<path>_<port>", sha256), a port nobody listens on either
             way (socket closed / ECONNRESET), a bad CONNECT line (socket closed),
             24 connections at once, sandboxed,
             guest reboot, the socket file removed at exit. The guest side is
             tests/net/vsock_guest.c, cross-compiled with riscv64-linux-gnu-gcc into
             the initramfs with the vsock modules.
  vsock_in_use  a --vsock path a live program listens on: refused, its socket kept
  bad_*      malformed --net/--mac/--vsock specs, a host port already in use, a tap that
             does not exist: one line on stderr, non-zero exit, nothing booted
Every check prints PASS/FAIL; the last line is "net: N passed, N failed".
Python 3 standard library only.
"""
import argparse
import functools
import hashlib
import http.server
import importlib.util
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# The guest suite's console driver (VM: boot, sh, wait_exit) and helpers.
_spec = importlib.util.spec_from_file_location("guest_run", os.path.join(ROOT, "tests/guest/run.py"))
G = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(G)

NET_MODULES = ["kernel/net/core/failover.ko.xz", "kernel/drivers/net/net_failover.ko.xz",
               "kernel/drivers/net/virtio_net.ko.xz"]
# Load the drivers, bring eth0 up.
LOAD = ("kv=/lib/modules/$(uname -r)/kernel; insmod $kv/drivers/virtio/virtio_mmio.ko.xz; "
        "for m in net/core/failover drivers/net/net_failover drivers/net/virtio_net; do "
        "insmod $kv/$m.ko.xz || exit 1; done; i=0; "
        "while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do usleep 50000; i=$((i+1)); done; "
        "ip link set eth0 up")
# udhcpc runs this for its events: configure the lease it got (busybox exports ip, mask as a
# prefix length, router).
DHCP_SCRIPT = ("printf '#!/bin/sh\\n[ \"$1\" = bound ] || exit 0\\n"
               "ip addr add $ip/$mask dev $interface\\n"
               "[ -z \"$router\" ] || ip route add default via $router\\n' >/tmp/dhcp.sh; "
               "chmod +x /tmp/dhcp.sh")
DHCP = "udhcpc -i eth0 -n -q -t 5 -T 2 -s /tmp/dhcp.sh 2>&1"
MAC = "52:54:00:ab:cd:ef"


class FakeDns:
    """A DNS server on 127.0.0.1:53 (the guest reaches it as 10.0.2.2; busybox has no UDP
    client with a port of choice) answering every A query with 10.9.8.7. Needs the port:
    self.ok is False when it cannot bind it."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.s.bind(("127.0.0.1", 53))
            self.ok = True
        except OSError:
            self.ok = False
            return
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                q, a = self.s.recvfrom(2048)
            except OSError:
                return
            if len(q) < 12:
                continue
            # header: same id, QR + RD + RA, one question, one answer; the question echoed;
            # the answer points at the name (0xc00c): A, IN, TTL 60, 10.9.8.7
            qtype = q[-4:-2]
            ans = (b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x0a\x09\x08\x07"
                   if qtype == b"\x00\x01" else b"")
            hdr = q[:2] + b"\x81\x80\x00\x01" + (b"\x00\x01" if ans else b"\x00\x00") + b"\x00\x00\x00\x00"
            self.s.sendto(hdr + q[12:] + ans, a)

    def close(self):
        self.s.close()


def host_resolver_answers():
    """Does the host's first resolv.conf nameserver answer a query (any rcode)? Then the
    guest's 10.0.2.3 must too."""
    try:
        with open("/etc/resolv.conf") as f:
            ns = [ln.split()[1] for ln in f if ln.startswith("nameserver") and "." in ln]
    except (OSError, IndexError):
        return False
    if not ns:
        return False
    q = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    try:
        s.sendto(q, (ns[0], 53))
        return s.recv(2048)[:2] == b"\x12\x34"
    except OSError:
        return False
    finally:
        s.close()


def api(sock, method, path, body=None, timeout=30):
    """One request to a VM's API socket with curl: (status, body text)."""
    cmd = ["curl", "-s", "-S", "--max-time", str(timeout), "--unix-socket", sock, "-X", method,
           "-o", "-", "-w", "\n%{http_code}", f"http://localhost{path}"]
    data = None
    if body is not None:
        data = json.dumps(body)
        cmd += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
    r = subprocess.run(cmd, capture_output=True, text=True, input=data, timeout=timeout + 5)
    if r.returncode != 0:
        return 0, r.stderr.strip()
    text, _, code = r.stdout.rpartition("\n")
    return int(code), text


def wait_path(path, timeout=10):
    end = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.05)
    return os.path.exists(path)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


class HttpServer:
    """A file server on 127.0.0.1 (the guest reaches it as 10.0.2.2)."""

    def __init__(self, directory, host="127.0.0.1"):
        self.srv = http.server.ThreadingHTTPServer(
            (host, 0), functools.partial(QuietHandler, directory=directory))
        self.port = self.srv.server_address[1]
        self.t = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.t.start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def host_get(port, path, timeout=10, host="127.0.0.1"):
    """GET http://host:port/path by hand (urllib would use a proxy from the environment)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
    head, _, body = data.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode("latin-1"), body


class Suite(G.Suite):  # the tap group is added below (TapSuite)
    def vm(self, group, net, extra=(), memory="256M", log_suffix=""):
        # --overcommit: admission is not under test (the isolation group runs two VMs, and
        # other suites may run VMs on this host).
        argv = [self.target.binary, "run", "--overcommit", "--memory", memory, "--initrd",
                self.net_initrd,
                "--net", net] + list(extra)
        return G.VM(argv, self.log_path(group + log_suffix))

    def up(self, vm):
        """Boot to the shell, quiet the kernel, load the drivers."""
        self.check_boot(vm)
        vm.sh("dmesg -n 1")
        st, out = vm.sh(LOAD, timeout=60)
        if st != 0:
            raise G.CheckFailed(f"loading virtio_net: status {st}: {' | '.join(out)[-200:]}")

    def dhcp(self, vm):
        vm.sh(DHCP_SCRIPT)
        st, out = vm.sh(DHCP, timeout=60)
        lease = any("lease of 10.0.2.15 obtained" in ln for ln in out)
        st2, addr = vm.sh("ip -4 addr show dev eth0 | grep inet")
        ok = st == 0 and lease and any("10.0.2.15/24" in ln for ln in addr)
        return ok, " | ".join(out + addr)[-300:]

    def t_user(self, group):
        checks = ["boot", "mac", "dhcp", "mtu", "http_fetch", "udp", "dns", "hostfwd", "sandboxed",
                  "reboot", "after_reboot", "poweroff", "stderr_clean"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-net-")
            blob = os.urandom(3 << 20)
            with open(os.path.join(tmp, "blob"), "wb") as f:
                f.write(blob)
            want = hashlib.sha256(blob).hexdigest()
            srv = HttpServer(tmp)
            echo = FakeDns()
            hport = free_port()
            vm = self.vm(group, f"user,hostfwd=tcp:127.0.0.1:{hport}-:8080", ["--mac", MAC])
            try:
                self.up(vm)
                yield ("boot", True, "")
                st, out = vm.sh("cat /sys/class/net/eth0/address")
                yield ("mac", out[-1:] == [MAC], f"{out!r}")
                yield ("dhcp",) + self.dhcp(vm)
                # user networking offers a 65520-byte MTU (VIRTIO_NET_F_MTU): the fetch below
                # and the hostfwd answer then travel in 64 KiB frames
                st, out = vm.sh("cat /sys/class/net/eth0/mtu")
                yield ("mtu", out[-1:] == ["65520"], f"{out!r}")
                t0 = time.monotonic()
                st, out = vm.sh(f"wget -q -T 20 -O /tmp/blob http://10.0.2.2:{srv.port}/blob && "
                                "sha256sum /tmp/blob", timeout=180)
                dt = time.monotonic() - t0
                got = out[-1].split()[0] if out and out[-1].split() else ""
                yield ("http_fetch", st == 0 and got == want,
                       f"3 MiB in {dt:.1f} s" if got == want else f"status {st}: {out!r}")
                # UDP out and back through libslirp's host socket (inside the sandbox)
                if echo.ok:
                    st, out = vm.sh("nslookup -type=a vessel.test 10.0.2.2 2>&1", timeout=30)
                    yield ("udp", any("10.9.8.7" in ln for ln in out), " | ".join(out)[-200:])
                else:
                    yield ("udp", True, "skipped: 127.0.0.1:53 is taken on this host")
                # DNS at 10.0.2.3 reaches the host's resolver (any answer, NXDOMAIN included)
                if host_resolver_answers():
                    st, out = vm.sh("nslookup -timeout=3 example.com 10.0.2.3 2>&1", timeout=30)
                    ok = not any("timed out" in ln or "no servers" in ln for ln in out) and any(
                        "example.com" in ln for ln in out)
                    yield ("dns", ok, " | ".join(out)[-200:])
                else:
                    yield ("dns", True, "skipped: the host's resolver does not answer")
                vm.sh("mkdir -p /tmp/www; echo served-by-guest-$((6*7)) >/tmp/www/hello; "
                      "httpd -p 8080 -h /tmp/www")
                try:
                    line, bodytext = host_get(hport, "/hello")
                    ok = "200" in line and bodytext == b"served-by-guest-42\n"
                    yield ("hostfwd", ok, f"{line}: {bodytext[:60]!r}")
                except OSError as e:
                    yield ("hostfwd", False, f"127.0.0.1:{hport}: {e}")
                yield ("sandboxed",) + seccomp_mode(vm.proc.pid)
                # A guest reboot builds a new machine and device on the same backend: the
                # forward and the network stay.
                vm.send("reboot\n")
                vm.wait_marker(2, self.opts.timeout)
                yield ("reboot", True, "")
                vm.sh("dmesg -n 1")
                st, out = vm.sh(LOAD, timeout=60)
                ok, detail = self.dhcp(vm)
                if ok:
                    vm.sh("mkdir -p /tmp/www; echo again >/tmp/www/hello; httpd -p 8080 -h /tmp/www")
                    try:
                        line, bodytext = host_get(hport, "/hello")
                        ok = bodytext == b"again\n"
                        detail = f"{line}: {bodytext[:60]!r}"
                    except OSError as e:
                        ok, detail = False, f"hostfwd after reboot: {e}"
                yield ("after_reboot", ok, detail)
                yield ("poweroff",) + self.check_poweroff(vm)
                yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()
                srv.close()
                echo.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_restrict(self, group):
        checks = ["boot", "dhcp", "outbound_blocked", "hostfwd", "poweroff"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-net-")
            with open(os.path.join(tmp, "f"), "w") as f:
                f.write("reachable\n")
            srv = HttpServer(tmp)
            hport = free_port()
            vm = self.vm(group, f"user,restrict=on,hostfwd=tcp:127.0.0.1:{hport}-:8080")
            try:
                self.up(vm)
                yield ("boot", True, "")
                yield ("dhcp",) + self.dhcp(vm)
                st, out = vm.sh(f"wget -q -T 5 -O - http://10.0.2.2:{srv.port}/f; echo rc=$?",
                                timeout=60)
                ok = "reachable" not in out and any(ln.startswith("rc=") and ln != "rc=0"
                                                    for ln in out)
                yield ("outbound_blocked", ok, " | ".join(out)[-200:])
                vm.sh("mkdir -p /tmp/www; echo in >/tmp/www/x; httpd -p 8080 -h /tmp/www")
                try:
                    line, bodytext = host_get(hport, "/x")
                    yield ("hostfwd", bodytext == b"in\n", f"{line}: {bodytext[:40]!r}")
                except OSError as e:
                    yield ("hostfwd", False, str(e))
                yield ("poweroff",) + self.check_poweroff(vm)
            finally:
                vm.close()
                srv.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_publish(self, group):
        """--publish HOSTPORT:GUESTPORT alone: user networking with a forward on loopback."""
        checks = ["boot", "published", "poweroff"]

        def body():
            hport = free_port()
            argv = [self.target.binary, "run", "--overcommit", "--memory", "256M", "--initrd",
                    self.net_initrd, "--publish", f"{hport}:8080"]
            vm = G.VM(argv, self.log_path(group))
            try:
                self.up(vm)
                yield ("boot", True, "")
                vm.sh(DHCP_SCRIPT)
                vm.sh(DHCP, timeout=60)
                vm.sh("mkdir -p /tmp/www; echo published >/tmp/www/p; httpd -p 8080 -h /tmp/www")
                try:
                    line, b = host_get(hport, "/p")
                    yield ("published", b == b"published\n", f"{line}: {b!r}")
                except OSError as e:
                    yield ("published", False, str(e))
                yield ("poweroff",) + self.check_poweroff(vm)
            finally:
                vm.close()

        self.run_group(group, checks, body)

    def t_snapshot(self, group):
        """A full-VM snapshot of a guest on user networking (Firecracker's API flow), loaded in
        a new VM process: the guest keeps its address and MAC, reaches the host again, and
        the host forward (a new libslirp with the snapshot's configuration) reaches the
        guest's server, which was started before the snapshot."""
        checks = ["boot", "dhcp", "before", "snapshot", "restored", "address", "http_fetch",
                  "hostfwd", "poweroff", "stderr_clean"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-netsnap-")
            blob = os.urandom(1 << 20)
            with open(os.path.join(tmp, "blob"), "wb") as f:
                f.write(blob)
            want = hashlib.sha256(blob).hexdigest()
            srv = HttpServer(tmp)
            hport = free_port()
            cfg = {"boot-source": {"kernel_image_path": self.guest["kernel"],
                                   "initrd_path": self.net_initrd, "boot_args": "console=ttyS0"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
                   "network-interfaces": [{"iface_id": "eth0", "guest_mac": MAC}],
                   "vessel": {"network": f"user,hostfwd=tcp:127.0.0.1:{hport}-:8080"}}
            cfgp = os.path.join(tmp, "vm.json")
            with open(cfgp, "w") as f:
                json.dump(cfg, f)
            s1, s2 = os.path.join(tmp, "one.sock"), os.path.join(tmp, "two.sock")
            sp, mp = os.path.join(tmp, "vm.snap"), os.path.join(tmp, "vm.mem")
            vm = G.VM([self.target.binary, "run", "--config-file", cfgp, "--api-sock", s1],
                      self.log_path(group))
            vm2 = None
            try:
                self.up(vm)
                yield ("boot", True, "")
                yield ("dhcp",) + self.dhcp(vm)
                vm.sh("mkdir -p /tmp/www; echo started-before-$((6*7)) >/tmp/www/hello; "
                      "httpd -p 8080 -h /tmp/www")
                try:
                    line, b = host_get(hport, "/hello")
                    yield ("before", b == b"started-before-42\n", f"{line}: {b!r}")
                except OSError as e:
                    yield ("before", False, str(e))
                st1, t1 = api(s1, "PATCH", "/vm", {"state": "Paused"})
                st2, t2 = api(s1, "PUT", "/snapshot/create", {
                    "snapshot_type": "Full", "snapshot_path": sp, "mem_file_path": mp})
                yield ("snapshot", st1 == 204 and st2 == 204, f"{st1} {t1} / {st2} {t2}")
                vm.close()  # the forward's host port is free again
                vm2 = G.VM([self.target.binary, "run", "--api-sock", s2],
                           self.log_path(group + "-restored"))
                wait_path(s2)
                st, t = api(s2, "PUT", "/snapshot/load", {
                    "snapshot_path": sp, "resume_vm": True,
                    "mem_backend": {"backend_type": "File", "backend_path": mp}})
                yield ("restored", st == 204, f"{st} {t}")
                st, addr = vm2.sh("ip -4 addr show dev eth0 | grep inet; "
                                  "cat /sys/class/net/eth0/address")
                yield ("address", any("10.0.2.15/24" in ln for ln in addr) and MAC in addr,
                       repr(addr))
                st, out = vm2.sh(f"wget -q -T 20 -O /tmp/blob http://10.0.2.2:{srv.port}/blob && "
                                 "sha256sum /tmp/blob", timeout=120)
                got = out[-1].split()[0] if out and out[-1].split() else ""
                yield ("http_fetch", st == 0 and got == want, f"status {st}: {out!r}"[-300:])
                try:
                    line, b = host_get(hport, "/hello")
                    yield ("hostfwd", b == b"started-before-42\n", f"{line}: {b!r}")
                except OSError as e:
                    yield ("hostfwd", False, f"127.0.0.1:{hport}: {e}")
                yield ("poweroff",) + self.check_poweroff(vm2)
                yield ("stderr_clean",) + self.check_stderr_clean(vm2)
            finally:
                vm.close()
                if vm2:
                    vm2.close()
                srv.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_ssh_cmd(self, group):
        """vessel ssh NAME: the ssh command line for a stored VM's published port 22 (VESSEL_SSH
        stands in for ssh: the busybox guest has no sshd), and one line when it cannot."""
        checks = ["no_port_22", "not_running", "argv"]

        def body():
            store = tempfile.mkdtemp(prefix="vessel-net-store-")
            env = dict(os.environ, VESSEL_STORE=store)
            v = self.target.binary
            hport = free_port()

            def run(*args, **kw):
                return subprocess.run([v] + list(args), env=kw.get("env", env),
                                      stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                      timeout=60)
            try:
                run("create", "plain", "--memory", "128M")
                run("create", "web", "--memory", "128M", "--publish", f"{hport}:22")
                p = run("ssh", "plain")
                yield ("no_port_22", p.returncode == 2 and p.stderr.count("\n") == 1 and
                       "no port 22" in p.stderr, p.stderr.strip())
                p = run("ssh", "web")
                yield ("not_running", p.returncode == 2 and "not running" in p.stderr,
                       p.stderr.strip())
                p = run("start", "web")
                if p.returncode != 0:
                    raise G.CheckFailed(f"vessel start: {p.stderr.strip()}")
                p = run("ssh", "web", "--", "uname", "-a", env=dict(env, VESSEL_SSH="echo"))
                want = f"-p {hport} "
                ok = (p.returncode == 0 and want in p.stdout and "-l root 127.0.0.1 uname -a"
                      in p.stdout and "web/known_hosts" in p.stdout)
                yield ("argv", ok, p.stdout.strip() + p.stderr.strip())
            finally:
                run("stop", "web", "--force")
                shutil.rmtree(store, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_isolation(self, group):
        checks = ["boot_a", "boot_b", "a_serves", "b_cannot_reach_a", "b_sees_no_a_mac"]

        def body():
            hport = free_port()
            a = self.vm(group, f"user,hostfwd=tcp:127.0.0.1:{hport}-:8080",
                        ["--mac", "52:54:00:00:00:0a"], log_suffix="-a")
            b = None
            try:
                self.up(a)
                yield ("boot_a", True, "")
                b = self.vm(group, "user", ["--mac", "52:54:00:00:00:0b"], log_suffix="-b")
                self.up(b)
                ok_b, detail_b = self.dhcp(b)
                ok_a, detail_a = self.dhcp(a)
                yield ("boot_b", ok_a and ok_b, detail_a + " || " + detail_b)
                # A listens on an address of its own besides its lease: on a shared link B
                # would reach it (ARP would find A); behind slirp nothing answers for it.
                a.sh("ip addr add 10.0.2.20/24 dev eth0; mkdir -p /tmp/www; echo vm-a >/tmp/www/who; "
                     "httpd -p 8080 -h /tmp/www")
                try:
                    line, bodytext = host_get(hport, "/who")
                    yield ("a_serves", bodytext == b"vm-a\n", f"{line}: {bodytext!r}")
                except OSError as e:
                    yield ("a_serves", False, str(e))
                st, out = b.sh("wget -q -T 5 -O - http://10.0.2.20:8080/who; echo rc=$?",
                               timeout=60)
                ok = "vm-a" not in out and "rc=0" not in out
                yield ("b_cannot_reach_a", ok, " | ".join(out)[-200:])
                # Nothing A sends reaches B's link: no ARP answer, no neighbour with A's MAC.
                b.sh("ping -c 1 -W 2 10.0.2.20 >/dev/null 2>&1; true", timeout=30)
                st, out = b.sh("cat /proc/net/arp")
                yield ("b_sees_no_a_mac", not any("52:54:00:00:00:0a" in ln for ln in out),
                       " | ".join(out)[-200:])
            finally:
                for v in (a, b):
                    if v:
                        v.close()

        self.run_group(group, checks, body)

    def t_bad(self, group, args, want_in_err, hold_port=False):
        """vessel run ARGS must fail before booting: exit non-zero, one line on stderr."""
        checks = ["refused"]

        def body():
            held = None
            a = [x.replace("{PORT}", "0") for x in args]
            if hold_port:
                held = socket.socket()
                held.bind(("127.0.0.1", 0))
                held.listen(1)
                port = held.getsockname()[1]
                a = [x.replace("{PORT}", str(port)) for x in args]
            try:
                argv = [self.target.binary, "run", "--overcommit", "--memory", "256M"] + a
                try:
                    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                       timeout=G.BAD_INPUT_TIMEOUT)
                except subprocess.TimeoutExpired:
                    yield ("refused", False, f"still running after {G.BAD_INPUT_TIMEOUT} s")
                    return
                err = p.stderr.decode("utf-8", "replace")
                lines = [ln for ln in err.split("\n") if ln.strip()]
                ok = (p.returncode != 0 and len(lines) == 1 and want_in_err in lines[0]
                      and G.MARKER not in p.stdout.decode("utf-8", "replace"))
                yield ("refused", ok, f"status {p.returncode}: {err.strip()[:200]!r}")
            finally:
                if held:
                    held.close()

        self.run_group(group, checks, body)


TAP_NET = "172.31.213"  # a /24 the tap test puts on the host for its run


class TapSuite:
    """The tap group, a mixin for Suite."""

    def t_tap(self, group):
        checks = ["setup", "boot", "tso", "http_fetch", "rx_tso", "host_to_guest", "upload_tso",
                  "busy", "not_permitted", "poweroff"]

        def per_packet(vm, way):
            st, out = vm.sh(f"echo $(cat /sys/class/net/eth0/statistics/{way}_bytes) "
                            f"$(cat /sys/class/net/eth0/statistics/{way}_packets)")
            try:
                b, p = (int(x) for x in out[-1].split())
                return b / max(p, 1), f"{b} bytes in {p} {way} packets"
            except (ValueError, IndexError):
                return 0, repr(out)
        if os.geteuid() != 0 or not os.path.exists("/dev/net/tun"):
            print(f"SKIP {group}: needs root and /dev/net/tun", flush=True)
            return

        def body():
            name = f"vstap{os.getpid() % 100000}"
            tmp = tempfile.mkdtemp(prefix="vessel-net-")
            os.chmod(tmp, 0o755)
            blob = os.urandom(2 << 20)
            with open(os.path.join(tmp, "blob"), "wb") as f:
                f.write(blob)
            want = hashlib.sha256(blob).hexdigest()
            vm = srv = None
            cmds = [["ip", "tuntap", "add", name, "mode", "tap"],
                    ["ip", "addr", "add", f"{TAP_NET}.1/24", "dev", name],
                    ["ip", "link", "set", name, "up"]]
            try:
                for c in cmds:
                    r = subprocess.run(c, capture_output=True, text=True)
                    if r.returncode != 0:
                        raise G.CheckFailed(f"{' '.join(c)}: {r.stderr.strip()}")
                srv = HttpServer(tmp, host=f"{TAP_NET}.1")
                yield ("setup", True, name)
                vm = self.vm(group, f"tap,ifname={name}", ["--mac", "52:54:00:77:00:02"])
                self.up(vm)
                vm.sh(f"ip addr add {TAP_NET}.2/24 dev eth0")
                yield ("boot", True, "")
                # the tap is opened with IFF_VNET_HDR: the guest negotiated GUEST_TSO4/6 and
                # HOST_TSO4/6 (bits 7, 8, 11, 12 of the virtio features sysfs shows)
                st, out = vm.sh("cat /sys/class/net/eth0/device/features")
                bits = out[-1] if out else ""
                yield ("tso", len(bits) >= 13 and all(bits[i] == "1" for i in (7, 8, 11, 12)),
                       bits)
                st, out = vm.sh(f"wget -q -T 20 -O /tmp/blob http://{TAP_NET}.1:{srv.port}/blob "
                                "&& sha256sum /tmp/blob", timeout=180)
                got = out[-1].split()[0] if out and out[-1].split() else ""
                yield ("http_fetch", st == 0 and got == want, f"status {st}: {out[-1:]!r}")
                # the host left the segmenting to the guest (TUNSETOFFLOAD): on average a
                # received packet is far larger than the tap's 1500-byte MTU
                avg, detail = per_packet(vm, "rx")
                yield ("rx_tso", avg > 4000, detail)
                vm.sh("mkdir -p /tmp/www; echo over-tap >/tmp/www/t; httpd -p 8080 -h /tmp/www")
                try:
                    line, b = host_get(8080, "/t", host=f"{TAP_NET}.2")
                    yield ("host_to_guest", b == b"over-tap\n", f"{line}: {b!r}")
                except OSError as e:
                    yield ("host_to_guest", False, str(e))
                # guest to host in 64 KiB segments the host's tap cuts up: the bytes arrive whole
                vm.sh("cp /tmp/blob /tmp/www/blob")
                try:
                    line, b = host_get(8080, "/blob", host=f"{TAP_NET}.2", timeout=120)
                    avg, detail = per_packet(vm, "tx")
                    yield ("upload_tso", hashlib.sha256(b).hexdigest() == want and avg > 4000,
                           f"{line}: {len(b)} bytes; {detail}")
                except OSError as e:
                    yield ("upload_tso", False, str(e))
                # One process per tap (no multiqueue): a second VM is told so.
                p = subprocess.run([self.target.binary, "run", "--overcommit", "--net",
                                    f"tap,ifname={name}"], stdin=subprocess.DEVNULL,
                                   capture_output=True, text=True, timeout=G.BAD_INPUT_TIMEOUT)
                lines = [ln for ln in p.stderr.split("\n") if ln.strip()]
                yield ("busy", p.returncode != 0 and len(lines) == 1 and "in use" in lines[0],
                       f"status {p.returncode}: {p.stderr.strip()[:200]!r}")
                # Without CAP_NET_ADMIN and not the tap's owner (boot files readable by nobody).
                for f in ("fw", "kernel"):
                    shutil.copy(self.guest[f], os.path.join(tmp, f))
                    os.chmod(os.path.join(tmp, f), 0o644)
                p = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534",
                                    "--clear-groups", self.target.binary, "run", "--overcommit",
                                    "--firmware", os.path.join(tmp, "fw"), "--kernel",
                                    os.path.join(tmp, "kernel"), "--net", f"tap,ifname={name}"],
                                   stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=G.BAD_INPUT_TIMEOUT)
                lines = [ln for ln in p.stderr.split("\n") if ln.strip()]
                yield ("not_permitted",
                       p.returncode != 0 and len(lines) == 1 and "not permitted" in lines[0],
                       f"status {p.returncode}: {p.stderr.strip()[:200]!r}")
                yield ("poweroff",) + self.check_poweroff(vm)
            finally:
                if vm:
                    vm.close()
                if srv:
                    srv.close()
                subprocess.run(["ip", "link", "del", name], capture_output=True)
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)


# ---- vsock (virtio-vsock, Firecracker's host-side convention) ----

VSOCK_MODULES = ["kernel/net/vmw_vsock/vsock.ko.xz",
                 "kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko.xz",
                 "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz"]
VSOCK_LOAD = ("kv=/lib/modules/$(uname -r)/kernel; insmod $kv/drivers/virtio/virtio_mmio.ko.xz; "
              "for m in vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport; do "
              "insmod $kv/net/vmw_vsock/$m.ko.xz || exit 1; done; i=0; "
              "while ! grep -q vsock /proc/net/protocols 2>/dev/null && [ $i -lt 100 ]; do "
              "usleep 50000; i=$((i+1)); done")
VSOCK_GUEST_PORT = 5000
VSOCK_HOST_PORT = 6000


def vsock_host_connect(path, port, timeout=30):
    """Firecracker's convention: CONNECT <port>\\n on the VM's socket; returns (socket,
    answer line) where the line is b"" if vessel closed the socket instead."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            break
        line += b
    return s, line


def vsock_echo_roundtrip(s, data):
    """Send data (then shut the write side) while reading the echo; returns what came back."""
    got = []

    def reader():
        while True:
            b = s.recv(65536)
            if not b:
                return
            got.append(b)

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    return b"".join(got)


class UnixEcho:
    """A Unix socket server at path echoing every connection (a thread each)."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.bind(path)
        # the sandboxed VM process runs as another user when the suite runs as root
        os.chmod(path, 0o777)
        self.s.listen(16)
        self.conns = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns += 1
            threading.Thread(target=self._echo, args=(c,), daemon=True).start()

    @staticmethod
    def _echo(c):
        with c:
            while True:
                b = c.recv(65536)
                if not b:
                    return
                c.sendall(b)

    def close(self):
        self.s.close()


class VsockSuite:
    def vsock_vm(self, group, path, extra=()):
        argv = [self.target.binary, "run", "--overcommit", "--memory", "256M", "--initrd",
                self.net_initrd, "--vsock", f"cid=3,path={path}"] + list(extra)
        return G.VM(argv, self.log_path(group))

    def t_vsock(self, group):
        checks = ["boot", "driver", "host_to_guest", "throughput", "refused_host", "bad_line", "many",
                  "guest_to_host", "refused_guest", "sandboxed", "reboot", "after_reboot",
                  "poweroff", "socket_removed", "stderr_clean"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-vsock-")
            os.chmod(tmp, 0o755)  # the VM process (another user under root) connects in here
            path = os.path.join(tmp, "v.sock")
            echo = UnixEcho(f"{path}_{VSOCK_HOST_PORT}")
            vm = self.vsock_vm(group, path)
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                vm.sh("dmesg -n 1")
                st, out = vm.sh(VSOCK_LOAD, timeout=60)
                st2, cid = vm.sh("cat /sys/bus/virtio/devices/*/device | grep -c 0x0013")
                yield ("driver", st == 0 and st2 == 0, " | ".join(out + cid)[-200:])
                vm.sh(f"(/bin/vsockt echo {VSOCK_GUEST_PORT} >/tmp/echo.log 2>&1 &)")
                time.sleep(0.5)
                data = os.urandom(1 << 20)
                t0 = time.monotonic()
                s, line = vsock_host_connect(path, VSOCK_GUEST_PORT)
                with s:
                    back = vsock_echo_roundtrip(s, data) if line.startswith(b"OK ") else b""
                secs = time.monotonic() - t0
                ok = line.startswith(b"OK ") and hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
                yield ("host_to_guest", ok, f"answer {line!r}, {len(back)} of {len(data)} bytes back")
                yield ("throughput", ok, f"1 MiB each way in {secs:.2f} s "
                       f"({2 * len(data) / secs / 1e6:.1f} MB/s both directions)")
                s, line = vsock_host_connect(path, VSOCK_GUEST_PORT + 1)
                with s:
                    rest = s.recv(16) if line == b"" else b"?"
                yield ("refused_host", line == b"" and rest == b"",
                       f"answer {line!r} (expected the socket closed)")
                # not Firecracker's CONNECT line: closed without an answer
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(30)
                with s:
                    s.connect(path)
                    s.sendall(b"CONNECT five\n")
                    try:
                        rest = s.recv(16)
                    except OSError as e:
                        rest = repr(e).encode()
                yield ("bad_line", rest == b"", f"got {rest!r} (expected the socket closed)")
                # many connections at once, each an echo
                results = []

                def one(i):
                    try:
                        s, line = vsock_host_connect(path, VSOCK_GUEST_PORT)
                        with s:
                            msg = (f"conn-{i}-" * 1000).encode()
                            results.append(line.startswith(b"OK ") and vsock_echo_roundtrip(s, msg) == msg)
                    except OSError:
                        results.append(False)

                ts = [threading.Thread(target=one, args=(i,)) for i in range(24)]
                for t in ts:
                    t.start()
                for t in ts:
                    t.join(120)
                yield ("many", len(results) == 24 and all(results),
                       f"{sum(results)} of 24 concurrent echoes")
                st, out = vm.sh("head -c 1048576 /dev/urandom >/tmp/d; sha256sum </tmp/d; "
                                f"/bin/vsockt connect 2 {VSOCK_HOST_PORT} </tmp/d | sha256sum",
                                timeout=120)
                sums = [ln.split()[0] for ln in out if re.match(r"^[0-9a-f]{64}", ln)]
                yield ("guest_to_host", st == 0 and len(sums) == 2 and sums[0] == sums[1]
                       and echo.conns >= 1, " | ".join(out)[-300:])
                st, out = vm.sh(f"/bin/vsockt connect 2 {VSOCK_HOST_PORT + 1} </dev/null")
                yield ("refused_guest", any("Connection reset by peer" in ln for ln in out),
                       " | ".join(out)[-200:])
                yield ("sandboxed",) + seccomp_mode(vm.proc.pid)
                vm.send("reboot\n")
                vm.wait_marker(2, self.opts.timeout)
                yield ("reboot", True, "")
                vm.sh("dmesg -n 1")
                vm.sh(VSOCK_LOAD, timeout=60)
                vm.sh(f"(/bin/vsockt echo {VSOCK_GUEST_PORT} >/tmp/echo.log 2>&1 &)")
                time.sleep(0.5)
                s, line = vsock_host_connect(path, VSOCK_GUEST_PORT)
                with s:
                    back = vsock_echo_roundtrip(s, b"again\n") if line.startswith(b"OK ") else b""
                yield ("after_reboot", back == b"again\n", f"answer {line!r}, echo {back!r}")
                yield ("poweroff",) + self.check_poweroff(vm)
                # the monitor of the sandboxed process removes the socket file
                deadline = time.monotonic() + 5
                while os.path.exists(path) and time.monotonic() < deadline:
                    time.sleep(0.1)
                yield ("socket_removed", not os.path.exists(path), path)
                yield ("stderr_clean",) + self.check_stderr_clean(vm)
            finally:
                vm.close()
                echo.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_vsock_snapshot(self, group):
        """A VM with vsock snapshotted (Firecracker's API flow) and loaded in a new process: the
        connection open at the snapshot is reset in the guest (TRANSPORT_RESET event; its echo
        child exits), the guest's listener stays, and the host reaches it again through the
        new process's socket."""
        checks = ["boot", "echo_before", "snapshot", "restored", "old_conn_reset",
                  "echo_after", "poweroff"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-vsnap-")
            os.chmod(tmp, 0o755)
            path = os.path.join(tmp, "v.sock")
            cfg = {"boot-source": {"kernel_image_path": self.guest["kernel"],
                                   "initrd_path": self.net_initrd, "boot_args": "console=ttyS0"},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 256},
                   "vsock": {"guest_cid": 3, "uds_path": path}}
            cfgp = os.path.join(tmp, "vm.json")
            with open(cfgp, "w") as f:
                json.dump(cfg, f)
            s1, s2 = os.path.join(tmp, "one.sock"), os.path.join(tmp, "two.sock")
            sp, mp = os.path.join(tmp, "vm.snap"), os.path.join(tmp, "vm.mem")
            vm = G.VM([self.target.binary, "run", "--config-file", cfgp, "--api-sock", s1],
                      self.log_path(group))
            vm2 = None
            held = None
            count = "ps | grep -c '[v]sockt echo'"
            try:
                self.check_boot(vm)
                yield ("boot", True, "")
                vm.sh("dmesg -n 1")
                vm.sh(VSOCK_LOAD, timeout=60)
                vm.sh(f"(/bin/vsockt echo {VSOCK_GUEST_PORT} >/tmp/echo.log 2>&1 &)")
                time.sleep(0.5)
                held, line = vsock_host_connect(path, VSOCK_GUEST_PORT)
                back = b""
                if line.startswith(b"OK "):  # an echo, the connection kept open
                    held.sendall(b"before\n")
                    while len(back) < 7:
                        b = held.recv(64)
                        if not b:
                            break
                        back += b
                st, n = vm.sh(count)
                yield ("echo_before", back == b"before\n" and n[-1:] == ["2"],
                       f"{line!r} {back!r}, echo processes {n!r}")
                st1, t1 = api(s1, "PATCH", "/vm", {"state": "Paused"})
                st2, t2 = api(s1, "PUT", "/snapshot/create", {
                    "snapshot_type": "Full", "snapshot_path": sp, "mem_file_path": mp})
                yield ("snapshot", st1 == 204 and st2 == 204, f"{st1} {t1} / {st2} {t2}")
                vm.close()
                held.close()
                held = None
                vm2 = G.VM([self.target.binary, "run", "--api-sock", s2],
                           self.log_path(group + "-restored"))
                wait_path(s2)
                st, t = api(s2, "PUT", "/snapshot/load", {
                    "snapshot_path": sp, "resume_vm": True,
                    "mem_backend": {"backend_type": "File", "backend_path": mp}})
                yield ("restored", st == 204, f"{st} {t}")
                n = []
                for _ in range(20):
                    st, n = vm2.sh(count)
                    if n[-1:] == ["1"]:
                        break
                    time.sleep(0.5)
                yield ("old_conn_reset", n[-1:] == ["1"], f"echo processes {n!r}")
                s, line = vsock_host_connect(path, VSOCK_GUEST_PORT)
                with s:
                    back = vsock_echo_roundtrip(s, b"after\n") if line.startswith(b"OK ") else b""
                yield ("echo_after", back == b"after\n", f"{line!r} {back!r}")
                yield ("poweroff",) + self.check_poweroff(vm2)
            finally:
                if held:
                    held.close()
                vm.close()
                if vm2:
                    vm2.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)

    def t_vsock_in_use(self, group):
        """A path a live program listens on: one line, nothing booted; the socket stays."""
        checks = ["refused", "socket_kept"]

        def body():
            tmp = tempfile.mkdtemp(prefix="vessel-vsock-")
            path = os.path.join(tmp, "v.sock")
            held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            held.bind(path)
            held.listen(1)
            try:
                argv = [self.target.binary, "run", "--overcommit", "--memory", "256M",
                        "--vsock", f"cid=3,path={path}"]
                p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                   timeout=G.BAD_INPUT_TIMEOUT)
                err = p.stderr.decode("utf-8", "replace")
                lines = [ln for ln in err.split("\n") if ln.strip()]
                yield ("refused", p.returncode != 0 and len(lines) == 1 and "in use" in lines[0],
                       f"status {p.returncode}: {err.strip()[:200]!r}")
                time.sleep(0.5)  # the monitor's clean-up must leave another program's socket
                yield ("socket_kept", os.path.exists(path), path)
            finally:
                held.close()
                shutil.rmtree(tmp, ignore_errors=True)

        self.run_group(group, checks, body)


class NetSuite(Suite, TapSuite, VsockSuite):
    pass


def seccomp_mode(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            st = f.read()
    except OSError as e:
        return False, str(e)
    m = re.search(r"^Seccomp:\s+(\d+)", st, re.M)
    return bool(m and m.group(1) == "2"), f"Seccomp {m.group(1) if m else '?'}"


def net_initrd(guest, tmp):
    """The default initramfs plus the virtio-net and vsock drivers with their dependencies,
    and the vsock test program (tests/net/vsock_guest.c, cross-compiled here)."""
    out = os.path.join(tmp, "initramfs-net.cpio.gz")
    mods = os.path.join(os.path.dirname(guest["initrd"]), "modules")
    kver = os.path.basename(os.path.realpath(mods))
    spec = "".join(f"file /lib/modules/{kver}/{m} {os.path.join(mods, m)} 0644 0 0\n"
                   for m in NET_MODULES + VSOCK_MODULES)
    vsockt = os.path.join(tmp, "vsockt")
    cc = os.environ.get("RISCV_CC", "riscv64-linux-gnu-gcc")
    r = subprocess.run([cc, "-static", "-O2", "-Wall", "-Werror", "-o", vsockt,
                        os.path.join(HERE, "vsock_guest.c")], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"net: building the guest's vsock program failed ({cc}, see "
                 f"scripts/host-deps.txt): {r.stderr.strip()[-300:]}")
    spec += f"file /bin/vsockt {vsockt} 0755 0 0\n"
    extra = os.path.join(tmp, "net.cpio.gz")
    r = subprocess.run([os.path.join(ROOT, "guest", "mkcpio.py"), "--gzip", "--mtime", "0",
                        "-o", extra, "-"], input=spec, text=True, capture_output=True)
    if r.returncode != 0:
        sys.exit(f"net: building the initramfs failed: {r.stderr.strip()}")
    with open(out, "wb") as f:
        for part in (guest["initrd"], extra):
            with open(part, "rb") as src:
                shutil.copyfileobj(src, f)
    return out


def build_tests(suite):
    T = []
    T.append(("user", suite.t_user, ()))
    T.append(("restrict", suite.t_restrict, ()))
    T.append(("isolation", suite.t_isolation, ()))
    T.append(("publish", suite.t_publish, ()))
    T.append(("snapshot", suite.t_snapshot, ()))
    T.append(("ssh_cmd", suite.t_ssh_cmd, ()))
    T.append(("tap", suite.t_tap, ()))
    T.append(("vsock", suite.t_vsock, ()))
    T.append(("vsock_snapshot", suite.t_vsock_snapshot, ()))
    T.append(("vsock_in_use", suite.t_vsock_in_use, ()))
    bad = [
        ("bad_net_kind", ["--net", "bridge"], "unknown network"),
        ("bad_net_option", ["--net", "user,foo=bar"], "unknown option"),
        ("bad_hostfwd", ["--net", "user,hostfwd=tcp::22"], "bad hostfwd"),
        ("bad_hostfwd_port", ["--net", "user,hostfwd=tcp::70000-:22"], "bad hostfwd"),
        ("bad_restrict", ["--net", "user,restrict=maybe"], "restrict"),
        ("bad_mtu", ["--net", "user,mtu=100000"], "mtu=100000"),
        ("bad_none_options", ["--net", "none,restrict=on"], "none"),
        ("bad_mac", ["--net", "user", "--mac", "01:00:5e:00:00:01"], "--mac"),
        ("bad_mac_no_net", ["--mac", "52:54:00:12:34:56"], "--mac needs a network"),
        ("bad_publish", ["--publish", "8080"], "--publish 8080"),
        ("bad_publish_tap", ["--net", "tap,ifname=x0", "--publish", "80:80"], "not a tap"),
        ("bad_vsock_cid", ["--vsock", "cid=2,path=/tmp/vessel-bad.sock"], "cid 2 is reserved"),
        ("bad_vsock_cid_nan", ["--vsock", "cid=x,path=/tmp/vessel-bad.sock"], "not a number"),
        ("bad_vsock_no_path", ["--vsock", "cid=3"], "missing path"),
        ("bad_vsock_option", ["--vsock", "cid=3,port=1,path=/tmp/v.sock"], "unknown option"),
        ("bad_vsock_long_path", ["--vsock", "cid=3,path=/tmp/" + "x" * 100], "too long"),
    ]
    for name, args, want in bad:
        T.append((name, suite.t_bad, (args, want)))
    T.append(("bad_tap_missing", suite.t_bad, (["--net", "tap,ifname=vsnosuch0"],
                                               "no such interface")))
    T.append(("bad_tap_spec", suite.t_bad, (["--net", "tap,name=x"], "tap,ifname=NAME")))
    T.append(("bad_port_in_use", suite.t_bad,
              (["--net", "user,hostfwd=tcp:127.0.0.1:{PORT}-:22"], "Address already in use",
               True)))
    return T


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("vessel", nargs="?", default=os.environ.get("VESSEL_BIN", "./vessel"))
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--log-dir", default=None)
    ap.add_argument("-v", "--verbose", action="store_true")
    opts = ap.parse_args()
    binary = os.path.abspath(opts.vessel)
    opts.log_dir = opts.log_dir or os.path.join(
        ROOT, "build", "test-logs", "net-" + os.path.basename(binary))
    os.makedirs(opts.log_dir, exist_ok=True)
    opts.no_build = True
    target = G.VesselTarget(binary)
    suite = NetSuite(target, opts, None)
    tests = build_tests(suite)
    if opts.list:
        for name, _, _ in tests:
            print(name)
        return 0
    guest = G.find_guest(opts)
    suite.guest = guest
    tmp = tempfile.mkdtemp(prefix="vessel-net-initrd-")
    try:
        suite.net_initrd = net_initrd(guest, tmp)
        for name, fn, args in tests:
            if opts.k and not any(k in name for k in opts.k):
                continue
            fn(name, *args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"net: {suite.passed} passed, {suite.failed} failed", flush=True)
    return 0 if suite.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
