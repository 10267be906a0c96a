#!/usr/bin/env python3
"""The manager's own costs (issue 9's bars), on the default busybox guest.

  - `vessel start` to the guest's marker vs `vessel run` to the marker (the manager's cost);
    QEMU's boot to the same marker in the same run, for scale;
  - `vessel list` with 8 VMs running (bar: under 50 ms);
  - API round trip `GET /` over one keep-alive connection, p50 and p99 of 1000 requests
    (bar: p99 under 1 ms);
  - RSS of a VM process beyond the guest memory it touched (bar: under 20 MiB): RssAnon +
    RssFile - the guest RAM's resident pages (from /proc/PID/smaps, the RAM mapping) - the
    JIT's code cache (the default engine; issue 10's bar leaves "the code cache actually
    used" out), which is reported on its own, each resident page once (it is one memfd
    mapped twice, read-write and read-execute: VmRSS counts its pages twice).

usage: bench/mgr.py [--vessel PATH] [--runs N]. Works in a temporary store. Python 3 stdlib.
"""
import argparse
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CACHE = os.path.join(os.environ.get("VESSEL_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vessel"), "guest",
    "default")
MARKER = b"VESSEL-INIT-OK"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def time_to_marker(cmd, stdin_pipe=True, log=None, timeout=120):
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    buf = b""
    while MARKER not in buf:
        chunk = p.stdout.read1(4096)
        if not chunk:
            break
        buf += chunk
        if time.monotonic() - t0 > timeout:
            break
    dt = time.monotonic() - t0
    p.kill()
    p.wait()
    return dt if MARKER in buf else None


