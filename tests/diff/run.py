#!/usr/bin/env python3
"""Differential tester: run seeded random RV64GC programs (gen.py) bare metal on an emulator
under test and on a reference, compare every sequence's dumped state, and on a divergence
name the seed, the sequence and the first unit (instruction) after which the states differ.

  tests/diff/run.py --emu ./vessel --ref qemu --seeds 2 --seqs 500 --len 100

An emulator is `qemu` (qemu-system-riscv64 -M virt -bios BIN), the path of a vessel binary
(BIN run --firmware BIN --memory 256M), or a shell command containing {bin}. The last line is
"diff: N passed, N failed" (one count per seed), as tests/run-all.sh expects.
"""
import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CROSS = os.environ.get("CROSS", "riscv64-linux-gnu-")
MARCH = "rv64gc_zba_zbb_zbs"
NAMES = (["pc"] + ["x%d" % i for i in range(1, 32)] + ["f%d" % i for i in range(32)] + ["fcsr"]
         + ["traps"] + ["mem+0x%02x" % (8 * i) for i in range(32)])


def emu_cmd(spec, binpath):
    if "{bin}" in spec:
        return ["/bin/sh", "-c", spec.replace("{bin}", shlex.quote(binpath))]
    if spec == "qemu":
        # vessel's extensions only (QEMU 7.2 adds H and Zbc by default): random encodings
        # must be illegal on both or legal on both
        return ["qemu-system-riscv64", "-M", "virt", "-cpu", "rv64,h=false,zbc=false", "-bios",
                binpath, "-nographic", "-m", "256M"]
    return [spec, "run", "--firmware", binpath, "--memory", "256M"]


def build(args, seed, outdir, name, extra):
    src = os.path.join(outdir, name + ".S")
    elf = os.path.join(outdir, name + ".elf")
    binp = os.path.join(outdir, name + ".bin")
    subprocess.run([sys.executable, os.path.join(HERE, "gen.py"), "--seed", str(seed),
                    "--seqs", str(args.seqs), "--len", str(args.len), "-o", src] + extra
                   + ([] if args.misaligned else ["--no-misaligned"])
                   + (["--user"] if args.user else []), check=True)
    subprocess.run([CROSS + "gcc", "-march=" + MARCH, "-mabi=lp64d", "-mcmodel=medany",
                    "-nostdlib", "-nostartfiles", "-static", "-fno-pic", "-no-pie",
                    "-Wl,--build-id=none", "-Wl,--no-warn-rwx-segments",
                    "-T", os.path.join(HERE, "link.ld"), "-o", elf, src], check=True)
    subprocess.run([CROSS + "objcopy", "-O", "binary", elf, binp], check=True)
    with open(src) as f:
        m = re.search(r"random instructions: (\d+)", f.read()[-100:])
    build.insns = int(m.group(1)) if m else 0
    return elf, binp


def run_both(args, binp):
    """Run emulator and reference side by side; return their output lines and exit codes."""
    procs = []
    for spec in (args.emu, args.ref):
        f = tempfile.TemporaryFile()
        p = subprocess.Popen(emu_cmd(spec, binp), stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT)
        procs.append((p, f))
    res = []
    for p, f in procs:
        try:
            rc = p.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = "timeout after %ds" % args.timeout
        f.seek(0)
        text = f.read().decode("latin-1").replace("\r", "")
        f.close()
        res.append(([ln for ln in text.split("\n") if re.match(r"^(D[0-9a-f]+|TRAP .*|END)$", ln)],
                    rc, text))
    return res


def symbols(elf):
    """Unit labels sN_uI (and sN_uI_J for the units of a loop body) -> address, sorted."""
    out = subprocess.run([CROSS + "nm", elf], capture_output=True, text=True, check=True).stdout
    syms = []
    for ln in out.splitlines():
        parts = ln.split()
        if len(parts) == 3 and re.match(r"^s\d+_u\d+(_\d+)?$", parts[2]):
            syms.append((int(parts[0], 16), parts[2]))
    return sorted(syms)


def unit_at(syms, pc):
    best = None
    for addr, name in syms:
        if addr <= pc:
            best = (addr, name)
    return best


def disasm(elf, start, stop):
    out = subprocess.run([CROSS + "objdump", "-d", "-M", "no-aliases", "--start-address=%d" % start,
                          "--stop-address=%d" % stop, elf], capture_output=True, text=True).stdout
    lines = [ln for ln in out.splitlines() if re.match(r"^\s+[0-9a-f]+:\t", ln)]
    return lines


