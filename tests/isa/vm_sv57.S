/* Sv57 translation: see vm_modes.inc. */
#define LEVELS 5
#include "vm_modes.inc"
