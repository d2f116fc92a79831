/*
 * Batches (PROBE_CMD_BATCH, probe_abi.h) in 32-bit protected mode with 32-bit or PAE
 * paging: the CPL0 side, the counterpart of batch64.S for the same 64-byte records.
 * Addresses are 32-bit linear. IRET in 32-bit protected mode ends the run on PVM, so
 * no handler here returns with IRET: a fault is recorded in the current record and
 * the batch goes on with a fresh stack, and CPL3 is entered with a far return (LRET
 * pops SS:ESP when the privilege changes). The user stub (user32.S) comes back with
 * UD2, through a 32-bit interrupt gate and the 32-bit TSS's ESP0.
 *
 * Registers while a batch runs (exceptions preserve them):
 *   ebx  current record (identity-mapped GPA)     ebp  end of the records
 * DS and ES hold the DPL 3 flat data segment, so they stay valid across the privilege
 * changes; SS is the DPL 0 one (TSS.SS0 restores it on every exception from CPL3).
 */
#include "probe_macros.h"

#define VECTOR_UD 6
#define VECTOR_PF 14
#define GATE_BYTES 8 /* 32-bit gates: offset 15:0 at +0, 31:16 at +6 */
#define STUB_BYTES 16 /* stubs32 are 16 bytes apart */
#define RFLAGS_FIXED 0x2
#define RFLAGS_AC 0x40000
#define TSS_LIMIT 103
#define TSS_TYPE_AVAILABLE32 0x89
#define TSS_BUSY 0x02 /* in the descriptor's type byte */
#define CR4_PGE_BIT 7

/* Points the IDT gate of `vector` (IDT base in %edi) at `handler`. */
.macro SET_GATE32 vector, handler
	movl	$\handler, %eax
	movw	%ax, GATE_BYTES * \vector(%edi)
	shrl	$16, %eax
	movw	%ax, GATE_BYTES * \vector + 6(%edi)
.endm

	.text
	.code32
	.global batch32_start
batch32_start:
	/* In compatibility mode the live IDT is the 64-bit one: not for this code. */
	movl	$MSR_EFER, %ecx
	rdmsr
	btl	$EFER_LMA_BIT, %eax
	jc	batch32_refuse
	movl	MB(MB_ARG0), %ebx
	movl	MB(MB_ARG1), %ecx
	shll	$6, %ecx
	leal	(%ebx,%ecx), %ebp
	call	load_tss32
	sidtl	batch32_idtr
	movl	batch32_idtr + 2, %edi
	SET_GATE32 VECTOR_UD, batch32_ud
	SET_GATE32 VECTOR_PF, batch32_pf
	movw	$(PROBE_SEL_USER_DATA | 3), %ax
	movw	%ax, %ds
	movw	%ax, %es
	movb	$1, batch32_active
	jmp	batch32_next
batch32_refuse:
	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish32

k_ok:
	movl	$PROBE_STATUS_OK, BREC_STATUS(%ebx)
	addl	$PROBE_BATCH_RECORD, %ebx
batch32_next:
	cmpl	%ebp, %ebx
	jae	batch32_done
	movzbl	BREC_OP(%ebx), %eax
	andl	$(BOP_COUNT - 1), %eax
	jmp	*kernel_ops32(,%eax,4)

batch32_done:
	movb	$0, batch32_active
	movl	batch32_idtr + 2, %edi
	SET_GATE32 VECTOR_UD, stubs32+STUB_BYTES*VECTOR_UD
	SET_GATE32 VECTOR_PF, stubs32+STUB_BYTES*VECTOR_PF
	movw	$PROBE_SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	/* A 64-bit batch later needs its own TSS back in TR (it loads it only once). */
	movw	saved_tr, %ax
	cmpw	$PROBE_SEL_TSS64, %ax
	jne	1f
	andb	$~TSS_BUSY, gdt_tss64 + 5
	ltr	%ax
1:	jmp	finish32

to_user:
	pushl	$(PROBE_SEL_USER_DATA | 3)
	pushl	$0			/* the stub never uses its stack */
	pushl	$(PROBE_SEL_USER_CODE32 | 3)
	pushl	$(user32_loop + PROBE_USER_ALIAS32)
	lret

/* #PF while a batch runs. Frame: error code, EIP, CS, EFLAGS [, ESP, SS]. The
 * record's upper halves are zero already (the host zeroes every record). */
batch32_pf:
	popl	BREC_ERROR(%ebx)
	movl	$PROBE_STATUS_FAULT, BREC_STATUS(%ebx)
	movl	$VECTOR_PF, BREC_VECTOR(%ebx)
	movl	(%esp), %eax
	movl	%eax, BREC_RIP(%ebx)
	movl	%cr2, %eax
	movl	%eax, BREC_CR2(%ebx)
	jmp	fault_resume

