#!/bin/bash
# qcow2 interop with qemu-img, both ways, on the host (no guest):
#   - images qemu-img makes (plain, with a qcow2 or raw backing chain, compressed with
#     deflate and with zstd, 512-byte and 2 MiB clusters) read the same through vessel
#     (vessel disk convert -O raw) as through qemu-img;
#   - images vessel makes (disk create -f qcow2 [--backing], disk convert [-c] -O qcow2) pass
#     qemu-img check and qemu-img compare;
#   - vessel disk check agrees with qemu-img check: clean images clean, a leak made by hand
#     found and repaired;
#   - internal snapshots made by either tool are listed, applied and deleted by the other;
#   - corrupted headers are refused with one line, never a crash.
# Usage: tests/disk/run_qcow2.sh [VESSEL]   Last line: "qcow2: N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
V=$(realpath "${1:-./vessel}")
T=$(mktemp -d /tmp/vessel-qcow2-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
pass=0
fail=0
ok() { echo "PASS $1"; pass=$((pass + 1)); }
ko() { echo "FAIL $1: $2"; fail=$((fail + 1)); }
# check NAME CMD...: the command must succeed
check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else ko "$name" "$(echo "$out" | tail -n 3 | tr '\n' ' ')"; fi
}
same() { # same NAME A B: equal contents
    if cmp -s "$2" "$3"; then ok "$1"; else ko "$1" "$2 and $3 differ"; fi
}
command -v qemu-img >/dev/null || { echo "qcow2: qemu-img not found (apt-get install qemu-utils)"; echo "qcow2: 0 passed, 1 failed"; exit 1; }
cd "$T"

# Test data: a raw image with random and patterned regions and holes.
head -c $((3 << 20)) /dev/urandom >src.raw
python3 - <<'PY'
with open("src.raw", "r+b") as f:
    f.seek(5 << 20); f.write(b"\xab" * (1 << 20))     # compressible
    f.seek(9 << 20); f.write(b"vessel" * 1000)
    f.truncate(16 << 20)
PY

# 1. qemu-img -> vessel
for opts in "" "-c" "-c -o compression_type=zstd" "-o cluster_size=512" "-o cluster_size=2M" "-o refcount_bits=1" "-o refcount_bits=64"; do
    tag=$(printf "%s" "q$opts" | tr -c "a-z0-9" "_")
    # shellcheck disable=SC2086
    qemu-img convert -O qcow2 $opts src.raw "$tag.qcow2"
    rm -f "$tag.raw"
    check "read_${tag}_convert" "$V" disk convert -O raw "$tag.qcow2" "$tag.raw"
    same "read_${tag}_same" src.raw "$tag.raw"
    check "check_${tag}" "$V" disk check "$tag.qcow2"
done

# A chain: raw base <- qcow2 mid (qemu-io writes) <- qcow2 top (more writes).
cp src.raw base.raw
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2
qemu-io -c "write -P 0x11 1M 100k" -c "write -z 2M 64k" -c "discard 9M 64k" mid.qcow2 >/dev/null
qemu-img create -q -f qcow2 -b mid.qcow2 -F qcow2 top.qcow2
qemu-io -c "write -P 0x22 1000k 70k" -c "write -P 0x33 15M 1M" top.qcow2 >/dev/null
qemu-img convert -O raw top.qcow2 want.raw
check chain_convert "$V" disk convert -O raw top.qcow2 chain.raw
same chain_same want.raw chain.raw
info=$("$V" disk info top.qcow2)
if echo "$info" | grep -q "backing chain:  ./mid.qcow2 (qcow2) -> ./base.raw (raw)"; then ok chain_info; else ko chain_info "$info"; fi

# 2. vessel -> qemu-img
check create "$V" disk create -f qcow2 v.qcow2 1G
check create_qemu_check qemu-img check v.qcow2
check create_backing "$V" disk create -f qcow2 vb.qcow2 --backing top.qcow2
check create_backing_qemu_check qemu-img check vb.qcow2
check create_backing_compare qemu-img compare vb.qcow2 want.raw
check convert_to_qcow2 "$V" disk convert -O qcow2 top.qcow2 vc.qcow2
check convert_qemu_check qemu-img check vc.qcow2
check convert_compare qemu-img compare -f qcow2 -F raw vc.qcow2 want.raw
# Reading 512-byte clusters and writing them into a new image (the guest writes into
# qemu-img's images in tests/guest/run_blk.py, qcow2 and qcow2_crash).
check convert_compressed "$V" disk convert -c -O qcow2 src.raw vz.qcow2
check convert_compressed_qemu_check qemu-img check vz.qcow2
check convert_compressed_compare qemu-img compare -f qcow2 -F raw vz.qcow2 src.raw
if qemu-img check vz.qcow2 | grep -q "[1-9][0-9.]*% compressed"; then ok convert_compressed_is; else ko convert_compressed_is "$(qemu-img check vz.qcow2 | tail -2)"; fi
check convert_small_clusters "$V" disk convert -O qcow2 q_o_cluster_size_512.qcow2 vs.qcow2
check convert_small_qemu_check qemu-img check vs.qcow2

