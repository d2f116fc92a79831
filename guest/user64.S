/*
 * Batches: the CPL3 side. Entered with SYSRET at its user alias (PROBE_USER_ALIAS +
 * link address), it runs consecutive user records natively and returns to CPL0 with
 * UD2 (INT n and OUT are not usable at CPL3 on every KVM, and SYSCALL from CPL3
 * lands at CPL3 on PVM). Only relative
 * branches and r13-based data: the code runs at an address it was not linked at.
 * Registers: see batch64.S.
 */
#include "probe_macros.h"

#define REC(field) field(%rbx,%r13)

	.text
	.code64
	.global user64_loop
user64_loop:				/* BOP_END is no user op: it exits too */
	movzbl	REC(BREC_OP), %eax
	subl	$BOP_USER, %eax		/* not a CPL3 access (unsigned): back to CPL0 */
	cmpl	$BOP_ACCESS_OPS, %eax
	jae	u_exit
	movq	REC(BREC_ARG0), %rsi
	movq	user_ops(%r13,%rax,8), %rcx
	addq	%r13, %rcx
	jmp	*%rcx
u_exit:
	.global user64_exit
user64_exit:				/* #UD back to CPL0: see batch64_ud */
	ud2

u_read1:
	movzbq	(%rsi), %rax
	jmp	u_store
u_read2:
	movzwq	(%rsi), %rax
	jmp	u_store
u_read4:
	movl	(%rsi), %eax
	jmp	u_store
u_read8:
	movq	(%rsi), %rax
u_store:
	movq	%rax, REC(BREC_VALUE)
u_done:					/* success: the status stays PENDING */
	addq	$PROBE_BATCH_RECORD, %rbx
	jmp	user64_loop
u_bad:
	movl	$PROBE_STATUS_BADCMD, REC(BREC_STATUS)
	addq	$PROBE_BATCH_RECORD, %rbx
	jmp	user64_loop
u_write1:
	movq	REC(BREC_ARG1), %rax
	movb	%al, (%rsi)
	jmp	u_done
u_write2:
	movq	REC(BREC_ARG1), %rax
	movw	%ax, (%rsi)
	jmp	u_done
u_write4:
	movq	REC(BREC_ARG1), %rax
	movl	%eax, (%rsi)
	jmp	u_done
u_write8:
	movq	REC(BREC_ARG1), %rax
	movq	%rax, (%rsi)
	jmp	u_done
u_fetch:				/* the target holds "jmp *%rdi" */
	leaq	u_done(%rip), %rdi
	jmp	*%rsi

	.data
	.balign 8
user_ops:
	.quad	u_bad, u_read1, u_read2, u_read4, u_read8
	.quad	u_write1, u_write2, u_write4, u_write8, u_fetch

	.section .note.GNU-stack,"",@progbits
