#!/usr/bin/env python3
"""Networking, vessel against QEMU on the same backend (libslirp user networking, a
virtio-net device on virtio-mmio): the default busybox guest plus the virtio_net driver
(tests/net/run.py builds that initramfs), booted alternately under each emulator.

usage: bench/net.py [--runs N] [--size MiB] [--vessel PATH] [--qemu PATH] [--only vessel|qemu]
                    [--engine interp|jit] [--keep-logs DIR]

Measured per boot (medians over --runs boots each; boots alternate vessel, QEMU, ...):
  download   guest wget of a --size MiB file from an HTTP server on the host's loopback
             (through 10.0.2.2): host to guest throughput, MiB/s
  upload     the host fetches a --size MiB file from busybox httpd in the guest through a
             hostfwd port: guest to host throughput, MiB/s
  ping       guest ping of 10.0.2.2 (libslirp answers through a host ICMP socket), average
             round trip in ms over 20 pings
  request    the host's sequential HTTP GETs of a 16-byte file through the hostfwd port:
             median time per request in ms (a new connection and an httpd child each time)
The ratio column is vessel/QEMU: above 1 is better for throughputs, below 1 for times.
Each runs with its default MTU: vessel's user networking offers the guest 65520 (--net
user,mtu=N; docs/network.md), QEMU's 1500. VESSEL_NET_OPTS=",mtu=1500" (appended to
vessel's --net user spec) compares at QEMU's MTU.
--backend tap (http part, as root): the same measurements over a tap the benchmark makes
(vsbench0, the host 192.168.231.1/24, the guest .2; removed at the end), vessel --net
tap,ifname=vsbench0 against QEMU -netdev tap,ifname=vsbench0,script=no: both at the tap's
MTU, 1500. Skipped with a note when not root.

--part iperf3 (or all, the default) adds iperf3 on the Debian root disk (guest/build-rootfs.sh;
skipped with a note when it is not built): vessel --engine interp, vessel --engine jit and QEMU,
the same image (a copy each; measured once systemd reports the boot finished, so the first
boot's SSH host keys are made before), --cpus/-smp and --memory/-m alike, user networking with virtio-net on
virtio-mmio. Logged in on the console, the guest runs iperf3 -c 10.0.2.2 against an iperf3
server on the host's loopback: `send` guest to host, `recv` (-R) host to guest, --iperf-time
seconds each; the figures are iperf3's receiver summaries, medians over --runs boots, with
ratios to QEMU. The host's CPU model is printed first.
Exit status 0 when every boot completed (a benchmark, not a test).
Python 3 standard library only (and iperf3 on the host for --part iperf3).
"""
import argparse
import importlib.util
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
_spec = importlib.util.spec_from_file_location("net_run", os.path.join(ROOT, "tests/net/run.py"))
N = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(N)
G = N.G
# The Debian disk suite's console login (and the guest prompt it expects).
sys.path.insert(0, os.path.join(ROOT, "tests/guest"))
import run_disk as D  # noqa: E402

# D.login raises its own import's CheckFailed; the console driver G's.
FAILED = (G.CheckFailed, D.guest.CheckFailed, OSError, ValueError, KeyError,
          subprocess.TimeoutExpired)


NET_OPTS = os.environ.get("VESSEL_NET_OPTS", "")
# --backend tap: a tap the benchmark makes (as root), the host at TAP_HOST, the guest at
# TAP_GUEST; both emulators use it in turn, each with the tap's MTU (1500).
TAP_IF, TAP_HOST, TAP_GUEST = "vsbench0", "192.168.231.1", "192.168.231.2"


def argv_for(emu, binary, guest, initrd, hport, memory, engine=None, tap=False):
    if emu == "vessel":
        net = f"tap,ifname={TAP_IF}" if tap else \
            f"user,hostfwd=tcp:127.0.0.1:{hport}-:8080" + NET_OPTS
        return [binary, "run", "--overcommit", "--memory", memory, "--initrd", initrd,
                "--net", net] + (["--engine", engine] if engine else [])
    netdev = f"tap,id=n0,ifname={TAP_IF},script=no,downscript=no" if tap else \
        f"user,id=n0,hostfwd=tcp:127.0.0.1:{hport}-:8080"
    return [binary, "-M", "virt", "-nographic", "-m", memory, "-bios", guest["fw"],
            "-kernel", guest["kernel"], "-initrd", initrd, "-append", "console=ttyS0",
            "-global", "virtio-mmio.force-legacy=false",
            "-netdev", netdev, "-device", "virtio-net-device,netdev=n0"]


