#!/usr/bin/env python3
"""qcow2 against raw in one vessel boot (issue 11's bar: qcow2 at least 0.9x raw).

usage: bench/qcow2_pair.py [--rounds N] [--runtime S] [--size SIZE] [--vessel PATH]
                           [--image IMG] [--keep-log FILE]

bench/fio.py compares the two formats across boots: each target boots Debian afresh, and under
the JIT the guest's own speed varies by some 15% from boot to boot (where its hot code lands),
which is as large as the difference being measured; at QD1 the guest's CPU time per request
is most of the request. Here one Debian boot (1 vCPU, 1 GiB) gets both data disks: the same
random data (--size, default 1G) as a raw image (serial benchraw) and as its `qemu-img
convert` qcow2 (serial benchq2, every cluster allocated), and runs fio.py's four jobs on
each, alternating which goes first, --rounds times (default 5). Both disks are read once
first so that both images are in the host page cache alike. Prints the host CPU, every
round, the medians and qcow2/raw with PASS/MISS against 0.9x. Exit status 0 when every job
ran, 1 otherwise, 2 for bad arguments. Python 3 standard library; fio, qemu-img on the host.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
import fio  # noqa: E402  (JOBS, fio_args, parse_terse)
import run as guest  # noqa: E402
import run_disk  # noqa: E402
from debootstrap import cpu_model  # noqa: E402

BAR = 0.9


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--size", default="1G")
    ap.add_argument("--vessel", default=os.path.join(ROOT, "vessel"))
    ap.add_argument("--image", help="Debian root disk (default: the cached one)")
    ap.add_argument("--boot-timeout", type=float, default=600)
    ap.add_argument("--keep-log", metavar="FILE")
    opts = ap.parse_args()
    try:
        size = guest.parse_size(opts.size)
    except ValueError:
        size = 0
    if opts.rounds < 1 or opts.runtime < 1 or size < (64 << 20) or size % (1 << 20):
        print("qcow2_pair.py: bad arguments (rounds, runtime >= 1; size >= 64M, whole MiB)",
              file=sys.stderr)
        return 2
    image = opts.image or os.path.join(guest.cache_dir(), "guest/debian/debian.img")
    if not os.path.isfile(image):
        print(f"qcow2_pair.py: missing {image} (guest/build-rootfs.sh builds it)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="vessel-q2pair-")
    ok = True
    res = {"raw": {}, "qcow2": {}}
    print(f"host CPU: {cpu_model()}, {os.cpu_count()} CPUs; {opts.rounds} rounds, "
          f"{opts.runtime} s per job, data disks {opts.size}", flush=True)
    try:
        root, raw, q2 = (os.path.join(tmp, n) for n in ("root.img", "data.img", "data.qcow2"))
        subprocess.run(["cp", "--sparse=always", image, root], check=True)
        with open(raw, "wb") as f:
            for _ in range(size >> 20):
                f.write(os.urandom(1 << 20))
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", raw, q2], check=True)
        argv = [opts.vessel, "run", "--cpus", "1", "--memory", "1G", "--disk", root,
                "--disk", f"{raw},serial=benchraw", "--disk", f"{q2},serial=benchq2"]
        vm = guest.VM(argv, opts.keep_log or os.path.join(tmp, "console.log"))
        try:
            run_disk.login(vm, opts.boot_timeout)
            st, out = vm.sh("udevadm settle; readlink -f /dev/disk/by-id/virtio-benchraw "
                            "/dev/disk/by-id/virtio-benchq2", timeout=60)
            devs = [ln.strip() for ln in out if ln.strip().startswith("/dev/vd")]
            if st != 0 or len(devs) != 2:
                raise guest.CheckFailed(f"data disks not found: {' | '.join(out)}")
            dev = {"raw": devs[0], "qcow2": devs[1]}
            for d in devs:  # both images into the host page cache
                vm.sh(f"dd if={d} of=/dev/null bs=1M iflag=direct", timeout=300)
            for r in range(opts.rounds):
                order = ["raw", "qcow2"] if r % 2 == 0 else ["qcow2", "raw"]
                line = []
                for row, args, side, unit in fio.JOBS:
                    vals = {}
                    for fmt in order:
                        st, out = vm.sh("fio " + fio.fio_args(dev[fmt], args, opts.runtime),
                                        timeout=opts.runtime + 120)
                        if st != 0:
                            raise guest.CheckFailed(f"{row} {fmt}: fio exit {st}")
                        vals[fmt] = fio.parse_terse(out, side, unit)
                        res[fmt].setdefault(row, []).append(vals[fmt])
                    line.append(f"{row.split(' (')[0]} {vals['qcow2'] / vals['raw']:.2f}x")
                print(f"qcow2_pair.py: round {r + 1} ({'/'.join(order)} first): "
                      + ", ".join(line), flush=True)
            vm.send("poweroff -f\n")
            vm.wait_exit(30)
        finally:
            vm.close()
    except (guest.CheckFailed, subprocess.TimeoutExpired, subprocess.CalledProcessError) as e:
        ok = False
        print(f"qcow2_pair.py: FAILED: {e}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"{'metric':<28}{'raw':>12}{'qcow2':>12}{'qcow2/raw':>12}")
    for row, _, _, _ in fio.JOBS:
        a, b = res["raw"].get(row), res["qcow2"].get(row)
        if not a or not b:
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        r = mb / ma
        print(f"{row:<28}{ma:>12.0f}{mb:>12.0f}{r:>11.2f}x  {'PASS' if r >= BAR else 'MISS'}")
    print(f"(medians of the rounds; bar: qcow2 at least {BAR}x raw)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
