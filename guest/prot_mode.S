/*
 * The probe's 32-bit part: the dispatcher for protected mode (with or without
 * legacy paging) and for IA-32e compatibility mode. Exception handlers never IRET
 * (PVM cannot run IRET in 32-bit protected mode): they record the fault and restart
 * the dispatcher on a fresh stack, which is also what "resume at the next command"
 * means here.
 */
#include "probe_macros.h"

	.text
	.code32
	.global prot32_entry
prot32_entry:				/* from real mode, PE just set */
	movw	$PROBE_SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	$PROBE_STACK_TOP, %esp
	cmpl	$0, idts_built
	jne	1f
	call	build_idts
1:	call	sync_idt
	jmp	finish32

/* The IDT's format follows EFER.LMA: load the one that matches the mode we are
 * in now (after any write that may have switched IA-32e mode on or off). */
sync_idt:
	movl	$MSR_EFER, %ecx
	rdmsr
	btl	$EFER_LMA_BIT, %eax
	jc	1f
	lidtl	idt32_desc
	ret
1:	lidtl	idt64_desc
	ret

build_idts:
	movl	$stubs32, %eax
	movl	$idt32, %edi
	movl	$IDT_VECTORS, %ecx
1:	movw	%ax, (%edi)
	movw	$PROBE_SEL_CODE32, 2(%edi)
	movw	$0x8E00, 4(%edi)	/* present, DPL 0, 32-bit interrupt gate */
	movl	%eax, %edx
	shrl	$16, %edx
	movw	%dx, 6(%edi)
	addl	$16, %eax
	addl	$8, %edi
	decl	%ecx
	jnz	1b
	movl	$stubs64, %eax
	movl	$idt64, %edi
	movl	$IDT_VECTORS, %ecx
2:	movw	%ax, (%edi)
	movw	$PROBE_SEL_CODE64, 2(%edi)
	movw	$0x8E00, 4(%edi)	/* present, DPL 0, 64-bit interrupt gate */
	movl	%eax, %edx
	shrl	$16, %edx
	movw	%dx, 6(%edi)
	movl	$0, 8(%edi)
	movl	$0, 12(%edi)
	addl	$16, %eax
	addl	$16, %edi
	decl	%ecx
	jnz	2b
	/* NMI: the host's wake-up of a halted probe (probe_abi.h, MB_WAITING). The one
	 * handler that IRETs: only QEMU sends NMIs, and its IRET works in every mode. */
	movl	$nmi32, %eax
	movw	%ax, idt32 + 2 * 8
	shrl	$16, %eax
	movw	%ax, idt32 + 2 * 8 + 6
	movl	$nmi64, %eax
	movw	%ax, idt64 + 2 * 16
	shrl	$16, %eax
	movw	%ax, idt64 + 2 * 16 + 6
	movl	$1, idts_built
	ret

nmi32:
	lock incl MB(MB_NMI_COUNT)
	NMI_RESTARTS_WAIT cmpl, movl, (%esp), wait32_check, wait32_halt
	iretl

/* Writes the state to the mailbox and rings the doorbell (finish32, land32). */
.macro report32
	movl	%cr0, %eax
	movl	%eax, MB(MB_CR0)
	movl	$0, MB(MB_CR0) + 4
	movl	%cr2, %eax
	movl	%eax, MB(MB_CR2)
	movl	$0, MB(MB_CR2) + 4
	movl	%cr3, %eax
	movl	%eax, MB(MB_CR3)
	movl	$0, MB(MB_CR3) + 4
	movl	%cr4, %eax
	movl	%eax, MB(MB_CR4)
	movl	$0, MB(MB_CR4) + 4
	movl	$MSR_EFER, %ecx
	rdmsr
	movl	%eax, MB(MB_EFER)
	movl	%edx, MB(MB_EFER) + 4
	movw	%cs, MB(MB_CS)
	movw	%ss, MB(MB_SS)
	movw	%ds, MB(MB_DS)
	movl	$32, MB(MB_CODE_BITS)
	movl	MB(MB_SEQ), %eax
	movl	%eax, MB(MB_DONE_SEQ)
	outb	%al, $PROBE_PORT_DOORBELL