def tap_setup():
    """Make the benchmark's tap with the host's address; an error string, or None."""
    if os.geteuid() != 0:
        return "needs root (a tap and an address on it)"
    tap_teardown()
    for cmd in (["ip", "tuntap", "add", TAP_IF, "mode", "tap"],
                ["ip", "addr", "add", f"{TAP_HOST}/24", "dev", TAP_IF],
                ["ip", "link", "set", TAP_IF, "up"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            tap_teardown()
            return f"{' '.join(cmd)}: {r.stderr.strip()}"
    return None


def tap_teardown():
    subprocess.run(["ip", "link", "del", TAP_IF], capture_output=True)


def host_fetch(port, path, addr="127.0.0.1"):
    """GET path through the forward (or from addr); returns (bytes of body, seconds)."""
    t0 = time.monotonic()
    n = 0
    with socket.create_connection((addr, port), timeout=120) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        head = b""
        while b"\r\n\r\n" not in head:
            b = s.recv(65536)
            if not b:
                break
            head += b
        n = len(head.partition(b"\r\n\r\n")[2])
        while True:
            b = s.recv(1 << 20)
            if not b:
                break
            n += len(b)
    return n, time.monotonic() - t0


def one_boot(emu, binary, guest, initrd, srv, size_mib, log, engine=None, tap=False):
    hport = N.free_port()
    vm = G.VM(argv_for(emu, binary, guest, initrd, hport, "512M", engine, tap), log)
    gw, fetch = (TAP_HOST, (8080, TAP_GUEST)) if tap else ("10.0.2.2", (hport, "127.0.0.1"))
    res = {}
    try:
        vm.wait_marker(1, 180)
        vm.sh("dmesg -n 1")
        st, out = vm.sh(N.LOAD, timeout=60)
        if st != 0:
            raise G.CheckFailed(f"virtio_net: {out!r}")
        me = TAP_GUEST if tap else "10.0.2.15"
        vm.sh(f"ip link set eth0 up; ip addr add {me}/24 dev eth0; ip route add default via {gw}")
        # download: guest <- host
        t0 = time.monotonic()
        st, out = vm.sh(f"wget -q -O /dev/null http://{gw}:{srv.port}/blob && echo ok",
                        timeout=600)
        dt = time.monotonic() - t0
        if out[-1:] != ["ok"]:
            raise G.CheckFailed(f"download: {out!r}")
        res["download"] = size_mib / dt
        # upload: guest -> host
        vm.sh(f"mkdir -p /tmp/www; dd if=/dev/zero of=/tmp/www/blob bs=1M count={size_mib} "
              "2>/dev/null; echo 0123456789abcde >/tmp/www/small; httpd -p 8080 -h /tmp/www")
        time.sleep(0.5)
        n, dt = host_fetch(fetch[0], "/blob", fetch[1])
        if n != size_mib << 20:
            raise G.CheckFailed(f"upload: {n} bytes")
        res["upload"] = size_mib / dt
        # ping
        st, out = vm.sh(f"ping -c 20 -i 0.2 {gw} | tail -1", timeout=60)
        m = re.search(r"= [\d.]+/([\d.]+)/", " ".join(out))
        res["ping"] = float(m.group(1)) if m else float("nan")
        # request/response
        times = []
        for _ in range(50):
            n, dt = host_fetch(fetch[0], "/small", fetch[1])
            if n == 16:
                times.append(dt * 1000)
        res["request"] = statistics.median(times) if times else float("nan")
        vm.send("poweroff\n")
        vm.wait_exit(30)
    finally:
        vm.close()
    return res


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for ln in f:
                if ln.startswith("model name"):
                    return ln.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def debian_argv(emu, binary, guest, image, cpus, memory):
    """emu: vessel-interp, vessel-jit or qemu; the Debian disk with user networking."""
    if emu.startswith("vessel"):
        return [binary, "run", "--overcommit", "--cpus", str(cpus), "--memory", memory,
                "--engine", emu.split("-")[1], "--disk", image, "--net", "user" + NET_OPTS]
    return [binary, "-M", "virt", "-nographic", "-smp", str(cpus), "-m", memory,
            "-bios", guest["fw"], "-kernel", guest["kernel"], "-initrd", guest["initrd"],
            "-append", "console=ttyS0 root=/dev/vda rw",
            "-global", "virtio-mmio.force-legacy=false",
            "-drive", f"if=none,file={image},format=raw,id=d0",
            "-device", "virtio-blk-device,drive=d0",
            "-netdev", "user,id=n0", "-device", "virtio-net-device,netdev=n0"]


def iperf_once(vm, reverse, seconds):
    """One iperf3 test from the guest to a one-off server on the host's loopback; the rate
    the receiving side saw (the client's "receiver" summary line; with -R the guest
    receives), in MiB/s."""
    port = N.free_port()
    srv = subprocess.Popen(["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        st, out = vm.sh(f"iperf3 -c 10.0.2.2 -p {port} -t {seconds} {'-R' if reverse else ''} "
                        "-f m 2>&1 | grep -E 'receiver|error'", timeout=seconds + 120)
        srv.wait(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    m = re.search(r"([\d.]+) Mbits/sec\s+receiver", " ".join(out))
    if not m:
        raise G.CheckFailed(f"iperf3{' -R' if reverse else ''} in the guest: {out!r}")
    return float(m.group(1)) * 1e6 / 8 / 2**20


def iperf_boot(emu, binary, guest, image, opts, log):
    vm = G.VM(debian_argv(emu, binary, guest, image, opts.cpus, opts.memory), log)
    res = {}
    try:
        t = D.login(vm, 900)
        res["boot"] = t
        vm.sh("dmesg -n 1")
        # Boot finished, the first boot's SSH host keys (RSA under emulation) included: nothing
        # else runs during the measurement.
        st, out = vm.sh("systemctl is-system-running --wait; "
                        "/usr/lib/systemd/systemd-networkd-wait-online --any --timeout=120 && "
                        "ip -4 -o addr show scope global", timeout=900)
        if st != 0 or "10.0.2.15" not in " ".join(out):
            raise G.CheckFailed(f"no DHCP address: {out!r}")
        if opts.iperf_time:
            res["send"] = iperf_once(vm, False, opts.iperf_time)
            res["recv"] = iperf_once(vm, True, opts.iperf_time)
        vm.send("poweroff\n")
        if vm.wait_exit(180) is None:
            raise G.CheckFailed("no exit 180 s after poweroff")
    finally:
        vm.close()
    return res


def iperf_part(opts, guest, logs, tmp):
    """Returns (rows printed, failed)."""
    image = os.path.join(G.cache_dir(), "guest/debian/debian.img")
    if not os.path.isfile(image):
        print(f"\niperf3: skipped, no Debian root disk ({image}; guest/build-rootfs.sh)")
        return False
    if not shutil.which("iperf3"):
        print("\niperf3: skipped, iperf3 is not installed on the host")
        return True
    emus = [e for e in ("vessel-interp", "vessel-jit", "qemu")
            if not opts.only or e.startswith(opts.only)]
    bins = {"vessel-interp": os.path.abspath(opts.vessel),
            "vessel-jit": os.path.abspath(opts.vessel), "qemu": opts.qemu}
    print(f"\niperf3 on the Debian root disk: {opts.cpus} CPUs, {opts.memory}, "
          f"{opts.iperf_time} s per direction, {opts.runs} boot(s) each", flush=True)
    copies, failed = {}, False
    results = {e: [] for e in emus}
    for e in emus:
        copies[e] = os.path.join(tmp, f"debian-{e}.img")
        subprocess.run(["cp", "--sparse=always", image, copies[e]], check=True)
    for r in range(opts.runs):
        order = emus if r % 2 == 0 else emus[::-1]
        for e in order:
            try:
                res = iperf_boot(e, bins[e], guest, copies[e], opts,
                                 os.path.join(logs, f"iperf-{e}-{r}.log"))
                results[e].append(res)
                print(f"{e} run {r}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()),
                      flush=True)
            except FAILED as ex:
                print(f"{e} run {r}: FAILED: {ex}", flush=True)
                failed = True
    print(f"\n{'':10} {'unit':6} " + " ".join(f"{e:>14}" for e in emus) + "   ratio to qemu")
    for k, unit, what in (("send", "MiB/s", "guest to host"), ("recv", "MiB/s", "host to guest"),
                          ("boot", "s", "to login prompt")):
        med = {e: statistics.median([x[k] for x in results[e]]) if results[e] else float("nan")
               for e in emus}
        ratio = ""
        if "qemu" in med and med["qemu"] == med["qemu"] and med["qemu"]:
            ratio = "  ".join(f"{e}: {med[e] / med['qemu']:.2f}x" for e in emus if e != "qemu")
        print(f"{k:10} {unit:6} " + " ".join(f"{med[e]:14.2f}" for e in emus) + f"   {ratio}"
              f"   ({what})")
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--size", type=int, default=32, help="MiB per transfer")
    ap.add_argument("--vessel", default=os.path.join(ROOT, "vessel"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--only", choices=["vessel", "qemu"])
    ap.add_argument("--keep-logs", default=None)
    ap.add_argument("--engine", choices=["interp", "jit"], help="vessel's --engine (http part)")
    ap.add_argument("--part", choices=["http", "iperf3", "all"], default="all")
    ap.add_argument("--cpus", type=int, default=2, help="iperf3 part: vCPUs (default 2)")
    ap.add_argument("--memory", default="1G", help="iperf3 part: guest memory (default 1G)")
    ap.add_argument("--iperf-time", type=int, default=10, help="seconds per iperf3 direction")
    ap.add_argument("--backend", choices=["user", "tap"], default="user",
                    help="http part: libslirp (default) or a tap the benchmark makes (root)")
    opts = ap.parse_args()
    print(f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs", flush=True)
    opts.no_build = True
    guest = G.find_guest(opts)
    tmp = tempfile.mkdtemp(prefix="vessel-bench-net-")
    logs = opts.keep_logs or tmp
    os.makedirs(logs, exist_ok=True)
    emus = [e for e in ("vessel", "qemu") if not opts.only or e == opts.only]
    bins = {"vessel": os.path.abspath(opts.vessel), "qemu": opts.qemu}
    results = {e: [] for e in emus}
    failed = False
    try:
        if opts.part == "iperf3":
            failed = iperf_part(opts, guest, logs, tmp)
            return 1 if failed else 0
        initrd = N.net_initrd(guest, tmp)
        with open(os.path.join(tmp, "blob"), "wb") as f:
            f.write(os.urandom(opts.size << 20))
        tap = opts.backend == "tap"
        if tap:
            why = tap_setup()
            if why:
                print(f"--backend tap: skipped: {why}")
                return 0
        srv = N.HttpServer(tmp, host=TAP_HOST if tap else "127.0.0.1")
        for r in range(opts.runs):
            order = emus if r % 2 == 0 else emus[::-1]
            for e in order:
                try:
                    res = one_boot(e, bins[e], guest, initrd, srv, opts.size,
                                   os.path.join(logs, f"net-{e}-{r}.log"), opts.engine, tap)
                    results[e].append(res)
                    print(f"{e} run {r}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()),
                          flush=True)
                except (G.CheckFailed, OSError) as ex:
                    print(f"{e} run {r}: FAILED: {ex}", flush=True)
                    failed = True
        srv.close()
        print_http(emus, results)
        if opts.part == "all" and iperf_part(opts, guest, logs, tmp):
            failed = True
    finally:
        if opts.backend == "tap":
            tap_teardown()
        if not opts.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


def print_http(emus, results):
    rows = [("download", "MiB/s", True), ("upload", "MiB/s", True), ("ping", "ms", False),
            ("request", "ms", False)]
    print(f"\n{'':10} {'unit':6} " + " ".join(f"{e:>10}" for e in emus) + "      ratio")
    for k, unit, higher_better in rows:
        med = {e: statistics.median([r[k] for r in results[e]]) if results[e] else float("nan")
               for e in emus}
        ratio = ""
        if len(emus) == 2 and med["vessel"] and med["qemu"]:
            v = med["vessel"] / med["qemu"]
            good = v >= 1 if higher_better else v <= 1
            ratio = f"{v:.2f}x" + ("" if good else "  (QEMU better)")
        print(f"{k:10} {unit:6} " + " ".join(f"{med[e]:10.2f}" for e in emus) + "  " + ratio)


if __name__ == "__main__":
    sys.exit(main())
