/*
 * Batches (PROBE_CMD_BATCH, probe_abi.h): the CPL0 side. Runs the 64-byte records
 * from ARG0 to ARG0 + 64 * ARG1 in order, one doorbell at the end. Every cycle here
 * is emulated on some KVMs (PVM: ~2 us per instruction, more per memory access), so
 * the per-record dispatch is one indexed jump and the #PF path is a dozen
 * instructions: #PF and #UD go straight to batch handlers while a batch runs (their
 * IDT gates are switched at the start and restored at the end).
 *
 * Registers while a batch runs (exceptions preserve them):
 *   rbx  current record (identity-mapped GPA)     rbp  end of the records
 *   r12  PROBE_STATUS_FAULT | #PF << 32 (status and vector of a #PF, one store)
 *   r13  PROBE_USER_ALIAS                          r14  user64_loop at its user alias
 *   r15  user64_exit at its user alias
 */
#include "probe_macros.h"

#define VECTOR_UD 6
#define VECTOR_PF 14
#define GATE_BYTES 16 /* 64-bit gates: offset 15:0 at +0, 31:16 at +6 */
#define RFLAGS_FIXED 0x2
#define RFLAGS_AC 0x40000
#define TSS_LIMIT 103
#define TSS_TYPE_AVAILABLE64 0x89
#define CR4_PGE_BIT 7
#define MSR_STAR 0xC0000081
/* SYSRET loads SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16 (RPL 3): the probe's
 * user data and 64-bit user code descriptors sit right there. */
#define STAR_SYSRET_BASE (PROBE_SEL_USER_DATA - 8)

/* Points the IDT gate of `vector` (IDT base in %rdi) at `handler`. */
.macro SET_GATE vector, handler
	movl	$\handler, %eax
	movw	%ax, GATE_BYTES * \vector(%rdi)
	shrl	$16, %eax
	movw	%ax, GATE_BYTES * \vector + 6(%rdi)
.endm

/* The next record: three instructions, because every one costs microseconds where
 * CPL0 is emulated. The end is a terminator record (BOP_END) rather than a compare,
 * and a record that succeeds is not written: the host reads an untouched status
 * (PROBE_STATUS_PENDING) of a finished batch as success. */
.macro NEXT
	addq	$PROBE_BATCH_RECORD, %rbx
	movzbl	BREC_OP(%rbx), %eax
	jmp	*kernel_ops(,%rax,8)
.endm
.macro DISPATCH
	movzbl	BREC_OP(%rbx), %eax
	jmp	*kernel_ops(,%rax,8)
.endm

	.text
	.code64
	.global batch64_start
batch64_start:
	movq	MB(MB_ARG0), %rbx
	movl	MB(MB_ARG1), %ecx
	shlq	$6, %rcx
	leaq	(%rbx,%rcx), %rbp
	movb	$BOP_END, BREC_OP(%rbp)
	cmpb	$0, tss_ready
	jne	1f
	call	setup_user_entry
1:	sidt	batch_idtr
	movq	batch_idtr + 2, %rdi
	/* The user stub returns with UD2 (SYSCALL from CPL3 faulted at CPL3 on PVM). */
	SET_GATE VECTOR_UD, batch64_ud
	SET_GATE VECTOR_PF, batch64_pf
	movabsq	$((VECTOR_PF << 32) | PROBE_STATUS_FAULT), %r12
	movabsq	$PROBE_USER_ALIAS, %r13
	leaq	user64_loop(%r13), %r14
	leaq	user64_exit(%r13), %r15
	movb	$1, batch_active
	DISPATCH

k_ok:
	NEXT

	.global batch64_next
batch64_next:
	DISPATCH

batch64_done:
	movb	$0, batch_active
	movq	batch_idtr + 2, %rdi
	SET_GATE VECTOR_UD, stubs64+16*VECTOR_UD
	SET_GATE VECTOR_PF, stubs64+16*VECTOR_PF
	/* CPL3 nulled the data segments; compatibility mode needs them back. */
	movw	$PROBE_SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	jmp	finish64

/* SYSRET: no stack, no descriptor reads (IRETQ pops five words, each one emulated). */
to_user:
	movq	%r14, %rcx
	movl	$RFLAGS_FIXED, %r11d
	sysretq

/* #PF while a batch runs. Frame: error code, RIP, CS, RFLAGS, RSP, SS. */
batch64_pf:
	popq	BREC_ERROR(%rbx)
	movq	%r12, BREC_STATUS(%rbx)
	popq	BREC_RIP(%rbx)
	movq	%cr2, %rax
	movq	%rax, BREC_CR2(%rbx)
	testb	$3, (%rsp)		/* CS: from the user stub? */
	jnz	user_resume
kernel_resume:
	movq	$PROBE_STACK_TOP, %rsp
	pushq	$RFLAGS_FIXED		/* drop an AC set for the access */
	popfq
	NEXT

