/* Helpers shared by the probe's .S files. */
#ifndef PAGELAB_PROBE_MACROS_H
#define PAGELAB_PROBE_MACROS_H
#include "pagelab/probe_abi.h"

#define MB(off) (PROBE_MAILBOX_GPA + (off))
#define MSR_EFER 0xC0000080
#define CR0_PE 0x1
#define EFER_LMA_BIT 10
#define IDT_VECTORS 32

#ifdef __ASSEMBLY__
/* GNU as, not C: */
/* clang-format off */
/* A landing pad's way back: wait for the next command, then run it in the 32-bit
 * dispatcher. Assembles for the width of the code around it (16- or 32-bit). */
.macro WAIT_THEN_DISPATCH32
1:	movl	MB(MB_SEQ), %eax
	cmpl	MB(MB_DONE_SEQ), %eax
	jne	2f
	pause
	jmp	1b
2:	ljmpl	$PROBE_SEL_CODE32, $dispatch32
.endm
/* clang-format on */
#endif

#endif
