#!/usr/bin/env python3
"""Hostile-guest tests (issue 8): bare-metal programs (tests/hostile/virtio_hostile.c) that
misuse vessel's virtio-blk on a real --disk, and what vessel must do about it.

  tests/hostile/run.py [--no-build] VESSEL...   (every case on each binary)

  flood            a head re-published while in flight (disk stalled through the test hook
                   VESSEL_TEST_BLOCK_STALL=1): the guest sees DEVICE_NEEDS_RESET; vessel exits 0
                   within 1 s of the poweroff
  reset_poweroff   status 0 while a read is stuck: status reads non-zero while draining;
                   poweroff right after: vessel exits 0 within 1 s of it
  reset_ctrl_a_x   the same, then the guest spins: Ctrl-A x typed on the console (a pty:
                   vessel reads the escape only from a terminal) ends vessel (exit 0) within 1 s
  reset_ok         a working disk: the reset completes (status reads 0), the device works again

Last line: "hostile: N passed, N failed"."""
import os
import pty
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(ROOT, "build", "hostile")
LIMIT = 1.0  # seconds from poweroff / Ctrl-A x to exit


class Run:
    """vessel on a program, its console read line by line with arrival times."""

    def __init__(self, vessel, prog, disk, stall, tty=False):
        env = dict(os.environ)
        env.pop("VESSEL_TEST_BLOCK_STALL", None)
        if stall:
            env["VESSEL_TEST_BLOCK_STALL"] = "1"
        self.cmd = [vessel, "run", "--firmware", os.path.join(OUT, prog + ".bin"), "--disk", disk,
                    "--memory", "64M"]
        # The console escape (Ctrl-A x) is only read from a terminal (src/backend/chr/stdio.c):
        # give vessel a pty as stdin when the test types it.
        self.master = None
        stdin = subprocess.DEVNULL
        if tty:
            self.master, slave = pty.openpty()
            stdin = slave
        self.p = subprocess.Popen(self.cmd, stdin=stdin, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        if tty:
            os.close(slave)
        self.lines = []  # (time, text)
        self.cv = threading.Condition()
        self.err = b""
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for raw in self.p.stdout:
            with self.cv:
                self.lines.append((time.monotonic(), raw.decode(errors="replace").strip()))
                self.cv.notify_all()

    def _read_err(self):
        self.err = self.p.stderr.read()

    def wait_line(self, text, timeout=30):
        end = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, l in self.lines:
                    if l == text:
                        return t
                left = end - time.monotonic()
                if left <= 0 or self.p.poll() is not None:
                    return None
                self.cv.wait(min(left, 0.05))

    def wait_exit(self, timeout=30):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None, time.monotonic()
        return self.p.returncode, time.monotonic()

    def text(self):
        with self.cv:
            return "\n".join(l for _, l in self.lines)


def make_disk():
    fd, path = tempfile.mkstemp(prefix="vessel-hostile-", suffix=".img")
    img = bytearray(1 << 20)
    img[512] = 0xA5  # sector 1, as reset_ok expects
    img[1023] = 0x5A
    os.write(fd, img)
    os.close(fd)
    return path


def check(name, ok, why, run):
    if ok:
        print(f"PASS {name}")
        return True
    print(f"FAIL {name}: {why}")
    print("  console: " + run.text().replace("\n", "\n           "))
    print("  stderr:  " + run.err.decode(errors="replace").strip().replace("\n", "\n           "))
    return False


def t_poweroff(vessel, prog, expect, stall):
    disk = make_disk()
    try:
        r = Run(vessel, prog, disk, stall)
        t_off = r.wait_line("POWEROFF")
        rc, t_exit = r.wait_exit()
        out = r.text()
        if t_off is None:
            return r, False, "the program never reached its poweroff"
        missing = [e for e in expect if e not in out.splitlines()]
        if missing:
            return r, False, f"missing console line(s) {missing}"
        if rc != 0:
            return r, False, f"exit status {rc}"
        took = t_exit - t_off
        if took > LIMIT:
            return r, False, f"exit took {took:.2f} s after poweroff (limit {LIMIT} s)"
        return r, True, f"{took:.2f} s"
    finally:
        os.unlink(disk)


def t_ctrl_a_x(vessel):
    disk = make_disk()
    try:
        r = Run(vessel, "reset_spin", disk, True, tty=True)
        if r.wait_line("SPIN") is None:
            r.p.kill()
            r.wait_exit()
            return r, False, "the program never reached its spin"
        out = r.text()
        if not any(l.startswith("reset pending: status") for l in out.splitlines()):
            r.p.kill()
            r.wait_exit()
            return r, False, "status did not read non-zero during the reset"
        t_quit = time.monotonic()
        os.write(r.master, b"\x01x")
        rc, t_exit = r.wait_exit(timeout=10)
        if rc is None:
            return r, False, "Ctrl-A x did not end vessel within 10 s"
        took = t_exit - t_quit
        if rc != 0:
            return r, False, f"exit status {rc}"
        if took > LIMIT:
            return r, False, f"exit took {took:.2f} s after Ctrl-A x (limit {LIMIT} s)"
        return r, True, f"{took:.2f} s"
    finally:
        os.unlink(disk)


def main():
    args = sys.argv[1:]
    build = True
    if args and args[0] == "--no-build":
        build = False
        args = args[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        return 2
    if build or not os.path.exists(os.path.join(OUT, "flood.bin")):
        subprocess.run(["make", "-s", "-C", HERE], check=True)
    passed = failed = 0
    for arg in args:
        vessel = os.path.abspath(arg)
        tag = os.path.basename(vessel)
        cases = [
            ("flood", lambda: t_poweroff(vessel, "flood", ["needs-reset: ok"], True)),
            ("reset_poweroff", lambda: t_poweroff(vessel, "reset_poweroff", [], True)),
            ("reset_ctrl_a_x", lambda: t_ctrl_a_x(vessel)),
            ("reset_ok", lambda: t_poweroff(vessel, "reset_ok",
                                            ["reset done", "read after reset: ok"], False)),
        ]
        for name, fn in cases:
            r, ok, why = fn()
            if ok:
                print(f"PASS {tag} {name} ({why})")
                passed += 1
            else:
                check(f"{tag} {name}", False, why, r)
                failed += 1
    print(f"hostile: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
