#!/usr/bin/env python3
"""Write a newc cpio archive (the initramfs format, Linux
Documentation/driver-api/early-userspace/buffer-format.rst) from a spec in the
style of the kernel's gen_init_cpio. Every entry is owned by root and carries a
fixed mtime, so the output is reproducible and building it needs no root on the
host (device nodes included).

Spec lines ('#' starts a comment):
  dir   NAME MODE UID GID
  file  NAME SRC MODE UID GID
  slink NAME TARGET MODE UID GID
  nod   NAME MODE UID GID c|b MAJOR MINOR
  tree  NAME SRCDIR        (SRCDIR's contents under NAME, owner root; modes
                            normalized as git does: directories 0755, files
                            0755 if executable else 0644, so the umask of the
                            checkout does not matter; symlinks kept as links)
Missing parent directories are added (0755, root).

usage: mkcpio.py [--gzip] [--mtime N] -o OUT SPEC...   (SPEC "-" = stdin)
"""
import argparse
import gzip
import io
import os
import stat
import sys


class Archive:
    def __init__(self, mtime):
        self.mtime = mtime
        self.entries = []  # (name, mode, uid, gid, data, rdevmaj, rdevmin)
        self.names = {}

    def _parents(self, name):
        parts = name.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            p = "/".join(parts[:i])
            if p and p not in self.names:
                self.add(p, stat.S_IFDIR | 0o755, 0, 0)

    def add(self, name, mode, uid, gid, data=b"", rdev=(0, 0)):
        name = name.strip("/")
        if not name:
            return  # the root itself
        self._parents(name)
        if name in self.names:
            old = self.entries[self.names[name]]
            if stat.S_ISDIR(old[1]) and stat.S_ISDIR(mode):
                # An explicit dir line wins over an implied parent.
                self.entries[self.names[name]] = (name, mode, uid, gid, b"", 0, 0)
                return
            raise SystemExit(f"mkcpio: duplicate entry {name}")
        self.names[name] = len(self.entries)
        self.entries.append((name, mode, uid, gid, data, rdev[0], rdev[1]))

    def tree(self, name, src):
        name = name.strip("/")
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = os.path.relpath(root, src)
            base = name if rel == "." else (name + "/" + rel if name else rel)
            if rel != ".":
                self.add(base, stat.S_IFDIR | 0o755, 0, 0)
            for f in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
                path = os.path.join(root, f)
                target = (base + "/" + f) if base else f
                st = os.lstat(path)
                if stat.S_ISLNK(st.st_mode):
                    self.add(target, stat.S_IFLNK | 0o777, 0, 0, os.readlink(path).encode())
                elif stat.S_ISREG(st.st_mode):
                    with open(path, "rb") as fh:
                        perm = 0o755 if st.st_mode & 0o111 else 0o644
                        self.add(target, stat.S_IFREG | perm, 0, 0, fh.read())
                else:
                    raise SystemExit(f"mkcpio: unsupported file type: {path}")

    def write(self, out):
        def hdr(ino, mode, uid, gid, nlink, size, rmaj, rmin, namesize):
            fields = (ino, mode, uid, gid, nlink, self.mtime, size, 0, 0, rmaj, rmin, namesize, 0)
            return b"070701" + b"".join(b"%08X" % f for f in fields)

        def pad(n):
            return b"\0" * ((4 - n % 4) % 4)

        ino = 1
        for name, mode, uid, gid, data, rmaj, rmin in self.entries + [
            ("TRAILER!!!", 0, 0, 0, b"", 0, 0)
        ]:
            trailer = name == "TRAILER!!!"
            nb = name.encode() + b"\0"
            nlink = 2 if stat.S_ISDIR(mode) else 1
            h = hdr(0 if trailer else ino, mode, uid, gid, nlink, len(data), rmaj, rmin, len(nb))
            out.write(h + nb + pad(len(h) + len(nb)))
            out.write(data + pad(len(data)))
            ino += 1


def parse_spec(arc, lines, where):
    for lineno, line in enumerate(lines, 1):
        f = line.split("#", 1)[0].split()
        if not f:
            continue

        def bad():
            raise SystemExit(f"mkcpio: {where}:{lineno}: bad line: {line.strip()}")

        kind = f[0]
        try:
            if kind == "dir" and len(f) == 5:
                arc.add(f[1], stat.S_IFDIR | int(f[2], 8), int(f[3]), int(f[4]))
            elif kind == "file" and len(f) == 6:
                with open(f[2], "rb") as fh:
                    arc.add(f[1], stat.S_IFREG | int(f[3], 8), int(f[4]), int(f[5]), fh.read())
            elif kind == "slink" and len(f) == 6:
                arc.add(f[1], stat.S_IFLNK | int(f[3], 8), int(f[4]), int(f[5]), f[2].encode())
            elif kind == "nod" and len(f) == 8 and f[5] in ("c", "b"):
                t = stat.S_IFCHR if f[5] == "c" else stat.S_IFBLK
                arc.add(f[1], t | int(f[2], 8), int(f[3]), int(f[4]), b"", (int(f[6]), int(f[7])))
            elif kind == "tree" and len(f) == 3:
                arc.tree(f[1], f[2])
            else:
                bad()
        except ValueError:
            bad()


def main():
    ap = argparse.ArgumentParser(description="write a reproducible newc cpio archive")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--gzip", action="store_true", help="gzip the archive (mtime 0, -9)")
    ap.add_argument("--mtime", type=int, default=int(os.environ.get("SOURCE_DATE_EPOCH", "0")))
    ap.add_argument("spec", nargs="+")
    a = ap.parse_args()
    arc = Archive(a.mtime)
    for s in a.spec:
        if s == "-":
            parse_spec(arc, sys.stdin.read().splitlines(), "<stdin>")
        else:
            with open(s) as fh:
                parse_spec(arc, fh.read().splitlines(), s)
    buf = io.BytesIO()
    arc.write(buf)
    data = buf.getvalue()
    if a.gzip:
        data = gzip.compress(data, compresslevel=9, mtime=0)
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
