#!/usr/bin/env python3
"""Disassemble the blocks the JIT logged with VESSEL_JIT_DUMP (src/cpu/riscv/jit/jit.h).

    VESSEL_JIT_DUMP=all vessel run --engine jit --log-level info ... 2>log
    VESSEL_JIT_DUMP=ffffffff80001000 vessel run --engine jit --log-level info ... 2>log
    scripts/jit-dump.py log            # or: ... 2>&1 | scripts/jit-dump.py

Prints each block's guest instructions as logged, then its host code through
`objdump -D -b binary -m i386:x86-64` (binutils). Calls, jumps and RIP-relative
operands show offsets from the block's start. Python 3 standard library only.
"""

import re
import subprocess
import sys
import tempfile

HEAD = re.compile(r"jit dump: block (0x[0-9a-f]+): (.*)")
GUEST = re.compile(r"jit dump: guest (0x[0-9a-f]+): (.*)")
HOST = re.compile(r"jit dump: host (0x[0-9a-f]+) \+([0-9a-f]+): ([0-9a-f]*)")


def disassemble(code):
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        f.write(code)
        f.flush()
        out = subprocess.run(
            ["objdump", "-D", "-b", "binary", "-m", "i386:x86-64", f.name],
            capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    # skip objdump's header (file name, format, section, label)
    for i, line in enumerate(lines):
        if line.strip().endswith("<.data>:"):
            return lines[i + 1:]
    return lines


def main():
    src = open(sys.argv[1], errors="replace") if len(sys.argv) > 1 else sys.stdin
    blocks = []  # [pc, header, guest lines, host bytes]
    for line in src:
        line = line.rstrip("\r\n")
        m = HEAD.search(line)
        if m:
            blocks.append([m.group(1), m.group(2), [], bytearray()])
            continue
        if not blocks:
            continue
        m = GUEST.search(line)
        if m and blocks[-1][0] is not None:
            blocks[-1][2].append("%s: %s" % (m.group(1), m.group(2)))
            continue
        m = HOST.search(line)
        if m and m.group(1) == blocks[-1][0]:
            blocks[-1][3] += bytes.fromhex(m.group(3))
    if not blocks:
        print("no 'jit dump:' lines (VESSEL_JIT_DUMP set? --log-level info?)",
              file=sys.stderr)
        return 1
    for pc, head, guest, host in blocks:
        print("== block %s: %s" % (pc, head))
        for g in guest:
            print("  " + g)
        print("  -- host")
        for h in disassemble(bytes(host)):
            print("  " + h)
    return 0


if __name__ == "__main__":
    sys.exit(main())
