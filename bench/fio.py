#!/usr/bin/env python3
"""Block I/O with fio in the Debian guest: vessel vs QEMU vs the host, same image file.

usage: bench/fio.py [--runs N] [--runtime S] [--size SIZE] [--cpus N] [--memory SIZE]
                    [--only T,T] [--vessel PATH] [--qemu PATH] [--image IMG]
                    [--keep-logs DIR] [--no-drop-caches]

Boots the Debian root disk built by guest/build-rootfs.sh (a sparse copy of it)
with a second, raw data disk (serial "benchdata", --size, default 1G, filled
with random bytes) and runs fio (Debian's riscv64 package, on the root disk)
against that disk as a block device, direct I/O, libaio:

  seq read 1M    rw=read      bs=1M  iodepth=16
  seq write 1M   rw=write     bs=1M  iodepth=16
  rand read 4K   rw=randread  bs=4k  iodepth=1   (latency-bound)
  rand read 4K   rw=randread  bs=4k  iodepth=32  (throughput)

each for --runtime seconds after a 2 s ramp. Targets, in rotating order per run:

  vessel        vessel run --disk ROOT --disk DATA,serial=benchdata  (default cache:
                writeback, the host page cache; FLUSH = fdatasync)
  vessel-none   the same with cache=none on both disks (O_DIRECT, like QEMU below)
  qemu          qemu-system-riscv64 -M virt, same kernel, firmware and initramfs,
                -drive if=none,file=...,format=raw,cache=none,aio=io_uring with
                -device virtio-blk-device (serial benchdata for the data disk)
  host          fio on the host against the data image file (direct=1, libaio)
  vessel-qcow2  vessel (writeback) with the data disk as a qcow2 image (qemu-img convert
                of the same data: every cluster allocated)
  qemu-qcow2    QEMU as above with that qcow2 image (format=qcow2,cache=none)

Also the time from start to the login prompt on the console. The host page
cache is dropped before every target (root only; --no-drop-caches to skip).
Prints medians per target and the vessel/QEMU ratios with PASS/MISS against
issue 4's bar (at least 1.0x QEMU's MB/s and IOPS; boot to login is shown,
no bar). The like-for-like comparison is vessel-none vs qemu (both O_DIRECT).

Exit status 0 when every boot and fio job ran (bars met or not), 1 otherwise,
2 for bad arguments. Python 3 standard library; fio, qemu-system-misc on the host.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
import run as guest  # noqa: E402  (VM, cache_dir, parse_size, CheckFailed)
import run_disk  # noqa: E402  (login)

SERIAL = "benchdata"
JOBS = [
    # name, fio arguments, what is measured ("read"/"write" side), unit
    ("seq read 1M (MB/s)", "--rw=read --bs=1M --iodepth=16", "read", "bw"),
    ("seq write 1M (MB/s)", "--rw=write --bs=1M --iodepth=16", "write", "bw"),
    ("rand read 4K QD1 (IOPS)", "--rw=randread --bs=4k --iodepth=1", "read", "iops"),
    ("rand read 4K QD32 (IOPS)", "--rw=randread --bs=4k --iodepth=32", "read", "iops"),
]
BOOT_ROW = "start to login prompt (s)"
TARGETS = ["vessel", "vessel-none", "qemu", "host", "vessel-qcow2", "qemu-qcow2"]
# Ratios shown: (target, against, bar).
RATIOS = [("vessel", "qemu", 1.0), ("vessel-none", "qemu", 1.0),
          ("vessel-qcow2", "vessel", 0.9), ("vessel-qcow2", "qemu-qcow2", 1.0)]


def fio_args(dev, job_args, runtime):
    return (f"--name=bench --filename={dev} --direct=1 --ioengine=libaio {job_args} "
            f"--time_based --runtime={runtime} --ramp_time=2 --minimal")


def parse_terse(lines, side, unit):
    """fio --minimal (terse v3): field 7/8 = read KiB/s / IOPS, 48/49 = write."""
    line = next((ln for ln in lines if ln.startswith("3;fio-")), None)
    if not line:
        raise guest.CheckFailed("no fio terse output: " + " | ".join(lines)[-300:])
    f = line.split(";")
    if len(f) < 50 or f[4] != "0":
        raise guest.CheckFailed(f"fio failed (error field {f[4] if len(f) > 4 else '?'})")
    base = 6 if side == "read" else 47
    kib_s, iops = float(f[base]), float(f[base + 1])
    return kib_s * 1024 / 1e6 if unit == "bw" else iops


def drop_caches(opts):
    if opts.no_drop_caches or os.geteuid() != 0:
        return
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def vm_argv(target, opts, g, root_img, data_img):
    if target.endswith("-qcow2"):  # the same data as a (fully allocated) qcow2 image
        data_img = data_img[:-len(".img")] + ".qcow2"
    if target.startswith("vessel"):
        c = ",cache=none" if target == "vessel-none" else ""
        return [opts.vessel, "run", "--cpus", str(opts.cpus), "--memory", opts.memory,
                "--disk", root_img + c, "--disk", f"{data_img},serial={SERIAL}{c}"]
    drive = "format=raw,cache=none,aio=io_uring"
    ddrive = drive.replace("format=raw", "format=qcow2") if target.endswith("-qcow2") else drive
    return [opts.qemu, "-M", "virt", "-nographic", "-smp", str(opts.cpus), "-m", opts.memory,
            "-bios", g["fw"], "-kernel", g["kernel"], "-initrd", g["initrd"],
            "-append", "console=ttyS0 root=/dev/vda rw",
            "-drive", f"if=none,file={root_img},{drive},id=d0",
            "-device", "virtio-blk-device,drive=d0",
            "-drive", f"if=none,file={data_img},{ddrive},id=d1",
            "-device", f"virtio-blk-device,drive=d1,serial={SERIAL}"]


def run_guest(target, opts, g, root_img, data_img, log_path):
    """Boot, log in, run every job; return {row: value}."""
    res = {}
    vm = guest.VM(vm_argv(target, opts, g, root_img, data_img), log_path)
    try:
        res[BOOT_ROW] = run_disk.login(vm, opts.boot_timeout)
        # The data disk by its serial (udev's by-id link), whatever its vdX name.
        st, out = vm.sh(f"udevadm settle; readlink -f /dev/disk/by-id/virtio-{SERIAL}; "
                        "root=$(findmnt -n -o SOURCE /); echo ROOT=$root", timeout=60)
        dev = next((ln.strip() for ln in out if ln.strip().startswith("/dev/vd")), None)
        rootdev = next((ln.strip()[5:] for ln in out if ln.startswith("ROOT=")), "")
        if st != 0 or not dev or dev == rootdev:
            raise guest.CheckFailed(f"data disk not found: {' | '.join(out)}")
        for row, args, side, unit in JOBS:
            st, out = vm.sh("fio " + fio_args(dev, args, opts.runtime),
                            timeout=opts.runtime + 120)
            if st != 0:
                raise guest.CheckFailed(f"{row}: fio exit {st}: {' | '.join(out)[-300:]}")
            res[row] = parse_terse(out, side, unit)
        t0 = time.monotonic()
        vm.send("poweroff\n")
        rc = vm.wait_exit(180)
        if rc != 0:
            raise guest.CheckFailed(f"poweroff: exit status {rc} after "
                                    f"{time.monotonic() - t0:.0f} s")
    finally:
        vm.close()
    return res


def run_host(opts, data_img):
    res = {}
    for row, args, side, unit in JOBS:
        r = subprocess.run(["fio"] + fio_args(data_img, args, opts.runtime).split(),
                           capture_output=True, text=True, timeout=opts.runtime + 120)
        if r.returncode != 0:
            raise guest.CheckFailed(f"host fio {row}: {r.stderr.strip()[-300:]}")
        res[row] = parse_terse(r.stdout.splitlines(), side, unit)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--runtime", type=int, default=10, help="seconds per fio job (default 10)")
    ap.add_argument("--size", default="1G", help="data disk size (default 1G)")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", default="1G")
    ap.add_argument("--only", default=",".join(TARGETS),
                    help="comma-separated subset of " + ",".join(TARGETS))
    ap.add_argument("--vessel", default=os.path.join(ROOT, "vessel"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--image", help="Debian root disk (default: the cached one)")
    ap.add_argument("--boot-timeout", type=float, default=600)
    ap.add_argument("--keep-logs", metavar="DIR")
    ap.add_argument("--no-drop-caches", action="store_true")
    opts = ap.parse_args()
    only = [t.strip() for t in opts.only.split(",") if t.strip()]
    bad = [t for t in only if t not in TARGETS]
    if bad or opts.runs < 1 or opts.runtime < 1 or opts.cpus < 1:
        print(f"fio.py: bad arguments ({', '.join(bad) or 'runs/runtime/cpus'})", file=sys.stderr)
        return 2
    try:
        size = guest.parse_size(opts.size)
    except ValueError:
        size = 0
    if size < (64 << 20) or size % (1 << 20):
        print(f"fio.py: bad --size {opts.size} (at least 64M, whole MiB)", file=sys.stderr)
        return 2

    c = guest.cache_dir()
    g = {"kernel": os.path.join(c, "guest/default/Image"),
         "fw": os.path.join(c, "guest/default/fw_dynamic.bin"),
         "initrd": os.path.join(c, "guest/default/initramfs.cpio.gz")}
    image = opts.image or os.path.join(c, "guest/debian/debian.img")
    need = [image] + list(g.values())
    missing = [p for p in need if not os.path.isfile(p)]
    if missing:
        print(f"fio.py: missing {missing[0]} (guest/build-rootfs.sh builds it)", file=sys.stderr)
        return 1
    tools = {"vessel": opts.vessel, "vessel-none": opts.vessel, "qemu": opts.qemu, "host": "fio",
             "vessel-qcow2": opts.vessel, "qemu-qcow2": opts.qemu}
    for t in only:
        if not shutil.which(tools[t]):
            print(f"fio.py: {tools[t]} not found (needed for {t})", file=sys.stderr)
            return 1
    opts.vessel = os.path.abspath(opts.vessel) if os.path.exists(opts.vessel) else opts.vessel

    tmp = tempfile.mkdtemp(prefix="vessel-fio-")
    logdir = opts.keep_logs or tmp
    os.makedirs(logdir, exist_ok=True)
    results = {t: {} for t in only}  # target -> row -> [values]
    ok = True
    try:
        root_img = os.path.join(tmp, "root.img")
        data_img = os.path.join(tmp, "data.img")
        subprocess.run(["cp", "--sparse=always", image, root_img], check=True)
        with open(data_img, "wb") as f:  # random bytes: nothing to compress or skip
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        if any(t.endswith("-qcow2") for t in only):
            subprocess.run(["qemu-img", "convert", "-O", "qcow2", data_img,
                            data_img[:-len(".img")] + ".qcow2"], check=True)
        rows = [BOOT_ROW] + [j[0] for j in JOBS]
        print(f"fio.py: {opts.runs} run(s), {opts.runtime} s per job, data disk {opts.size}, "
              f"{opts.cpus} CPU(s), {opts.memory}; targets {', '.join(only)}", flush=True)
        for run in range(opts.runs):
            order = only[run % len(only):] + only[:run % len(only)]
            for t in order:
                drop_caches(opts)
                t0 = time.monotonic()
                try:
                    if t == "host":
                        res = run_host(opts, data_img)
                    else:
                        res = run_guest(t, opts, g, root_img, data_img,
                                        os.path.join(logdir, f"{t}-{run}.log"))
                except (guest.CheckFailed, subprocess.TimeoutExpired) as e:
                    ok = False
                    print(f"fio.py: run {run + 1} {t}: FAILED: {e}", flush=True)
                    continue
                for row, v in res.items():
                    results[t].setdefault(row, []).append(v)
                print(f"fio.py: run {run + 1} {t} ({time.monotonic() - t0:.0f} s): " +
                      json.dumps({k: round(v, 1) for k, v in res.items()}), flush=True)
    finally:
        if not opts.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            for f in ("root.img", "data.img"):
                try:
                    os.unlink(os.path.join(tmp, f))
                except OSError:
                    pass

    med = {t: {r: statistics.median(v) for r, v in results[t].items()} for t in only}
    ratios = [(t, a, bar) for t, a, bar in RATIOS if t in only and a in only]
    cols = only + [f"{t}/{a}" for t, a, _ in ratios]
    print()
    print(f"{'metric':<28}" + "".join(f"{c:>14}" for c in cols))
    for row in rows:
        cells = []
        for t in only:
            v = med[t].get(row)
            cells.append("-" if v is None else (f"{v:.1f}" if v < 1000 else f"{v:.0f}"))
        verdicts = []
        for t, a, bar in ratios:
            v, q = med[t].get(row), med[a].get(row)
            if v is None or q is None or q == 0:
                cells.append("-")
                continue
            r = v / q
            cells.append(f"{r:.2f}x")
            if row != BOOT_ROW:
                verdicts.append(f"{t}/{a}: {'PASS' if r >= bar else 'MISS'}")
        line = f"{row:<28}" + "".join(f"{c:>14}" for c in cells)
        if verdicts:
            line += "  " + ", ".join(verdicts)
        print(line)
    print("(bars: vessel at least 1.0x QEMU's MB/s and IOPS, vessel's qcow2 at least 0.9x its "
          "raw and 1.0x QEMU's qcow2; boot to login: lower is better, ratio > 1 means slower)")
    if opts.keep_logs:
        print(f"fio.py: console logs in {logdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
