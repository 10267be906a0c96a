#include "test.h"
#include <stdlib.h>

struct test_entry {
    const char *name;
    test_fn fn;
};
static struct test_entry *tests;
static int ntests, cap;
int test_failures_in_current;

void test_register(const char *name, test_fn fn)
{
    if (ntests == cap) {
        cap = cap ? cap * 2 : 64;
        tests = realloc(tests, sizeof(*tests) * cap);
        if (!tests) abort();
    }
    tests[ntests++] = (struct test_entry){name, fn};
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < ntests; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1])) continue;
        test_failures_in_current = 0;
        tests[i].fn();
        if (test_failures_in_current) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("unit: %d passed, %d failed\n", passed, failed);
    free(tests);
    return failed ? 1 : 0;
}
