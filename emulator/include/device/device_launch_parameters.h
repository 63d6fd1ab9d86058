/* Emulator stand-in for <device_launch_parameters.h> in kernel sources: the device shim is already
 * force-included, so there is nothing more to declare. */
#include "ressl_emu_device.h"
