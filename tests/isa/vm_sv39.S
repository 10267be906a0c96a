/* Sv39 translation: see vm_modes.inc. */
#define LEVELS 3
#include "vm_modes.inc"
