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
/* Waits for the next command (MB_SEQ != MB_DONE_SEQ), then jumps to `dispatch`;
 * spins, then halts where the host allows it (the protocol is in probe_abi.h).
 * `check` and `halt` are global names for the first and last instruction of the
 * window an NMI handler must restart (NMI_RESTARTS_WAIT). Clobbers eax, ebx, ecx,
 * edx. Same bytes in 32- and 64-bit code. */
.macro WAIT_FOR_COMMAND dispatch, check, halt
1:	movl	$PROBE_SPIN_BEFORE_HALT, %ecx
2:	movl	MB(MB_SEQ), %eax
	cmpl	MB(MB_DONE_SEQ), %eax
	jne	\dispatch
	pause
	decl	%ecx
	jnz	2b
	cmpl	$0, MB(MB_HALT_OK)
	je	1b
	movl	MB(MB_NMI_COUNT), %ebx
	movl	$PROBE_WAIT_HALTED, %eax
	xchgl	%eax, MB(MB_WAITING)	/* a full barrier: announce, then look again */
	movl	MB(MB_SEQ), %eax
	cmpl	MB(MB_DONE_SEQ), %eax
	jne	4f
	.global	\check, \halt
\check:
	cmpl	MB(MB_NMI_COUNT), %ebx	/* the NMI came already */
	jne	5f
\halt:
	hlt
	jmp	\check
4:	movl	$PROBE_WAIT_HALTED, %eax	/* a command came: take the announcement back */
	xorl	%edx, %edx
	lock cmpxchgl %edx, MB(MB_WAITING)
	jne	\check			/* too late: the host's NMI is on its way */
	jmp	\dispatch
5:	movl	$0, MB(MB_WAITING)
	jmp	1b
.endm
/* In an NMI handler: an NMI that lands between the wait's last look at MB_NMI_COUNT
 * and its HLT would otherwise return to the HLT and sleep for good, so it returns to
 * the look instead. `ret_ip` is the stacked return address ((%esp) or (%rsp)); `cmp`
 * and `mov` are the width's cmpl/movl or cmpq/movq. Flags are free: IRET restores
 * them. The host then needs exactly one NMI per wake-up, and no NMI ever arrives
 * unannounced (one that did would hit whatever the probe was doing). */
.macro NMI_RESTARTS_WAIT cmp, mov, ret_ip, check, halt
	\cmp	$\check, \ret_ip
	jb	6f
	\cmp	$\halt, \ret_ip
	ja	6f
	\mov	$\check, \ret_ip
6:
.endm
/* clang-format on */
#endif

#endif