.endm

	.global finish32
finish32:
	report32
wait32:
	WAIT_FOR_COMMAND dispatch32, wait32_check, wait32_halt

	.global dispatch32
dispatch32:
	movl	$PROBE_STACK_TOP, %esp
	movl	$PROBE_STATUS_OK, MB(MB_STATUS)
	movl	$0, MB(MB_VECTOR)
	movl	MB(MB_CMD), %eax
	cmpl	$PROBE_CMD_REPORT, %eax
	je	finish32
	cmpl	$PROBE_CMD_WRITE_CR0, %eax
	je	cmd32_cr0
	cmpl	$PROBE_CMD_WRITE_CR3, %eax
	je	cmd32_cr3
	cmpl	$PROBE_CMD_WRITE_CR4, %eax
	je	cmd32_cr4
	cmpl	$PROBE_CMD_WRMSR, %eax
	je	cmd32_wrmsr
	cmpl	$PROBE_CMD_RDMSR, %eax
	je	cmd32_rdmsr
	cmpl	$PROBE_CMD_ENTER_REAL, %eax
	je	cmd32_real
	cmpl	$PROBE_CMD_JUMP_CS, %eax
	je	cmd32_jump
	cmpl	$PROBE_CMD_CPUID, %eax
	je	cmd32_cpuid
	cmpl	$PROBE_CMD_TRIPLE_FAULT, %eax
	je	cmd32_triple
	cmpl	$PROBE_CMD_HANG, %eax
	je	cmd32_hang
	cmpl	$PROBE_CMD_EXEC, %eax
	je	cmd32_exec
	cmpl	$PROBE_CMD_BATCH, %eax
	je	batch32_start
	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish32

cmd32_cr0:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr0
	call	sync_idt
	jmp	finish32
cmd32_cr3:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr3
	jmp	finish32
cmd32_cr4:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr4
	jmp	finish32
cmd32_wrmsr:
	movl	MB(MB_ARG0), %ecx
	movl	MB(MB_ARG1), %eax
	movl	MB(MB_ARG1) + 4, %edx
	wrmsr
	call	sync_idt
	jmp	finish32
cmd32_rdmsr:
	movl	MB(MB_ARG0), %ecx
	rdmsr
	movl	%eax, MB(MB_VALUE)
	movl	%edx, MB(MB_VALUE) + 4
	jmp	finish32
cmd32_cpuid:
	movl	MB(MB_ARG0), %eax
	movl	MB(MB_ARG1), %ecx
	cpuid
	movl	%eax, MB(MB_VALUE)
	movl	%ebx, MB(MB_VALUE) + 4
	movl	%ecx, MB(MB_VALUE2)
	movl	%edx, MB(MB_VALUE2) + 4
	jmp	finish32
cmd32_real:
	ljmp	$PROBE_SEL_CODE16, $pm16_entry
cmd32_jump:
	movl	MB(MB_ARG0), %eax
	cmpl	$PROBE_SEL_CODE32, %eax
	je	1f
	cmpl	$PROBE_SEL_CODE16, %eax
	je	3f
	/* In IA-32e mode this raises #GP(selector); outside it the segment is 32-bit. */
	cmpl	$PROBE_SEL_CODE_L1D1, %eax
	je	4f
	cmpl	$PROBE_SEL_CODE64, %eax
	jne	2f
	/* A 64-bit code segment is only 64-bit while IA-32e mode is active; outside it,
	 * with D=0, it is 16-bit code: land on the 16-bit pad. */
	movl	$MSR_EFER, %ecx
	rdmsr
	btl	$EFER_LMA_BIT, %eax
	jnc	5f
	ljmpl	$PROBE_SEL_CODE64, $long64_entry
1:	ljmpl	$PROBE_SEL_CODE32, $finish32
3:	ljmpl	$PROBE_SEL_CODE16, $land16
4:	ljmpl	$PROBE_SEL_CODE_L1D1, $land32
5:	ljmpl	$PROBE_SEL_CODE64, $land16
2:	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish32
cmd32_triple:
	lidtl	empty_idt_desc
	ud2
cmd32_hang:
	jmp	cmd32_hang
