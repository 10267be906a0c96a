/* Ctrl-A escapes of the terminal backend (QEMU-style), internal to src/backend/chr/ and exposed
 * for unit tests. Ctrl-A x quits, Ctrl-A p asks the guest to power down, Ctrl-A h (or ?) prints
 * help, Ctrl-A Ctrl-A sends one Ctrl-A.
 * Ctrl-A followed by any other byte (including 'c': there is no monitor) is not an escape: both
 * bytes go to the guest unchanged. */
#ifndef VESSEL_BACKEND_CHR_ESCAPE_H
#define VESSEL_BACKEND_CHR_ESCAPE_H
#include <stdbool.h>
#include <stdint.h>

#define CHR_ESCAPE_CHAR 0x01 /* Ctrl-A */

enum chr_escape_event { CHR_ESC_NONE, CHR_ESC_QUIT, CHR_ESC_HELP, CHR_ESC_POWERDOWN };

struct chr_escape {
    bool armed; /* the previous byte was an unconsumed Ctrl-A */
};

/* Feed one byte typed at the terminal. Stores the 0, 1 or 2 bytes to send to the guest in out
 * and returns how many; *ev is set to the command recognised (CHR_ESC_NONE if none). */
unsigned chr_escape_feed(struct chr_escape *e, uint8_t ch, uint8_t out[2],
                         enum chr_escape_event *ev);

/* The help text printed for Ctrl-A h ("\r\n" line ends: the terminal is in raw mode). */
extern const char chr_escape_help[];
#endif
