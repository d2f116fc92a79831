/*
 * The probe's 64-bit part: the dispatcher for IA-32e 64-bit mode (4- or 5-level
 * paging) and its exception handlers. A handler records the fault and restarts the
 * dispatcher of the code that faulted: 64-bit, or 32-bit when the fault came from
 * compatibility mode (the 64-bit IDT serves both while EFER.LMA=1).
 */
#include "probe_macros.h"

	.text
	.code64
	.global long64_entry
long64_entry:
	movq	$PROBE_STACK_TOP, %rsp
	jmp	finish64

	.global finish64
finish64:
	movq	%cr0, %rax
	movq	%rax, MB(MB_CR0)
	movq	%cr2, %rax
	movq	%rax, MB(MB_CR2)
	movq	%cr3, %rax
	movq	%rax, MB(MB_CR3)
	movq	%cr4, %rax
	movq	%rax, MB(MB_CR4)
	movl	$MSR_EFER, %ecx
	rdmsr
	movl	%eax, MB(MB_EFER)
	movl	%edx, MB(MB_EFER) + 4
	movw	%cs, MB(MB_CS)
	movw	%ss, MB(MB_SS)
	movw	%ds, MB(MB_DS)
	movl	$64, MB(MB_CODE_BITS)
	movl	MB(MB_SEQ), %eax
	movl	%eax, MB(MB_DONE_SEQ)
	outb	%al, $PROBE_PORT_DOORBELL
wait64:
	WAIT_FOR_COMMAND dispatch64, wait64_check, wait64_halt

dispatch64:
	movq	$PROBE_STACK_TOP, %rsp
	movl	$PROBE_STATUS_OK, MB(MB_STATUS)
	movl	$0, MB(MB_VECTOR)
	movl	MB(MB_CMD), %eax
	cmpl	$PROBE_CMD_REPORT, %eax
	je	finish64
	cmpl	$PROBE_CMD_WRITE_CR0, %eax
	je	cmd64_cr0
	cmpl	$PROBE_CMD_WRITE_CR3, %eax
	je	cmd64_cr3
	cmpl	$PROBE_CMD_WRITE_CR4, %eax
	je	cmd64_cr4
	cmpl	$PROBE_CMD_WRMSR, %eax
	je	cmd64_wrmsr
	cmpl	$PROBE_CMD_RDMSR, %eax
	je	cmd64_rdmsr
	cmpl	$PROBE_CMD_JUMP_CS, %eax
	je	cmd64_jump
	cmpl	$PROBE_CMD_CPUID, %eax
	je	cmd64_cpuid
	cmpl	$PROBE_CMD_TRIPLE_FAULT, %eax
	je	cmd64_triple
	cmpl	$PROBE_CMD_HANG, %eax
	je	cmd64_hang
	cmpl	$PROBE_CMD_EXEC, %eax
	je	cmd64_exec
	cmpl	$PROBE_CMD_BATCH, %eax
	je	batch64_start
	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish64

cmd64_cr0:
	movq	MB(MB_ARG0), %rax
	movq	%rax, %cr0
	jmp	finish64
cmd64_cr3:
	movq	MB(MB_ARG0), %rax
	movq	%rax, %cr3
	jmp	finish64
cmd64_cr4:
	movq	MB(MB_ARG0), %rax
	movq	%rax, %cr4
	jmp	finish64
cmd64_wrmsr:
	movl	MB(MB_ARG0), %ecx
	movl	MB(MB_ARG1), %eax
	movl	MB(MB_ARG1) + 4, %edx
	wrmsr
	jmp	finish64
cmd64_rdmsr:
	movl	MB(MB_ARG0), %ecx
	rdmsr
	movl	%eax, MB(MB_VALUE)
	movl	%edx, MB(MB_VALUE) + 4
	jmp	finish64
cmd64_cpuid:
	movl	MB(MB_ARG0), %eax
	movl	MB(MB_ARG1), %ecx
	cpuid
	movl	%eax, MB(MB_VALUE)
	movl	%ebx, MB(MB_VALUE) + 4
	movl	%ecx, MB(MB_VALUE2)
	movl	%edx, MB(MB_VALUE2) + 4
	jmp	finish64
cmd64_jump:
	movl	MB(MB_ARG0), %eax
	cmpl	$PROBE_SEL_CODE32, %eax
	je	to_compat
	cmpl	$PROBE_SEL_CODE64, %eax
	je	finish64
	cmpl	$PROBE_SEL_CODE16, %eax
	je	to_compat16
	cmpl	$PROBE_SEL_CODE_L1D1, %eax
	je	to_l1d1
	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish64
to_compat:
	ljmpl	*far_finish32
to_compat16:				/* compatibility mode, 16-bit code */
	ljmpl	*far_land16
to_l1d1:				/* #GP(selector): L=1 with D=1 in IA-32e mode */
	ljmpl	*far_land32
cmd64_triple:
	lidt	empty_idt_desc64
	ud2
cmd64_hang:
	jmp	cmd64_hang
cmd64_exec:
	movq	MB(MB_ARG0), %rax
	call	*%rax
	jmp	finish64

	/* The host's wake-up of a halted probe (prot_mode.S puts it in the IDT). */
	.global nmi64
nmi64:
	lock incl MB(MB_NMI_COUNT)
	NMI_RESTARTS_WAIT cmpq, movq, (%rsp), wait64_check, wait64_halt
	/* compatibility mode waits in the 32-bit loop, under this IDT */
	NMI_RESTARTS_WAIT cmpq, movq, (%rsp), wait32_check, wait32_halt
	iretq

	.balign 16
	.global stubs64
stubs64:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.balign 16
	.if (\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushq	$0
	.endif
	pushq	$\v
	jmp	common64
	.endr
common64:
	cmpb	$0, batch_active	/* a batch resumes at its next operation */
	jne	batch64_fault
	popq	%rax
	movl	%eax, MB(MB_VECTOR)
	popq	%rax
	movq	%rax, MB(MB_ERROR_CODE)
	popq	%rax
	movq	%rax, MB(MB_FAULT_RIP)
	popq	%rax			/* CS of the faulting code */
	movl	$PROBE_STATUS_FAULT, MB(MB_STATUS)
	movq	$PROBE_STACK_TOP, %rsp
	cmpw	$PROBE_SEL_CODE64, %ax
	je	finish64
	ljmpl	*far_finish32		/* back to compatibility mode */

	.data
	.balign 8
far_finish32:
	.long	finish32
	.word	PROBE_SEL_CODE32
	.balign 8
far_land16:
	.long	land16
	.word	PROBE_SEL_CODE16
	.balign 8
far_land32:
	.long	land32
	.word	PROBE_SEL_CODE_L1D1
	.balign 8
	.word	0,0,0
empty_idt_desc64:
	.word	0
	.quad	0

	.section .note.GNU-stack,"",@progbits
