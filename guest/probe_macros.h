/* Helpers shared by the probe's .S files. */
#ifndef PAGELAB_PROBE_MACROS_H
#define PAGELAB_PROBE_MACROS_H
#include "pagelab/probe_abi.h"

#define MB(off) (PROBE_MAILBOX_GPA + (off))
#define MSR_EFER 0xC0000080
#define CR0_PE 0x1
#define EFER_LMA_BIT 10
#define IDT_VECTORS 32

#endif