def words(line):
    h = line[1:]
    return [int(h[16 * i:16 * i + 16], 16) for i in range(len(h) // 16)]


def describe_diff(a, b):
    wa, wb = words(a), words(b)
    rows = []
    for i, name in enumerate(NAMES):
        va = wa[i] if i < len(wa) else None
        vb = wb[i] if i < len(wb) else None
        if va != vb:
            rows.append("    %-10s emu %s  ref %s" % (name, "%016x" % va if va is not None else "-",
                                                    "%016x" % vb if vb is not None else "-"))
    return rows


def locate(args, seed, seq, outdir):
    """Rebuild sequence `seq` alone with a dump before every unit; name the first unit after
    which the emulators disagree."""
    name = "seed%d-seq%d-trace" % (seed, seq)
    elf, binp = build(args, seed, outdir, name, ["--trace", str(seq)])
    (ea, rca, _), (eb, rcb, _) = run_both(args, binp)
    syms = symbols(elf)
    print("  trace of sequence %d: %s" % (seq, os.path.join(outdir, name + ".S")))
    for j in range(max(len(ea), len(eb))):
        la = ea[j] if j < len(ea) else "(no output; exit %s)" % rca
        lb = eb[j] if j < len(eb) else "(no output; exit %s)" % rcb
        if la == lb:
            continue
        if j == 0:
            print("  the states differ before the first unit (state loading)")
        else:
            prev = words(ea[j - 1])[0]
            u = unit_at(syms, prev)
            nxt = [a for a, _ in syms if a > u[0]]
            stop = nxt[0] if nxt else u[0] + 64
            print("  first divergence after unit %s (the last state both agree on is at its "
                  "start):" % u[1])
            for ln in disasm(elf, u[0] + 16, stop):  # after the unit's 16-byte dump call
                print("   " + ln.strip())
            for trap in (la, lb):
                if trap.startswith("TRAP"):
                    f = trap.split()
                    print("  trap: mcause %s mepc %s mtval %s" % (f[1], f[2], f[3]))
        if la.startswith("D") and lb.startswith("D"):
            print("  differing state (emu = %s, ref = %s):" % (args.emu, args.ref))
            for row in describe_diff(la, lb):
                print(row)
        else:
            print("  emu: %s\n  ref: %s" % (la[:120], lb[:120]))
        return
    print("  the trace build does not diverge (the divergence depends on earlier sequences?)")


def run_seed(args, seed, outdir):
    name = "seed%d" % seed
    elf, binp = build(args, seed, outdir, name, [])
    (ea, rca, ta), (eb, rcb, tb) = run_both(args, binp)
    ok_ref = rcb == 0 and eb[-1:] == ["END"] and len(eb) == args.seqs + 1
    if not ok_ref:
        print("FAIL seed %d: the reference did not finish cleanly (exit %s, %d lines): %s"
              % (seed, rcb, len(eb), (eb[-1] if eb else tb[-300:])))
        return False
    for n in range(len(eb)):
        la = ea[n] if n < len(ea) else "(no output; exit %s: %s)" % (rca, ta[-200:])
        if la != eb[n]:
            print("FAIL seed %d: sequence %d differs (reproduce: %s --emu %s --ref %s --seeds 1 "
                  "--first-seed %d --seqs %d --len %d%s)"
                  % (seed, n, sys.argv[0], shlex.quote(args.emu), shlex.quote(args.ref), seed,
                     args.seqs, args.len, "" if args.misaligned else " --no-misaligned"))
            locate(args, seed, n, outdir)
            return False
    if rca != 0:
        print("FAIL seed %d: emulator exit status %s" % (seed, rca))
        return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--emu", default=os.path.join(ROOT, "vessel"), help="emulator under test")
    ap.add_argument("--ref", default="qemu", help="reference emulator")
    ap.add_argument("--seeds", type=int, default=2, help="number of seeds (programs)")
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--seqs", type=int, default=500, help="sequences per program")
    ap.add_argument("--len", type=int, default=100, help="units per sequence")
    ap.add_argument("--timeout", type=int, default=120, help="seconds per emulator run")
    ap.add_argument("--no-misaligned", dest="misaligned", action="store_false")
    ap.add_argument("--user", action="store_true",
                    help="sequences in user mode under Sv39 (the JIT's fast memory)")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "diff"),
                    help="where programs and traces go")
    args = ap.parse_args()
    if args.emu != "qemu" and "{bin}" not in args.emu and not os.access(args.emu, os.X_OK):
        sys.exit("run.py: emulator %r is neither qemu, a command with {bin}, nor an executable"
                 % args.emu)
    os.makedirs(args.out, exist_ok=True)
    passed = failed = insns = 0
    t0 = time.time()
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        t = time.time()
        if run_seed(args, seed, args.out):
            passed += 1
            insns += build.insns
            print("PASS seed %d: %d sequences x %d units (%.1fs)" % (seed, args.seqs, args.len,
                                                                   time.time() - t))
        else:
            failed += 1
        sys.stdout.flush()
    print("compared %d sequences, %d random instructions (%d units) in %.1fs"
          % (passed * args.seqs, insns, passed * args.seqs * args.len, time.time() - t0))
    print("diff: %d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