# 3. check and repair agree with qemu-img: a leaked cluster made with qemu-io's help
cp v.qcow2 leak.qcow2
python3 - <<'PY'
import struct
with open("leak.qcow2", "r+b") as f:
    h = f.read(112)
    rt = struct.unpack(">Q", h[48:56])[0]
    f.seek(rt); rb = struct.unpack(">Q", f.read(8))[0]
    f.seek(rb + 2 * 100); f.write(struct.pack(">H", 1))   # cluster 100: counted, unused
    f.seek(100 * 65536); f.write(b"\0" * 65536)
PY
qemu-img check leak.qcow2 >/dev/null 2>&1
[ $? -eq 3 ] && ok leak_qemu_sees_it || ko leak_qemu_sees_it "qemu-img check status not 3"
"$V" disk check leak.qcow2 >/dev/null 2>&1
[ $? -eq 3 ] && ok leak_vessel_sees_it || ko leak_vessel_sees_it "vessel disk check status not 3"
check leak_repair "$V" disk check --repair leak.qcow2
check leak_qemu_clean qemu-img check leak.qcow2

# 4. internal snapshots: vessel's listed by qemu-img and QEMU's by vessel; apply and delete
#    from either side leave the data and qemu-img check right
"$V" disk create -f qcow2 s.qcow2 64M >/dev/null
qemu-io -c "write -P 0xa1 0 3M" -c "write -P 0xa2 10M 100k" s.qcow2 >/dev/null
qemu-img convert -O raw s.qcow2 sA.raw
check snap_create "$V" disk snapshot s.qcow2 create first
if qemu-img snapshot -l s.qcow2 | grep -q " first "; then ok snap_qemu_lists_vessels; else ko snap_qemu_lists_vessels "$(qemu-img snapshot -l s.qcow2)"; fi
check snap_create_qemu_check qemu-img check s.qcow2
qemu-io -c "write -P 0xb1 1M 2M" -c "write -P 0xb2 30M 64k" -c "discard 10M 64k" s.qcow2 >/dev/null
qemu-img convert -O raw s.qcow2 sB.raw
qemu-img snapshot -c qemu-snap s.qcow2
if "$V" disk snapshot s.qcow2 list | grep -q " qemu-snap "; then ok snap_vessel_lists_qemus; else ko snap_vessel_lists_qemus "$("$V" disk snapshot s.qcow2 list 2>&1)"; fi
check snap_check "$V" disk check s.qcow2
# convert -l: a snapshot's state, read without changing the image (as qemu-img convert -l)
check snap_convert_l "$V" disk convert -l first -O raw s.qcow2 sA-l.raw
check snap_convert_l_data cmp sA-l.raw sA.raw
check snap_convert_l_qemus "$V" disk convert -l qemu-snap -O qcow2 s.qcow2 sB-l.qcow2
check snap_convert_l_qemus_data qemu-img compare sB-l.qcow2 sB.raw
if "$V" disk convert -l nope -O raw s.qcow2 nope.raw 2>/dev/null || [ -e nope.raw ]; then ko snap_convert_l_missing "converted a snapshot that does not exist"; else ok snap_convert_l_missing; fi
check snap_apply "$V" disk snapshot s.qcow2 apply first
check snap_apply_data qemu-img compare s.qcow2 sA.raw
check snap_apply_qemu_check qemu-img check s.qcow2
check snap_apply_qemus "$V" disk snapshot s.qcow2 apply qemu-snap
check snap_apply_qemus_data qemu-img compare s.qcow2 sB.raw
check snap_delete "$V" disk snapshot s.qcow2 delete first
check snap_delete_qemu_check qemu-img check s.qcow2
qemu-img snapshot -a qemu-snap s.qcow2
check snap_qemu_applies_after qemu-img compare s.qcow2 sB.raw
check snap_delete_qemus "$V" disk snapshot s.qcow2 delete qemu-snap
check snap_all_gone_qemu_check qemu-img check s.qcow2
check snap_all_gone_vessel_check "$V" disk check s.qcow2
check snap_all_gone_data qemu-img compare s.qcow2 sB.raw

# 5. corrupted headers: one line, status 2, no crash
n=0
for off_val in "20:00000008" "20:00000016" "36:00000000" "44:00000000" "48:00000001" "56:00000000" "72:00000100" "96:00000009"; do
    off=${off_val%%:*}
    val=${off_val#*:}
    cp v.qcow2 bad$n.qcow2
    printf "$(echo "$val" | sed 's/../\\x&/g')" | dd of=bad$n.qcow2 bs=1 seek="$off" conv=notrunc status=none
    out=$("$V" disk info bad$n.qcow2 2>&1)
    rc=$?
    if [ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]; then ok "bad_header_${off}_$val"; else ko "bad_header_${off}_$val" "status $rc: $out"; fi
    n=$((n + 1))
done

echo "qcow2: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
