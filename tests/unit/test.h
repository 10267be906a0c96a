/* Minimal unit-test framework: every test file in tests/unit registers its tests with TEST(name);
 * main.c runs them all (or those matching argv[1]) and prints "N passed, N failed". */
#ifndef VESSEL_TEST_H
#define VESSEL_TEST_H
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
extern int test_failures_in_current;

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void reg_##name(void)                                      \
    {                                                                                              \
        test_register(#name, test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);             \
            test_failures_in_current++;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                                             \
    do {                                                                                           \
        unsigned long long va_ = (unsigned long long)(a), vb_ = (unsigned long long)(b);           \
        if (va_ != vb_) {                                                                          \
            fprintf(stderr, "  %s:%d: CHECK_EQ failed: %s == %s (0x%llx != 0x%llx)\n", __FILE__,   \
                    __LINE__, #a, #b, va_, vb_);                                                   \
            test_failures_in_current++;                                                            \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *sa_ = (a), *sb_ = (b);                                                         \
        if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                               \
            fprintf(stderr, "  %s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__,   \
                    sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");                                   \
            test_failures_in_current++;                                                            \
        }                                                                                          \
    } while (0)
#endif