/* A fault in the user stub: the next record is dispatched from here, so a CPL3
 * fault followed by a CPL0 record costs no trip back to CPL3 and out again (about
 * 50 us on PVM); a CPL3 record goes back to the user loop through to_user. AC is
 * clear: SYSRET entered the stub with RFLAGS_FIXED. */
user_resume:
	movq	$PROBE_STACK_TOP, %rsp
	NEXT

/* #UD while a batch runs: the user stub's UD2 at user64_exit (only reachable at
 * CPL3: CPL0 never runs at the user alias) means "done with my run of records";
 * any other #UD is a fault of the current record. */
batch64_ud:
	cmpq	%r15, (%rsp)
	jne	1f
	movq	$PROBE_STACK_TOP, %rsp
	DISPATCH
1:	pushq	$0
	pushq	$VECTOR_UD
	/* fall through */

/* Any other exception (from common64): vector, error code, RIP, CS, ... */
	.global batch64_fault
batch64_fault:
	popq	%rax
	movl	%eax, BREC_VECTOR(%rbx)
	popq	BREC_ERROR(%rbx)
	movl	$PROBE_STATUS_FAULT, BREC_STATUS(%rbx)
	popq	BREC_RIP(%rbx)
	movq	%cr2, %rax
	movq	%rax, BREC_CR2(%rbx)
	testb	$3, (%rsp)
	jnz	user_resume
	jmp	kernel_resume

/* Accesses: plain (AC as it is, i.e. 0) and with RFLAGS.AC=1. `finish` is a macro
 * run after a successful access (inlined: one jump fewer); a fetch returns to the
 * label `done` through the planted "jmp *%rdi". */
.macro ACCESSES prefix, finish, done
\prefix\()_read1:
	movq	BREC_ARG0(%rbx), %rsi
	movzbq	(%rsi), %rax
	movq	%rax, BREC_VALUE(%rbx)
	\finish
\prefix\()_read2:
	movq	BREC_ARG0(%rbx), %rsi
	movzwq	(%rsi), %rax
	movq	%rax, BREC_VALUE(%rbx)
	\finish
\prefix\()_read4:
	movq	BREC_ARG0(%rbx), %rsi
	movl	(%rsi), %eax
	movq	%rax, BREC_VALUE(%rbx)
	\finish
\prefix\()_read8:
	movq	BREC_ARG0(%rbx), %rsi
	movq	(%rsi), %rax
	movq	%rax, BREC_VALUE(%rbx)
	\finish
\prefix\()_write1:
	movq	BREC_ARG0(%rbx), %rsi
	movq	BREC_ARG1(%rbx), %rax
	movb	%al, (%rsi)
	\finish
\prefix\()_write2:
	movq	BREC_ARG0(%rbx), %rsi
	movq	BREC_ARG1(%rbx), %rax
	movw	%ax, (%rsi)
	\finish
\prefix\()_write4:
	movq	BREC_ARG0(%rbx), %rsi
	movq	BREC_ARG1(%rbx), %rax
	movl	%eax, (%rsi)
	\finish
\prefix\()_write8:
	movq	BREC_ARG0(%rbx), %rsi
	movq	BREC_ARG1(%rbx), %rax
	movq	%rax, (%rsi)
	\finish
\prefix\()_fetch:			/* the target holds "jmp *%rdi" */
	movq	BREC_ARG0(%rbx), %rsi
	leaq	\done(%rip), %rdi
	jmp	*%rsi
.endm
.macro TO_KAC_DONE
	jmp	kac_done
.endm

	ACCESSES k, NEXT, k_ok
	ACCESSES kac, TO_KAC_DONE, kac_done

/* The AC variants enter through here: set AC, then the access by its plain code. */
kac_enter:
	pushq	$(RFLAGS_FIXED | RFLAGS_AC)
	popfq
	movzbl	BREC_OP(%rbx), %eax
	andl	$(BOP_AC - 1), %eax
	jmp	*kac_ops(,%rax,8)
kac_done:
	pushq	$RFLAGS_FIXED
	popfq
	NEXT
k_bad:
	movl	$PROBE_STATUS_BADCMD, BREC_STATUS(%rbx)
	NEXT

k_write_entry:
	movq	BREC_ARG0(%rbx), %rsi
	movq	BREC_ARG1(%rbx), %rax
	movq	%rax, (%rsi)
	NEXT
k_cr0:
	movq	BREC_ARG0(%rbx), %rax
	movq	%rax, %cr0
	NEXT
k_cr3:
	movq	BREC_ARG0(%rbx), %rax
	movq	%rax, %cr3
	NEXT
k_cr4:
	movq	BREC_ARG0(%rbx), %rax
	movq	%rax, %cr4
	NEXT
k_efer:
	movl	$MSR_EFER, %ecx
	movl	BREC_ARG0(%rbx), %eax
	movl	BREC_ARG0 + 4(%rbx), %edx
	wrmsr
	NEXT
