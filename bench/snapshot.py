#!/usr/bin/env python3
"""Snapshot create and restore, vessel against QEMU on the default busybox guest (issue 11).

For each guest size (default 256M and 4G), after the guest has touched TOUCH MiB (default 256,
written to a file in its RAM-backed root):
  vessel: PATCH /vm Paused + PUT /snapshot/create (Firecracker's API) = create time;
          a fresh `vessel run --api-sock` + PUT /snapshot/load (resume_vm) until the guest
          answers a command on its console = restore-to-running time; and the VM process's own
          restore work ("restored ... in X ms", --log-level info).
  QEMU:   `stop` + `migrate exec:cat>FILE` until `info migrate` says completed = create time;
          a fresh qemu with `-incoming exec:cat FILE` + `cont` until the guest answers =
          restore-to-running time.
Bars (issue 11): vessel's own restore work under 10 ms and independent of guest memory size;
create under 0.5 s for a 4 GiB guest that touched 256 MiB.

usage: bench/snapshot.py [--sizes 256M,4G] [--touch 256] [--runs 3] [--vessel PATH]
Python 3 stdlib only; works in a temporary directory.
"""
import argparse
import json
import os
import re
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
sys.path.insert(0, HERE)
from mgr import CACHE, MARKER, UnixHTTP, cpu_model  # noqa: E402  (bench/mgr.py)


def api(sock, method, path, body=None):
    c = UnixHTTP(sock)
    c.timeout = 600
    c.request(method, path, json.dumps(body) if body is not None else None,
              {"Content-Type": "application/json"})
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    if r.status >= 300:
        raise RuntimeError(f"{method} {path}: {r.status} {text}")
    return text


