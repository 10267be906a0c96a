/* Sv48 translation: see vm_modes.inc. */
#define LEVELS 4
#include "vm_modes.inc"