/* #UD while a batch runs: the user stub's UD2 at user32_exit means "done with my
 * run of records"; any other #UD is a fault of the current record. */
batch32_ud:
	cmpl	$(user32_exit + PROBE_USER_ALIAS32), (%esp)
	jne	1f
	testb	$3, 4(%esp)
	jz	1f
	movl	$PROBE_STACK_TOP, %esp
	jmp	batch32_next
1:	pushl	$0
	pushl	$VECTOR_UD
	/* fall through */

/* Any other exception (from common32): vector, error code, EIP, CS, ... */
	.global batch32_fault
batch32_fault:
	popl	%eax
	movl	%eax, BREC_VECTOR(%ebx)
	popl	BREC_ERROR(%ebx)
	movl	$PROBE_STATUS_FAULT, BREC_STATUS(%ebx)
	movl	(%esp), %eax
	movl	%eax, BREC_RIP(%ebx)
	movl	%cr2, %eax
	movl	%eax, BREC_CR2(%ebx)
fault_resume:
	addl	$PROBE_BATCH_RECORD, %ebx
	testb	$3, 4(%esp)
	movl	$PROBE_STACK_TOP, %esp
	jz	1f
	cmpl	%ebp, %ebx		/* a fault in the stub itself must not loop */
	jb	to_user			/* back to the user loop, at the next record */
1:	pushl	$RFLAGS_FIXED		/* drop an AC set for the access */
	popfl
	jmp	batch32_next

/* Accesses: plain (AC as it is, i.e. 0) and with EFLAGS.AC=1. 8-byte accesses are
 * two 4-byte ones (no SSE: it ends the run on PVM). */
.macro ACCESSES prefix, done
\prefix\()_read1:
	movl	BREC_ARG0(%ebx), %esi
	movzbl	(%esi), %eax
	jmp	\prefix\()_store
\prefix\()_read2:
	movl	BREC_ARG0(%ebx), %esi
	movzwl	(%esi), %eax
	jmp	\prefix\()_store
\prefix\()_read4:
	movl	BREC_ARG0(%ebx), %esi
	movl	(%esi), %eax
	jmp	\prefix\()_store
\prefix\()_read8:
	movl	BREC_ARG0(%ebx), %esi
	movl	(%esi), %eax
	movl	4(%esi), %edx
	movl	%edx, BREC_VALUE + 4(%ebx)
\prefix\()_store:
	movl	%eax, BREC_VALUE(%ebx)
	jmp	\done
\prefix\()_write1:
	movl	BREC_ARG0(%ebx), %esi
	movl	BREC_ARG1(%ebx), %eax
	movb	%al, (%esi)
	jmp	\done
\prefix\()_write2:
	movl	BREC_ARG0(%ebx), %esi
	movl	BREC_ARG1(%ebx), %eax
	movw	%ax, (%esi)
	jmp	\done
\prefix\()_write4:
	movl	BREC_ARG0(%ebx), %esi
	movl	BREC_ARG1(%ebx), %eax
	movl	%eax, (%esi)
	jmp	\done
\prefix\()_write8:
	movl	BREC_ARG0(%ebx), %esi
	movl	BREC_ARG1(%ebx), %eax
	movl	BREC_ARG1 + 4(%ebx), %edx
	movl	%eax, (%esi)
	movl	%edx, 4(%esi)
	jmp	\done
\prefix\()_fetch:			/* the target holds "jmp *%edi" */
	movl	BREC_ARG0(%ebx), %esi
	movl	$\done, %edi
	jmp	*%esi
.endm

	ACCESSES k, k_ok
	ACCESSES kac, kac_done

/* The AC variants enter through here: set AC, then the access by its plain code. */
kac_enter:
	pushl	$(RFLAGS_FIXED | RFLAGS_AC)
	popfl
	movzbl	BREC_OP(%ebx), %eax
	andl	$(BOP_AC - 1), %eax
	jmp	*kac_ops32(,%eax,4)
kac_done:
	pushl	$RFLAGS_FIXED
	popfl
	jmp	k_ok
k_bad:
	movl	$PROBE_STATUS_BADCMD, BREC_STATUS(%ebx)
	addl	$PROBE_BATCH_RECORD, %ebx
	jmp	batch32_next

/* A PAE entry is two stores, the upper half first; nothing runs between them. */
k_write_entry:
	movl	BREC_ARG0(%ebx), %esi
	movl	BREC_ARG1(%ebx), %eax
	cmpb	$BREC_ENTRY_4, BREC_TYPE(%ebx)
	je	1f
	movl	BREC_ARG1 + 4(%ebx), %edx
	movl	%edx, 4(%esi)
1:	movl	%eax, (%esi)
	jmp	k_ok
k_cr0:
	movl	BREC_ARG0(%ebx), %eax
	movl	%eax, %cr0
	jmp	k_ok