k_pkru:
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	movl	BREC_ARG0(%rbx), %eax
	.byte	0x0f, 0x01, 0xef	/* wrpkru */
	NEXT
k_invlpg:
	movq	BREC_ARG0(%rbx), %rsi
	invlpg	(%rsi)
	NEXT
k_invpcid:
	movzbl	BREC_TYPE(%rbx), %eax
	invpcid	BREC_ARG0(%rbx), %rax
	NEXT
k_toggle_pge:
	movq	%cr4, %rax
	movq	%rax, %rcx
	btrq	$CR4_PGE_BIT, %rcx
	movq	%rcx, %cr4
	movq	%rax, %cr4
	NEXT
k_read_control:
	movq	%cr0, %rax
	movq	%rax, BREC_ARG0(%rbx)
	movq	%cr3, %rax
	movq	%rax, BREC_ARG1(%rbx)
	movq	%cr4, %rax
	movq	%rax, BREC_RIP(%rbx)
	movq	%cr2, %rax
	movq	%rax, BREC_CR2(%rbx)
	movl	$MSR_EFER, %ecx
	rdmsr
	movl	%eax, BREC_VALUE(%rbx)
	movl	%edx, BREC_VALUE + 4(%rbx)
	NEXT
k_fence:
	mfence
	NEXT
/* The host works between two records (a foreign write) while the probe waits here: one
 * doorbell, no new command. On KVM the OUT exits and MB_SYNC_GO is set when we resume;
 * on QEMU the host sees MB_SYNC_AT while it waits for the batch and answers in
 * microseconds, so this spins rather than halts. */
k_sync:
	movq	%rbx, MB(MB_SYNC_AT)
	outb	%al, $PROBE_PORT_DOORBELL
1:	cmpq	%rbx, MB(MB_SYNC_GO)
	je	2f
	pause
	jmp	1b
2:	NEXT

/* The 64-bit TSS only supplies RSP0 for exceptions taken at CPL3. Its base is not
 * an assemble-time constant, so the descriptor is built here, once; STAR too (the
 * engine sets EFER.SCE). */
setup_user_entry:
	movl	$MSR_STAR, %ecx
	xorl	%eax, %eax
	movl	$(STAR_SYSRET_BASE << 16), %edx
	wrmsr
	movl	$tss64, %eax
	movw	$TSS_LIMIT, gdt_tss64
	movw	%ax, gdt_tss64 + 2
	shrl	$16, %eax
	movb	%al, gdt_tss64 + 4
	movb	$TSS_TYPE_AVAILABLE64, gdt_tss64 + 5
	movb	$0, gdt_tss64 + 6
	movb	%ah, gdt_tss64 + 7
	movw	$PROBE_SEL_TSS64, %ax
	ltr	%ax
	movb	$1, tss_ready
	ret

	.data
	.balign 8
/* Indexed by the op code: accesses at 0x01-0x09, other ops at 0x10-0x1A, AC
 * accesses at 0x21-0x29, CPL3 accesses at 0x41-0x49. */
.macro ENTRIES n, target
	.rept	\n
	.quad	\target
	.endr
.endm
kernel_ops:				/* all 256 op codes: no mask */
	.quad	k_bad, k_read1, k_read2, k_read4, k_read8			/* 0x00 */
	.quad	k_write1, k_write2, k_write4, k_write8, k_fetch			/* 0x05 */
	ENTRIES	6, k_bad							/* 0x0A */
	.quad	k_write_entry, k_cr0, k_cr3, k_cr4, k_efer, k_pkru		/* 0x10 */
	.quad	k_invlpg, k_invpcid, k_toggle_pge, k_read_control, k_fence	/* 0x16 */
	.quad	k_sync								/* 0x1B */
	ENTRIES	5, k_bad							/* 0x1C */
	ENTRIES	9, kac_enter							/* 0x21 */
	ENTRIES	23, k_bad							/* 0x2A */
	ENTRIES	9, to_user							/* 0x41 */
	ENTRIES	53, k_bad							/* 0x4A */
	.quad	batch64_done							/* 0x7F */
	ENTRIES	128, k_bad							/* 0x80 */
kac_ops:
	.quad	k_bad, kac_read1, kac_read2, kac_read4, kac_read8
	.quad	kac_write1, kac_write2, kac_write4, kac_write8, kac_fetch
	ENTRIES	22, k_bad
	.global batch_active
batch_active:
	.byte	0
tss_ready:
	.byte	0
	.balign 8
batch_idtr:
	.fill	10, 1, 0
	.balign 16
tss64:
	.long	0
	.quad	PROBE_STACK_TOP		/* RSP0 */
	.fill	102 - 12, 1, 0
	.word	104			/* I/O map base beyond the limit: no bitmap */

	.section .note.GNU-stack,"",@progbits
