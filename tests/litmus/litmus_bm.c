/* Bare-metal litmus program (M-mode, tests/isa/runtime.S provides reset, stacks, UART
 * printing and the pass/fail report through the SiFive test device). NHARTS harts take part;
 * LITMUS_ROUNDS rounds per test (MUST_SEE tests up to 100 times more until seen). */
#include <stdint.h>

extern void uart_puts(const char *s);
extern void uart_putdec(uint64_t v);
extern void pass(void) __attribute__((noreturn));
extern void report_fail(void) __attribute__((noreturn));
extern void park(void) __attribute__((noreturn));

#define LITMUS_PRINT(s)   uart_puts(s)
#define LITMUS_PRINT_U(v) uart_putdec(v)
#include "litmus.h"

#ifndef NHARTS
#define NHARTS 2
#endif
#ifndef LITMUS_ROUNDS
#define LITMUS_ROUNDS 50000
#endif

static volatile uint32_t go;

static unsigned hartid(void)
{
    uint64_t id;
    __asm__ __volatile__("csrr %0, mhartid" : "=r"(id));
    return (unsigned)id;
}

void test_main(void)
{
    litmus_sh.nharts = NHARTS;
    litmus_sh.rounds = LITMUS_ROUNDS;
    litmus_sh.max_rounds = 100ull * LITMUS_ROUNDS;
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    unsigned failed = litmus_main(0);
    if (failed) {
        uart_puts("FAIL: litmus: ");
        uart_putdec(failed);
        uart_puts(" test(s) failed\n");
        report_fail();
    }
    pass();
}

void test_secondary(void)
{
    unsigned h = hartid();
    if (h >= NHARTS) park();
    while (!__atomic_load_n(&go, __ATOMIC_ACQUIRE))
        ;
    litmus_main(h);
    park();
}