def wait_file_has(path, needle, timeout=120):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, "rb") as f:
                if needle in f.read():
                    return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def cpu_of(pids, secs):
    """CPUs the processes used together over the next secs seconds."""
    def ticks():
        t = 0
        for p in pids:
            try:
                with open(f"/proc/{p}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                t += int(fields[11]) + int(fields[12])  # utime, stime
            except OSError:
                pass
        return t
    a = ticks()
    time.sleep(secs)
    return (ticks() - a) / os.sysconf("SC_CLK_TCK") / secs


def vm_rss_overhead(pid, ram_mib):
    """RSS not in the guest RAM mapping (the mapping of ram_mib: anonymous, or the memfd
    "vessel-ram" under the JIT) nor in the JIT's code cache (the memfd "vessel-jit") nor in
    guest RAM mapped again (the JIT's fast memory: more mappings of "vessel-ram"), and the code
    cache's resident pages counted once (Pss summed over its two views), in MiB."""
    total = ram = pss = pss_ram = anon = anon_ram = jit_rss = jit_pss = alias = alias_pss = 0
    cur_size = 0
    jit = is_ram = is_alias = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if "-" in parts[0] and len(parts) >= 5:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                cur_size = hi - lo
                jit = "vessel-jit" in line
                is_ram = cur_size == ram_mib << 20
                is_alias = "vessel-ram" in line and not is_ram
            elif parts[0] == "Rss:":
                kb = int(parts[1])
                total += kb
                if is_ram:
                    ram += kb
                if jit:
                    jit_rss += kb
                if is_alias:
                    alias += kb
            elif parts[0] == "Pss:":
                kb = int(parts[1])
                pss += kb
                if is_ram:
                    pss_ram += kb
                if jit:
                    jit_pss += kb
                if is_alias:
                    alias_pss += kb
            elif parts[0] == "Anonymous:":
                anon += int(parts[1])
                if is_ram:
                    anon_ram += int(parts[1])
    return ((total - ram - jit_rss - alias) / 1024.0, ram / 1024.0,
            (pss - pss_ram - jit_pss - alias_pss) / 1024.0, (anon - anon_ram) / 1024.0,
            jit_pss / 1024.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--vessel", default=os.path.join(REPO, "vessel"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    vessel = os.path.abspath(a.vessel)
    store = tempfile.mkdtemp(prefix="vessel-bench-mgr-")
    print(f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs")
    env = dict(os.environ, VESSEL_STORE=store)

    def v(*args, check=True):
        r = subprocess.run([vessel] + list(args), capture_output=True, text=True, env=env)
        if check and r.returncode:
            sys.exit(f"vessel {' '.join(args)}: {r.stderr.strip()}")
        return r

    try:
        v("host", "set", "--cpu-overcommit", "8")
        v("create", "b", "--memory", "128M")
        starts, runs, qemus = [], [], []
        for i in range(a.runs):
            t0 = time.monotonic()
            v("start", "b")
            ok = wait_file_has(os.path.join(store, "vms", "b", "console.log"), MARKER)
            if ok:
                starts.append(time.monotonic() - t0)
            v("stop", "b", "--force")
            os.unlink(os.path.join(store, "vms", "b", "console.log"))
            dt = time_to_marker([vessel, "run", "--memory", "128M"])
            if dt:
                runs.append(dt)
            if shutil.which(a.qemu):
                dt = time_to_marker([a.qemu, "-M", "virt", "-m", "128M", "-nographic",
                                     "-bios", os.path.join(CACHE, "fw_dynamic.bin"),
                                     "-kernel", os.path.join(CACHE, "Image"),
                                     "-initrd", os.path.join(CACHE, "initramfs.cpio.gz"),
                                     "-append", "console=ttyS0"])
                if dt:
                    qemus.append(dt)
        ms, mr = statistics.median(starts), statistics.median(runs)
        print(f"boot to marker, median of {a.runs}: vessel start {ms:.3f} s, vessel run "
              f"{mr:.3f} s (start - run = {1000 * (ms - mr):+.0f} ms)" +
              (f", QEMU {statistics.median(qemus):.3f} s" if qemus else ""))

        for i in range(8):
            v("create", f"m{i}", "--memory", "128M")
            v("start", f"m{i}")
        for i in range(8):
            wait_file_has(os.path.join(store, "vms", f"m{i}", "console.log"), MARKER, 300)
        lt = []
        for _ in range(20):
            t0 = time.monotonic()
            r = v("list")
            lt.append(time.monotonic() - t0)
            assert r.stdout.count(" running ") == 8, r.stdout
        lt.sort()
        print(f"vessel list with 8 VMs running: median {1000 * statistics.median(lt):.1f} ms, "
              f"max {1000 * lt[-1]:.1f} ms of 20 (bar 50 ms)")

        # The API is measured on running VMs, not booting ones: the markers come while the
        # guests' kernels still finish their boot, and 8 of them on a small host keep every
        # CPU busy for a while (the round trip then measures the scheduler). Wait, at most
        # 60 s, until the 8 VM processes use less than a fifth of one CPU together.
        pids = [json.loads(v("inspect", f"m{i}").stdout)["pid"] for i in range(8)]
        t_idle = time.monotonic()
        while time.monotonic() - t_idle < 60 and cpu_of(pids, 1.0) > 0.2:
            pass
        print(f"(the 8 VMs settled {time.monotonic() - t_idle:.1f} s after their markers)")
        c = UnixHTTP(os.path.join(store, "vms", "m0", "api.sock"))
        rt = []
        for _ in range(1000):
            t0 = time.perf_counter()
            c.request("GET", "/")
            resp = c.getresponse()
            resp.read()
            rt.append(time.perf_counter() - t0)
            assert resp.status == 200
        rt.sort()
        print(f"API GET / round trip, 1000 requests on one connection: p50 "
              f"{1e6 * rt[499]:.0f} us, p99 {1e6 * rt[989]:.0f} us (bar p99 < 1000 us)")

        info = json.loads(v("inspect", "m0").stdout)
        over, ram, pss, anon, code = vm_rss_overhead(info["pid"], 128)
        print(f"VM process RSS beyond touched guest memory and the JIT's code: {over:.1f} MiB "
              f"(guest RAM resident {ram:.1f} MiB; bar 20 MiB); of it anonymous {anon:.1f} MiB; "
              f"PSS beyond guest memory with 8 VMs sharing the libraries: {pss:.1f} MiB; "
              f"the JIT's code cache: {code:.1f} MiB")
        for i in range(8):
            v("stop", f"m{i}", "--force")
    finally:
        for n in os.listdir(os.path.join(store, "vms")) if os.path.isdir(
                os.path.join(store, "vms")) else []:
            subprocess.run([vessel, "stop", n, "--force"], capture_output=True, env=env)
        shutil.rmtree(store, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
