/*
 * Batches in 32-bit and PAE paging: the CPL3 side (batch32.S is the CPL0 side).
 * Entered with a far return at its user alias (PROBE_USER_ALIAS32 + link address), it
 * runs consecutive user records and returns to CPL0 with UD2. Only relative branches;
 * absolute references name the alias explicitly: the code runs at an address it was
 * not linked at.
 */
#include "probe_macros.h"

#define ALIAS(sym) (sym + PROBE_USER_ALIAS32)
#define REC(field) PROBE_USER_ALIAS32 + field(%ebx)

	.text
	.code32
	.global user32_loop
user32_loop:
	cmpl	%ebp, %ebx
	jae	user32_exit
	movzbl	REC(BREC_OP), %eax
	subl	$BOP_USER, %eax		/* not a CPL3 access (unsigned): back to CPL0 */
	cmpl	$BOP_ACCESS_OPS, %eax
	jae	user32_exit
	movl	REC(BREC_ARG0), %esi
	jmp	*ALIAS(user32_ops)(,%eax,4)
	.global user32_exit
user32_exit:				/* #UD back to CPL0: see batch32_ud */
	ud2

u_read1:
	movzbl	(%esi), %eax
	jmp	u_store
u_read2:
	movzwl	(%esi), %eax
	jmp	u_store
u_read4:
	movl	(%esi), %eax
	jmp	u_store
u_read8:
	movl	(%esi), %eax
	movl	4(%esi), %edx
	movl	%edx, REC(BREC_VALUE + 4)
u_store:
	movl	%eax, REC(BREC_VALUE)
u_done:
	movl	$PROBE_STATUS_OK, REC(BREC_STATUS)
	addl	$PROBE_BATCH_RECORD, %ebx
	jmp	user32_loop
u_bad:
	movl	$PROBE_STATUS_BADCMD, REC(BREC_STATUS)
	addl	$PROBE_BATCH_RECORD, %ebx
	jmp	user32_loop
u_write1:
	movl	REC(BREC_ARG1), %eax
	movb	%al, (%esi)
	jmp	u_done
u_write2:
	movl	REC(BREC_ARG1), %eax
	movw	%ax, (%esi)
	jmp	u_done
u_write4:
	movl	REC(BREC_ARG1), %eax
	movl	%eax, (%esi)
	jmp	u_done
u_write8:
	movl	REC(BREC_ARG1), %eax
	movl	REC(BREC_ARG1 + 4), %edx
	movl	%eax, (%esi)
	movl	%edx, 4(%esi)
	jmp	u_done
u_fetch:				/* the target holds "jmp *%edi" */
	movl	$ALIAS(u_done), %edi
	jmp	*%esi

	.data
	.balign 4
user32_ops:
	.long	ALIAS(u_bad), ALIAS(u_read1), ALIAS(u_read2), ALIAS(u_read4), ALIAS(u_read8)
	.long	ALIAS(u_write1), ALIAS(u_write2), ALIAS(u_write4), ALIAS(u_write8), ALIAS(u_fetch)

	.section .note.GNU-stack,"",@progbits
