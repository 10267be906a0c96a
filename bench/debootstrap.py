#!/usr/bin/env python3
"""debootstrap's second stage in the guest: vessel vs QEMU on the same image (issue 10's bar:
vessel at most 0.5x QEMU's time).

usage: bench/debootstrap.py [--runs N] [--cpus N] [--only T,T] [--vessel PATH] [--qemu PATH]
                            [--stage1 IMG] [--keep-logs DIR] [--timeout S]

guest/build-rootfs.sh --stage1-only makes the image the second stage starts from (debootstrap's
first stage on the host, the kernel's modules, guest/rootfs/setup as init; needs root and the
Debian archive, or --stage1 IMG made that way before). Each target then boots a sparse copy of
it exactly as build-rootfs.sh's step 4 does (the default guest's kernel and initramfs, 1 GiB,
--cpus harts, `init=/vessel-setup`) and is timed from start until the VM exits; the console
must show VESSEL-ROOTFS-OK (the second stage installed every package, set the image up and
powered off). Targets, in rotating order per run:

  vessel         vessel run (the default engine, the JIT)
  vessel-interp  vessel run --engine interp
  qemu           qemu-system-riscv64 -M virt, same firmware, kernel, initramfs, drive

The host page cache is dropped before each target (root only). Prints the host CPU model, the
medians and vessel/QEMU ratios. Exit status 0 when every target finished (bar met or not), 1 if
one failed, 2 for bad arguments. Python 3 standard library.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
import run as guest  # noqa: E402  (cache_dir)

TARGETS = ["vessel", "vessel-interp", "qemu"]
BAR = 0.5
CMDLINE = "console=ttyS0 root=/dev/vda rw init=/vessel-setup panic=1"


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def vm_argv(target, opts, d, img):
    if target.startswith("vessel"):
        argv = [opts.vessel, "run", "--cpus", str(opts.cpus), "--memory", "1G", "--no-reboot",
                "--kernel", os.path.join(d, "Image"),
                "--initrd", os.path.join(d, "initramfs.cpio.gz"),
                "--cmdline", CMDLINE, "--disk", img]
        return argv + (["--engine", "interp"] if target == "vessel-interp" else [])
    return [opts.qemu, "-M", "virt", "-nographic", "-smp", str(opts.cpus), "-m", "1G",
            "-no-reboot", "-bios", os.path.join(d, "fw_dynamic.bin"),
            "-kernel", os.path.join(d, "Image"), "-initrd", os.path.join(d, "initramfs.cpio.gz"),
            "-append", CMDLINE,
            "-drive", f"if=none,file={img},format=raw,id=d0,discard=unmap",
            "-device", "virtio-blk-device,drive=d0"]


def drop_caches():
    if os.geteuid() == 0:
        subprocess.run(["sync"], check=False)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def run_target(target, opts, d, stage1, tmp, log_path):
    img = os.path.join(tmp, f"{target}.img")
    subprocess.run(["cp", "--sparse=always", stage1, img], check=True)
    drop_caches()
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            rc = subprocess.run(vm_argv(target, opts, d, img), stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT,
                                timeout=opts.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    el = time.monotonic() - t0
    os.unlink(img)
    with open(log_path, "rb") as f:
        ok = b"\nVESSEL-ROOTFS-OK" in f.read()
    if rc != 0 or not ok:
        raise RuntimeError(f"exit {rc}, {'' if ok else 'no '}VESSEL-ROOTFS-OK (log {log_path})")
    return el


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--cpus", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--only", default="vessel,qemu",
                    help="comma-separated subset of " + ",".join(TARGETS))
    ap.add_argument("--vessel", default=os.path.join(ROOT, "vessel"))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--stage1", metavar="IMG", help="an image from build-rootfs.sh --stage1-only")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--keep-logs", metavar="DIR")
    opts = ap.parse_args()
    only = [t.strip() for t in opts.only.split(",") if t.strip()]
    bad = [t for t in only if t not in TARGETS]
    if bad or not only or opts.runs < 1 or opts.cpus < 1:
        print(f"debootstrap.py: bad arguments ({', '.join(bad) or 'runs/cpus/only'})",
              file=sys.stderr)
        return 2
    d = os.path.join(guest.cache_dir(), "guest", "default")
    for f in ("Image", "initramfs.cpio.gz", "fw_dynamic.bin"):
        if not os.path.isfile(os.path.join(d, f)):
            print(f"debootstrap.py: missing {d}/{f} (guest/build.sh builds it)", file=sys.stderr)
            return 1
    for t in only:
        tool = opts.qemu if t == "qemu" else opts.vessel
        if not shutil.which(tool):
            print(f"debootstrap.py: {tool} not found (needed for {t})", file=sys.stderr)
            return 1
    opts.vessel = os.path.abspath(opts.vessel) if os.path.exists(opts.vessel) else opts.vessel

    tmp = tempfile.mkdtemp(prefix="vessel-debootstrap-")
    logdir = opts.keep_logs or tmp
    os.makedirs(logdir, exist_ok=True)
    times = {t: [] for t in only}
    ok = True
    print(f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs; {opts.runs} run(s), "
          f"{opts.cpus} guest CPU(s), 1 GiB; targets {', '.join(only)}", flush=True)
    try:
        stage1 = opts.stage1
        if not stage1:
            stage1 = os.path.join(tmp, "stage1.img")
            r = subprocess.run([os.path.join(ROOT, "guest", "build-rootfs.sh"),
                                "--stage1-only", stage1])
            if r.returncode != 0:
                print("debootstrap.py: guest/build-rootfs.sh --stage1-only failed",
                      file=sys.stderr)
                return 1
        for run in range(opts.runs):
            for t in only[run % len(only):] + only[:run % len(only)]:
                try:
                    el = run_target(t, opts, d, stage1, tmp,
                                    os.path.join(logdir, f"{t}-{run}.log"))
                except (RuntimeError, subprocess.CalledProcessError) as e:
                    ok = False
                    print(f"debootstrap.py: run {run + 1} {t}: FAILED: {e}", flush=True)
                    continue
                times[t].append(el)
                print(f"debootstrap.py: run {run + 1} {t}: {el:.1f} s", flush=True)
    finally:
        if not opts.keep_logs:
            shutil.rmtree(tmp, ignore_errors=True)

    med = {t: statistics.median(v) for t, v in times.items() if v}
    print()
    print(f"{'second stage (s)':<20}" + "".join(f"{t:>14}" for t in only) + "   ratio to QEMU")
    cells = "".join(f"{med[t]:>14.1f}" if t in med else f"{'-':>14}" for t in only)
    ratios = []
    for t in only:
        if t != "qemu" and t in med and med.get("qemu"):
            r = med[t] / med["qemu"]
            ratios.append(f"{t} {r:.2f}x {'PASS' if r <= BAR else 'MISS'}")
    print(f"{'median':<20}{cells}   {', '.join(ratios) or '-'}")
    print(f"(bar: vessel at most {BAR}x QEMU's time; lower is better)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