k_cr3:
	movl	BREC_ARG0(%ebx), %eax
	movl	%eax, %cr3
	jmp	k_ok
k_cr4:
	movl	BREC_ARG0(%ebx), %eax
	movl	%eax, %cr4
	jmp	k_ok
k_efer:
	movl	$MSR_EFER, %ecx
	movl	BREC_ARG0(%ebx), %eax
	movl	BREC_ARG0 + 4(%ebx), %edx
	wrmsr
	jmp	k_ok
k_pkru:
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	movl	BREC_ARG0(%ebx), %eax
	.byte	0x0f, 0x01, 0xef	/* wrpkru */
	jmp	k_ok
k_invlpg:
	movl	BREC_ARG0(%ebx), %esi
	invlpg	(%esi)
	jmp	k_ok
k_invpcid:
	movzbl	BREC_TYPE(%ebx), %eax
	invpcid	BREC_ARG0(%ebx), %eax
	jmp	k_ok
k_toggle_pge:
	movl	%cr4, %eax
	movl	%eax, %ecx
	btrl	$CR4_PGE_BIT, %ecx
	movl	%ecx, %cr4
	movl	%eax, %cr4
	jmp	k_ok
k_read_control:
	movl	%cr0, %eax
	movl	%eax, BREC_ARG0(%ebx)
	movl	%cr3, %eax
	movl	%eax, BREC_ARG1(%ebx)
	movl	%cr4, %eax
	movl	%eax, BREC_RIP(%ebx)
	movl	%cr2, %eax
	movl	%eax, BREC_CR2(%ebx)
	movl	$MSR_EFER, %ecx
	rdmsr
	movl	%eax, BREC_VALUE(%ebx)
	movl	%edx, BREC_VALUE + 4(%ebx)
	jmp	k_ok
k_fence:
	mfence
	jmp	k_ok
/* A sync point, as in batch64.S. */
k_sync:
	movl	%ebx, MB(MB_SYNC_AT)
	movl	$0, MB(MB_SYNC_AT) + 4
	outb	%al, $PROBE_PORT_DOORBELL
1:	cmpl	%ebx, MB(MB_SYNC_GO)
	je	k_ok
	pause
	jmp	1b

/* TR must name the 32-bit TSS while a batch runs (ESP0 for exceptions from CPL3).
 * Its base is not an assemble-time constant, so the descriptor is built here. */
load_tss32:
	str	%ax
	movw	%ax, saved_tr
	cmpw	$PROBE_SEL_TSS32, %ax
	je	1f
	movl	$tss32, %eax
	movw	$TSS_LIMIT, gdt_tss32
	movw	%ax, gdt_tss32 + 2
	shrl	$16, %eax
	movb	%al, gdt_tss32 + 4
	movb	$TSS_TYPE_AVAILABLE32, gdt_tss32 + 5
	movb	$0, gdt_tss32 + 6
	movb	%ah, gdt_tss32 + 7
	movw	$PROBE_SEL_TSS32, %ax
	ltr	%ax
1:	ret

	.data
	.balign 4
/* Indexed by the op code, as in batch64.S. */
.macro ENTRIES n, target
	.rept	\n
	.long	\target
	.endr
.endm
kernel_ops32:
	.long	k_bad, k_read1, k_read2, k_read4, k_read8			/* 0x00 */
	.long	k_write1, k_write2, k_write4, k_write8, k_fetch			/* 0x05 */
	ENTRIES	6, k_bad							/* 0x0A */
	.long	k_write_entry, k_cr0, k_cr3, k_cr4, k_efer, k_pkru		/* 0x10 */
	.long	k_invlpg, k_invpcid, k_toggle_pge, k_read_control, k_fence	/* 0x16 */
	.long	k_sync								/* 0x1B */
	ENTRIES	5, k_bad							/* 0x1C */
	ENTRIES	9, kac_enter							/* 0x21 */
	ENTRIES	23, k_bad							/* 0x2A */
	ENTRIES	9, to_user							/* 0x41 */
	ENTRIES	54, k_bad							/* 0x4A */
kac_ops32:
	.long	k_bad, kac_read1, kac_read2, kac_read4, kac_read8
	.long	kac_write1, kac_write2, kac_write4, kac_write8, kac_fetch
	ENTRIES	22, k_bad
	.global batch32_active
batch32_active:
	.byte	0
	.balign 2
saved_tr:
	.word	0
	.balign 8
batch32_idtr:
	.fill	8, 1, 0
	.balign 16
tss32:
	.long	0
	.long	PROBE_STACK_TOP		/* ESP0 */
	.long	PROBE_SEL_DATA32	/* SS0 */
	.fill	102 - 12, 1, 0
	.word	104			/* I/O map base beyond the limit: no bitmap */

	.section .note.GNU-stack,"",@progbits
