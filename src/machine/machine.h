/* vessel's board: QEMU riscv virt memory map (DESIGN.md), built from a VM configuration. */
#ifndef VESSEL_MACHINE_MACHINE_H
#define VESSEL_MACHINE_MACHINE_H
#include "backend/chr/chr.h"
#include "cpu/riscv/hart.h"
#include "dev/syscon.h"
#include "irq/aclint.h"
#include "machine/bus.h"
#include "machine/guestmem.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define RAM_BASE          0x80000000ull
#define CLINT_BASE        0x02000000ull
#define PLIC_BASE         0x0c000000ull
#define UART0_BASE        0x10000000ull
#define SYSCON_BASE       0x00100000ull
#define RTC_BASE          0x00101000ull
#define VIRTIO_BASE       0x10001000ull
#define UART0_IRQ         10
#define RTC_IRQ           11
#define VMGENID_BASE      0x00102000ull
#define VMGENID_IRQ       20 /* after the virtio slots' sources (fdt_virtio_irq: up to 19) */
#define MACHINE_MAX_HARTS 64
#define MACHINE_MIN_RAM   (64ull << 20)
#define VIRTIO_SLOTS      16 /* virtio-mmio slots (fdt.h: FDT_MAX_VIRTIO, fdt_virtio_irq) */
#define MACHINE_MAX_DISKS 7  /* slots 0..ndisks-1; then entropy, input, network, vsock */

struct blk_backend;
struct net_backend;
struct vsock_backend;
struct machine_disk {
    struct blk_backend *backend; /* opened (and locked) by the caller, kept across reboots */
    const char *serial;          /* NULL: none */
};

struct loader_file;
enum { MACHINE_IMG_FIRMWARE, MACHINE_IMG_KERNEL, MACHINE_IMG_INITRD, MACHINE_NIMG };

struct machine_config {
    unsigned cpus;
    uint64_t ram_size;
    const char *firmware; /* raw binary at RAM_BASE (NULL: none, kernel entered directly) */
    const char *kernel;   /* RISC-V Linux Image (NULL: firmware only) */
    const char *initrd;   /* NULL: none */
    const char *cmdline;  /* NULL: none */
    /* Public keys for the guest's root, lines of an authorized_keys file (vm_ssh_keys_add),
     * passed as /chosen/vessel,ssh-authorized-keys; NULL: none. */
    const char *ssh_keys;
    bool trace;      /* log traps */
    unsigned ndisks; /* virtio-blk devices in slots 0.. (vda, vdb, ...) */
    struct machine_disk disks[MACHINE_MAX_DISKS];
    /* Boot images opened by the caller (read from these on every boot, so a sandboxed process
     * that may no longer open files can reboot); NULL: open the path. */
    const struct loader_file *images[MACHINE_NIMG];
    /* virtio-net on this backend (opened by the caller, kept across reboots), in the slot after
     * virtio-input; NULL: no network device. */
    struct net_backend *net;
    uint8_t mac[6];
    /* virtio-vsock on this backend (opened by the caller, kept across reboots) with this guest
     * CID, in the slot after the network device (or virtio-input); NULL: none. */
    struct vsock_backend *vsock;
    uint32_t vsock_cid;
    /* Called first on every hart thread (the VM narrows the thread's seccomp filter there);
     * NULL: nothing. A negative return stops the machine with MEV_HOST_ERROR. */
    int (*hart_thread_init)(void);

    /* Restore from a snapshot (machine/snapshot.h): guest RAM is the memory file, mapped
     * copy-on-write (restore time does not grow with guest memory), and no image is loaded;
     * the caller then applies the state with machine_snapshot_load before machine_run. */
    bool restore;
    int restore_mem_fd;

    /* --engine and --jit-cache (bytes per hart, 0: the default) */
    enum hart_engine engine;
    uint64_t jit_cache_size;
    /* --mmu: the widest satp mode the harts offer (8 Sv39, 9 Sv48, 10 Sv57; 0: Sv39) */
    unsigned mmu_mode;
    /* Guest RAM in this memfd (ram_size bytes, made by the caller before the sandbox and kept
     * across reboots: each machine zeroes it when destroyed), mapped shared so that the JIT
     * can map user pages again (fast memory); false: private anonymous memory. Not used when
     * restoring (RAM is then the snapshot's memory file, copy-on-write). */
    bool ram_memfd;
    int ram_fd;
};

enum machine_event {
    MEV_NONE = 0,
    MEV_POWEROFF,
    MEV_REBOOT,     /* after machine_request_powerdown a guest reboot is reported as MEV_POWEROFF */
    MEV_GUEST_FAIL, /* test device failure code */
    MEV_FATAL,      /* a hart cannot continue */
    MEV_QUIT,       /* user asked (Ctrl-A x, signal) */
    MEV_HOST_ERROR,
};

struct plic;
struct uart;
struct goldfish_rtc;
struct vmgenid;
struct vblk;
struct vrng;
struct vinput;
struct vnet;
struct vsock_dev;

struct machine {
    struct machine_config cfg;
    uint8_t *ram;
    bool ram_shared; /* ram maps cfg.ram_fd */
    struct bus bus;
    struct aclint clint;
    struct plic *plic;
    struct uart *uart;
    struct goldfish_rtc *rtc;
    struct vmgenid *genid;
    struct syscon syscon;
    struct guest_mem gm;
    struct vblk *blk[MACHINE_MAX_DISKS];
    struct vrng *rng;
    struct vinput *input;
    struct vnet *net;
    struct vsock_dev *vsock;
    bool powerdown_requested; /* under ev_lock */
    struct chr *console;
    unsigned nharts;
    struct hart *harts; /* array of nharts */
    pthread_t *threads;
    bool threads_started;

    pthread_mutex_t ev_lock;
    pthread_cond_t ev_cond;
    enum machine_event ev;
    int fail_code;
    char msg[256];

    uint64_t entry_kernel, fdt_addr;
};

/* Bytes of translated code each hart may keep under cfg's engine (its --jit-cache or the
 * default; 0 under the interpreter): memory the VM process may use beyond guest RAM. */
uint64_t machine_code_per_hart(const struct machine_config *cfg);

/* Build the machine and load its images. On failure returns -errno with a one-line message in
 * err (bad input: -EINVAL/-ENOENT/-E2BIG...; host problems otherwise). */
int machine_create(struct machine **out, const struct machine_config *cfg, struct chr *console,
                   char *err, size_t errlen);
/* Start the harts and block until an event ends the run; returns the event. */
enum machine_event machine_run(struct machine *m);
/* Post an event from any thread (first one wins); stops the harts. */
void machine_post_event(struct machine *m, enum machine_event ev, int code, const char *msg);
/* Ask the guest to shut down cleanly (any thread): one press and release of KEY_POWER
 * (systemd-logind powers off), then Ctrl-Alt-Del (the kernel's VT keyboard sends init SIGINT;
 * systemd starts ctrl-alt-del.target, a reboot, which works without logind and D-Bus). From
 * then on a guest reboot ends the run as a poweroff (as Firecracker's SendCtrlAltDel does).
 * If the guest's driver has no buffers yet the keys wait for them (bounded); a device reset
 * drops them. Nothing waits: the caller decides how long to give the guest, then forces. */
void machine_request_powerdown(struct machine *m);
void machine_destroy(struct machine *m);
#endif
