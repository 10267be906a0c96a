#include "test.h"
#include "util/size.h"
#include <errno.h>

static uint64_t parse_ok(const char *s)
{
    uint64_t v = 0xdeadbeef;
    int r = size_parse(s, &v);
    if (r != 0) {
        fprintf(stderr, "  size_parse(\"%s\") = %d\n", s, r);
        test_failures_in_current++;
    }
    return v;
}

static int parse_err(const char *s)
{
    uint64_t v = 0x1234;
    int r = size_parse(s, &v);
    if (v != 0x1234) {
        fprintf(stderr, "  size_parse(\"%s\") wrote *out on error\n", s);
        test_failures_in_current++;
    }
    return r;
}

TEST(size_parse_plain_and_units)
{
    CHECK_EQ(parse_ok("4096"), 4096);
    CHECK_EQ(parse_ok("0"), 0);
    CHECK_EQ(parse_ok("007"), 7);
    CHECK_EQ(parse_ok("512k"), 512ull << 10);
    CHECK_EQ(parse_ok("512K"), 512ull << 10);
    CHECK_EQ(parse_ok("64M"), 64ull << 20);
    CHECK_EQ(parse_ok("64m"), 64ull << 20);
    CHECK_EQ(parse_ok("1G"), 1ull << 30);
    CHECK_EQ(parse_ok("2T"), 2ull << 40);
    CHECK_EQ(parse_ok("1GiB"), 1ull << 30);
    CHECK_EQ(parse_ok("1gib"), 1ull << 30);
    CHECK_EQ(parse_ok("1gb"), 1ull << 30);
    CHECK_EQ(parse_ok("1GB"), 1ull << 30);
    CHECK_EQ(parse_ok("3MiB"), 3ull << 20);
    CHECK_EQ(parse_ok("100B"), 100);
    CHECK_EQ(parse_ok("18446744073709551615"), UINT64_MAX);
    CHECK_EQ(parse_ok("16777215T"), 16777215ull << 40);
    CHECK_EQ(parse_ok("17179869183G"), 17179869183ull << 30);
}

TEST(size_parse_rejects_malformed)
{
    const char *bad[] = {"",     "12Q", "-1",    "+1",   "1.5G", "G",
                         " 1G",  "1G ", "1 G",   "0x10", "1iB",  "1Gi",
                         "1GBB", "1KM", "1Kib_", "abc",  "1e3",  "1GiBx",
                         "1b2",  "\t5", "5\n",   "B",    "iB",   "99999999999999999999Q"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = parse_err(bad[i]);
        if (r != -EINVAL) {
            fprintf(stderr, "  \"%s\" -> %d, want -EINVAL\n", bad[i], r);
            test_failures_in_current++;
        }
    }
    uint64_t v;
    CHECK_EQ(size_parse(NULL, &v), -EINVAL);
    CHECK_EQ(size_parse("1", NULL), -EINVAL);
}

TEST(size_parse_overflow)
{
    CHECK_EQ(parse_err("18446744073709551616"), -ERANGE);
    CHECK_EQ(parse_err("99999999999999999999999"), -ERANGE);
    CHECK_EQ(parse_err("17179869184G"), -ERANGE);
    CHECK_EQ(parse_err("16777216T"), -ERANGE);
    CHECK_EQ(parse_err("18014398509481984K"), -ERANGE);
    CHECK_EQ(parse_err("18446744073709551615K"), -ERANGE);
}

static const char *fmt(uint64_t b)
{
    static char buf[32];
    memset(buf, 'x', sizeof(buf));
    size_format(b, buf, sizeof(buf));
    return buf;
}

TEST(size_format_units)
{
    CHECK_STR(fmt(0), "0");
    CHECK_STR(fmt(1), "1");
    CHECK_STR(fmt(4097), "4097");
    CHECK_STR(fmt(1024), "1K");
    CHECK_STR(fmt(1536ull << 10), "1536K");
    CHECK_STR(fmt(512ull << 20), "512M");
    CHECK_STR(fmt(1ull << 30), "1G");
    CHECK_STR(fmt(3ull << 40), "3T");
    CHECK_STR(fmt(1ull << 50), "1024T");
    CHECK_STR(fmt(UINT64_MAX), "18446744073709551615");
    CHECK_STR(fmt((1ull << 40) + (1ull << 20)), "1048577M");
}

TEST(size_format_roundtrip_and_truncation)
{
    const uint64_t vals[] = {0,           1,          1023,       1024,         65536,
                             64ull << 20, 5ull << 30, 7ull << 40, (1ull << 63), UINT64_MAX - 1};
    for (unsigned i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        uint64_t back = 0;
        CHECK_EQ(size_parse(fmt(vals[i]), &back), 0);
        CHECK_EQ(back, vals[i]);
    }
    char small[4] = "zzz";
    size_format(1ull << 30, small, 2);
    CHECK_STR(small, "1");
    size_format(123456, small, sizeof(small));
    CHECK_STR(small, "123");
    small[0] = 'q';
    size_format(5, small, 0); /* must not write */
    CHECK_EQ(small[0], 'q');
}