class Console:
    """A process whose stdout is the guest's console, read by a thread."""

    def __init__(self, cmd, stderr=subprocess.DEVNULL):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=stderr)
        self.buf = bytearray()
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while True:
            b = self.p.stdout.read1(65536)
            if not b:
                return
            with self.lock:
                self.buf += b

    def wait_for(self, needle, timeout, start=0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                if needle in self.buf[start:]:
                    return True
            time.sleep(0.002)
        return False

    def type(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def answer_time(self, tag, timeout=120):
        """Time until the guest echoes a fresh tag (the console answers)."""
        with self.lock:
            start = len(self.buf)
        t0 = time.monotonic()
        self.type(f"echo {tag}-$((6*7))\n")
        ok = self.wait_for(f"{tag}-42".encode(), timeout, start)
        return time.monotonic() - t0 if ok else None

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def touch(con, mib):
    """The guest writes mib MiB of random data into its RAM-backed root."""
    with con.lock:
        start = len(con.buf)
    con.type(f"dd if=/dev/urandom of=/fill bs=1048576 count={mib} 2>/dev/null; echo touch''ed-$((1+1))\n")
    return con.wait_for(b"touched-2", 600, start)


def vessel_round(vessel, mem, mib, tmp):
    sock = os.path.join(tmp, "a.sock")
    con = Console([vessel, "run", "--api-sock", sock, "--store", tmp, "--overcommit"])
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        api(sock, "PUT", "/boot-source", {"kernel_image_path": os.path.join(CACHE, "Image"),
                                          "initrd_path": os.path.join(CACHE, "initramfs.cpio.gz"),
                                          "boot_args": "console=ttyS0"})
        api(sock, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": mem})
        api(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        if not con.wait_for(MARKER, 300) or not touch(con, mib):
            return None
        sp, mp = os.path.join(tmp, "vm.snap"), os.path.join(tmp, "vm.mem")
        for f in (sp, mp):
            if os.path.exists(f):
                os.unlink(f)
        t0 = time.monotonic()
        api(sock, "PATCH", "/vm", {"state": "Paused"})
        api(sock, "PUT", "/snapshot/create", {"snapshot_path": sp, "mem_file_path": mp,
                                              "snapshot_type": "Full"})
        create = time.monotonic() - t0
        disk = os.stat(mp).st_blocks * 512
    finally:
        con.kill()
    sock2 = os.path.join(tmp, "b.sock")
    t0 = time.monotonic()
    con = Console([vessel, "run", "--api-sock", sock2, "--store", tmp, "--overcommit",
                   "--log-level", "info"], stderr=subprocess.PIPE)
    err = bytearray()
    threading.Thread(target=lambda: err.extend(con.p.stderr.read()), daemon=True).start()
    try:
        for _ in range(2000):
            if os.path.exists(sock2):
                break
            time.sleep(0.001)
        api(sock2, "PUT", "/snapshot/load", {"snapshot_path": sp, "mem_backend": {
            "backend_type": "File", "backend_path": mp}, "resume_vm": True})
        ans = con.answer_time("vessel-restored")
        restore = time.monotonic() - t0 if ans is not None else None
    finally:
        con.kill()
    time.sleep(0.2)
    m = re.findall(rb"restored \S+ in ([0-9.]+) ms", bytes(err))
    own = float(m[-1]) if m else None
    return create, restore, own, disk


def qemu_args(qemu, mem):
    return [qemu, "-M", "virt", "-m", f"{mem}M", "-nographic", "-smp", "1",
            "-bios", os.path.join(CACHE, "fw_dynamic.bin"),
            "-kernel", os.path.join(CACHE, "Image"),
            "-initrd", os.path.join(CACHE, "initramfs.cpio.gz"),
            "-append", "console=ttyS0"]


def hmp(mon, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(mon)
    s.settimeout(600)
    buf = b""
    while not buf.endswith(b"(qemu) "):
        buf += s.recv(4096)
    s.sendall(cmd.encode() + b"\n")
    buf = b""
    while not buf.endswith(b"(qemu) "):
        b = s.recv(4096)
        if not b:
            break
        buf += b
    s.close()
    return buf.decode(errors="replace")


def qemu_round(qemu, mem, mib, tmp):
    mon = os.path.join(tmp, "mon.sock")
    img = os.path.join(tmp, "qemu.state")
    con = Console(qemu_args(qemu, mem) + ["-monitor", f"unix:{mon},server,nowait"])
    try:
        if not con.wait_for(MARKER, 300) or not touch(con, mib):
            return None
        if os.path.exists(img):
            os.unlink(img)
        t0 = time.monotonic()
        hmp(mon, "stop")
        hmp(mon, f"migrate \"exec:cat > {img}\"")
        while "completed" not in hmp(mon, "info migrate"):
            time.sleep(0.005)
        create = time.monotonic() - t0
        disk = os.stat(img).st_blocks * 512
    finally:
        con.kill()
    mon2 = os.path.join(tmp, "mon2.sock")
    t0 = time.monotonic()
    con = Console(qemu_args(qemu, mem) + ["-monitor", f"unix:{mon2},server,nowait",
                                          "-incoming", f"exec:cat {img}"])
    try:
        for _ in range(5000):
            if os.path.exists(mon2):
                break
            time.sleep(0.001)
        # "paused (inmigrate)" while the state streams in; then "paused"
        while not re.search(r"VM status: (paused|running)\r?\n", hmp(mon2, "info status")):
            time.sleep(0.002)
        hmp(mon2, "cont")
        ans = con.answer_time("qemu-restored")
        restore = time.monotonic() - t0 if ans is not None else None
    finally:
        con.kill()
    return create, restore, None, disk


def size_mib(s):
    s = s.strip().upper()
    return int(s[:-1]) * 1024 if s.endswith("G") else int(s.rstrip("M"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vessel", default=os.path.join(REPO, "vessel"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--sizes", default="256M,4G")
    ap.add_argument("--touch", type=int, default=256, help="MiB the guest writes first")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    print(f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs")
    have_qemu = shutil.which(a.qemu) is not None
    for size in a.sizes.split(","):
        mem = size_mib(size)
        mib = min(a.touch, mem // 2)
        rows = {"vessel": [], "qemu": []}
        for _ in range(a.runs):
            for who in ("vessel", "qemu") if have_qemu else ("vessel",):
                tmp = tempfile.mkdtemp(prefix=f"vessel-bench-snap-{who}-")
                try:
                    r = (vessel_round(a.vessel, mem, mib, tmp) if who == "vessel"
                         else qemu_round(a.qemu, mem, mib, tmp))
                finally:
                    shutil.rmtree(tmp, ignore_errors=True)
                if r and r[1] is not None:
                    rows[who].append(r)
        print(f"guest {size} RAM, touched {mib} MiB, medians of {a.runs}:")
        for who, rs in rows.items():
            if not rs:
                print(f"  {who:7s} (no result)")
                continue
            c = statistics.median(x[0] for x in rs)
            rt = statistics.median(x[1] for x in rs)
            d = statistics.median(x[3] for x in rs) / 2**20
            own = [x[2] for x in rs if x[2] is not None]
            extra = (f", own restore work {statistics.median(own):.2f} ms (bar < 10 ms)"
                     if own else "")
            print(f"  {who:7s} create {c * 1000:7.0f} ms, restore to a console answer "
                  f"{rt * 1000:7.0f} ms, file {d:6.1f} MiB{extra}")
        if rows["vessel"] and rows["qemu"]:
            v, q = rows["vessel"], rows["qemu"]
            print(f"  vessel/QEMU: create "
                  f"{statistics.median(x[0] for x in v) / statistics.median(x[0] for x in q):.2f}x, "
                  f"restore {statistics.median(x[1] for x in v) / statistics.median(x[1] for x in q):.2f}x")
        if mem >= 4096 and rows["vessel"]:
            c = statistics.median(x[0] for x in rows["vessel"])
            print(f"  create of a {size} guest that touched {mib} MiB: {c * 1000:.0f} ms "
                  f"({'meets' if c < 0.5 else 'misses'} the 0.5 s bar)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