cmd32_exec:
	movl	MB(MB_ARG0), %eax
	call	*%eax
	jmp	finish32

/* The 32-bit landing pad of far jumps to CODE_L1D1 outside IA-32e mode (see
 * probe_abi.h): report with that CS loaded, then run the next command through CODE32.
 * In IA-32e mode the jump must raise #GP; a CPU that takes it anyway runs this as
 * 64-bit code, where absolute addresses would turn RIP-relative: the first bytes tell
 * the two apart and send 64-bit code to the 64-bit dispatcher. */
	.global land32
land32:
	xorl	%eax, %eax
	.byte	0x48			/* 32-bit: DEC EAX; 64-bit: a REX.W prefix of the NOP */
	nop
	testl	%eax, %eax
	jz	finish64
	report32
	WAIT_THEN_DISPATCH32

	.balign 16
	.global stubs32
stubs32:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.balign 16
	.if (\v == 8) || ((\v >= 10) && (\v <= 14)) || (\v == 17) || (\v == 21) || (\v == 29) || (\v == 30)
	.else
	pushl	$0
	.endif
	pushl	$\v
	jmp	common32
	.endr
common32:
	cmpb	$0, batch32_active	/* a batch resumes at its next operation */
	jne	batch32_fault
	popl	%eax
	movl	%eax, MB(MB_VECTOR)
	popl	%eax
	movl	%eax, MB(MB_ERROR_CODE)
	movl	$0, MB(MB_ERROR_CODE) + 4
	popl	%eax
	movl	%eax, MB(MB_FAULT_RIP)
	movl	$0, MB(MB_FAULT_RIP) + 4
	movl	$PROBE_STATUS_FAULT, MB(MB_STATUS)
	movl	$PROBE_STACK_TOP, %esp
	movw	$PROBE_SEL_DATA32, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	jmp	finish32

	.data
	.balign 8
	.global gdt
gdt:
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x08 code, 32-bit, base 0, 4 GiB */
	.quad	0x00cf92000000ffff	/* 0x10 data, base 0, 4 GiB */
	.quad	0x00009a000000ffff	/* 0x18 code, 16-bit, 64 KiB (the way to real mode) */
	.quad	0x000092000000ffff	/* 0x20 data, 64 KiB */
	.quad	0x00af9a000000ffff	/* 0x28 code, 64-bit (L=1, D=0) */
	.quad	0x00cf92000000ffff	/* 0x30 data, SYSCALL's SS */
	.quad	0x00cff2000000ffff	/* 0x38 data, DPL 3 (SYSRET's SS) */
	.quad	0x00affa000000ffff	/* 0x40 code, 64-bit, DPL 3 (SYSRET's CS) */
	.global gdt_tss64
gdt_tss64:				/* 0x48: 64-bit TSS, filled in by batch64.S */
	.quad	0
	.quad	0
	.quad	0x00cffa000000ffff	/* 0x58 code, 32-bit, DPL 3 (32-bit batches) */
	.global gdt_tss32
gdt_tss32:				/* 0x60: 32-bit TSS, filled in by batch32.S */
	.quad	0
	.quad	0x00ef9a000000ffff	/* 0x68 code, L=1 and D=1 (far-jump tests) */
	.global gdt_end
gdt_end:
	.global gdt_bytes
	.set gdt_bytes, gdt_end - gdt
	.balign 8
	.word	0
	.global gdt_desc
gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
	.word	0
	.global idt32_desc
idt32_desc:
	.word	IDT_VECTORS * 8 - 1
	.long	idt32
	.word	0
	.global idt64_desc
idt64_desc:
	.word	IDT_VECTORS * 16 - 1
	.long	idt64
	.word	0
	.global ivt_desc
ivt_desc:
	.word	0x3ff
	.long	0
	.word	0
	.global empty_idt_desc
empty_idt_desc:
	.word	0
	.long	0
idts_built:
	.long	0
	.balign 16
idt32:
	.fill	IDT_VECTORS * 8, 1, 0
	.balign 16
idt64:
	.fill	IDT_VECTORS * 16, 1, 0

	.section .note.GNU-stack,"",@progbits
