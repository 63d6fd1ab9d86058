/* Emulator stand-in for <vector_types.h> in kernel sources: the device shim is already
 * force-included, so there is nothing more to declare. */
#include "ressl_emu_device.h"
