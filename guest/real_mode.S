/*
 * The probe's real-mode part: the entry point, the 16-bit command loop, the way up
 * to protected mode and the way back down. CS=0 and DS=SS=0 throughout, so offsets
 * are guest-physical addresses.
 */
#include "probe_macros.h"

/* The largest selector a real-mode far jump accepts: its base (selector * 16) must
 * stay below the probe, so finish16 has an offset in that segment. */
#define REAL_JUMP_MAX_SEL (PROBE_LOAD_GPA / 16 - 1)

	.section .text.entry, "ax"
	.code16
	.global probe_start
probe_start:
	jmp	boot16
	.balign 8
	/* Header (probe_abi.h PROBE_HDR_*): found by the host at PROBE_LOAD_GPA. */
	.long	PROBE_HDR_MAGIC_LO, PROBE_HDR_MAGIC_HI
	.long	PROBE_ABI_VERSION
	.long	gdt
	.long	gdt_bytes
	.long	probe_image_end

	.text
	.code16
boot16:
	cli
	cld
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %ss
	movw	$PROBE_STACK_TOP, %sp
	/* Point the real-mode IVT's exception vectors at our stubs, so a fault in
	 * real mode is recorded instead of jumping through zeroes. */
	movw	$stubs16, %ax
	xorw	%di, %di
	movw	$IDT_VECTORS, %cx
1:	movw	%ax, (%di)
	movw	$0, 2(%di)
	addw	$8, %ax
	addw	$4, %di
	decw	%cx
	jnz	1b
	/* Reset values differ between platforms (QEMU leaves CR0.CD/NW set): start
	 * from a known state. */
	movl	$0x10, %eax		/* CR0.ET */
	movl	%eax, %cr0
	xorl	%eax, %eax
	movl	%eax, %cr4
	movl	%eax, %cr3
	jmp	real_ready

	.global real_entry
real_entry:				/* from 16-bit protected mode, PE now 0 */
	xorw	%ax, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movw	$PROBE_STACK_TOP, %sp
real_ready:
	lidtl	ivt_desc
	movl	$PROBE_STATUS_OK, MB(MB_STATUS)
	jmp	finish16

/* Writes the state to the mailbox and rings the doorbell. 16-bit code that runs in
 * real mode (finish16) and in 16-bit protected or compatibility mode (land16). */
.macro report16
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
	movl	$16, MB(MB_CODE_BITS)
	movl	MB(MB_SEQ), %eax
	movl	%eax, MB(MB_DONE_SEQ)
	outb	%al, $PROBE_PORT_DOORBELL
.endm

/* Report the state, ring the doorbell, wait for the next command. */
finish16:
	report16
wait16:
	movl	MB(MB_SEQ), %eax
	cmpl	MB(MB_DONE_SEQ), %eax
	jne	dispatch16
	pause
	jmp	wait16

dispatch16:
	movw	$PROBE_STACK_TOP, %sp
	movl	$PROBE_STATUS_OK, MB(MB_STATUS)
	movl	$0, MB(MB_VECTOR)
	movl	MB(MB_CMD), %eax
	cmpl	$PROBE_CMD_REPORT, %eax
	je	finish16
	cmpl	$PROBE_CMD_ENTER_PROT, %eax
	je	enter_prot
	cmpl	$PROBE_CMD_WRITE_CR0, %eax
	je	cmd16_cr0
	cmpl	$PROBE_CMD_JUMP_CS, %eax
	je	cmd16_jump
	cmpl	$PROBE_CMD_WRITE_CR3, %eax
	je	cmd16_cr3
	cmpl	$PROBE_CMD_WRITE_CR4, %eax
	je	cmd16_cr4
	cmpl	$PROBE_CMD_WRMSR, %eax
	je	cmd16_wrmsr
	cmpl	$PROBE_CMD_RDMSR, %eax
	je	cmd16_rdmsr
	cmpl	$PROBE_CMD_CPUID, %eax
	je	cmd16_cpuid
	cmpl	$PROBE_CMD_HANG, %eax
	je	cmd16_hang
	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish16

/* Setting PE here leaves the loop running in protected mode with real-mode segment
 * caches: it still reports, and ENTER_PROT still works from there (the host starts
 * afresh for anything else). */
cmd16_cr0:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr0
	jmp	finish16
/* A real-mode far jump loads CS = ARG0 and its base = ARG0 * 16 and no descriptor: land
 * on finish16 at the same linear address, so the loop goes on in that segment (its
 * jumps are relative, its data DS-based). */
cmd16_jump:
	movw	MB(MB_ARG0), %ax
	cmpl	$REAL_JUMP_MAX_SEL, MB(MB_ARG0)
	ja	1f
	movw	%ax, jump16_ptr + 2
	shlw	$4, %ax
	movw	$finish16, %dx
	subw	%ax, %dx
	movw	%dx, jump16_ptr
	ljmpw	*jump16_ptr
1:	movl	$PROBE_STATUS_BADCMD, MB(MB_STATUS)
	jmp	finish16
cmd16_cr3:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr3
	jmp	finish16
cmd16_cr4:
	movl	MB(MB_ARG0), %eax
	movl	%eax, %cr4
	jmp	finish16
cmd16_wrmsr:
	movl	MB(MB_ARG0), %ecx
	movl	MB(MB_ARG1), %eax
	movl	MB(MB_ARG1) + 4, %edx
	wrmsr
	jmp	finish16
cmd16_rdmsr:
	movl	MB(MB_ARG0), %ecx
	rdmsr
	movl	%eax, MB(MB_VALUE)
	movl	%edx, MB(MB_VALUE) + 4
	jmp	finish16
cmd16_cpuid:
	movl	MB(MB_ARG0), %eax
	movl	MB(MB_ARG1), %ecx
	cpuid
	movl	%eax, MB(MB_VALUE)
	movl	%ebx, MB(MB_VALUE) + 4
	movl	%ecx, MB(MB_VALUE2)
	movl	%edx, MB(MB_VALUE2) + 4
	jmp	finish16
cmd16_hang:
	jmp	cmd16_hang

/* Real -> 32-bit protected mode with the probe's own GDT. */
enter_prot:
	lgdtl	gdt_desc
	movl	%cr0, %eax
	orl	$CR0_PE, %eax
	movl	%eax, %cr0
	ljmpl	$PROBE_SEL_CODE32, $prot32_entry

/* The 16-bit landing pad of far jumps from protected and compatibility mode (see
 * probe_abi.h): report with the 16-bit CS loaded, then run the next command in the
 * 32-bit dispatcher. DS and SS are the flat 32-bit data segment here. */
	.global land16
land16:
	report16
	WAIT_THEN_DISPATCH32

/* Real-mode exception stubs (no error code is pushed in real mode). */
	.balign 8
stubs16:
	.irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
	.balign 8
	pushw	$\v
	jmp	common16
	.endr
common16:
	popw	%ax			/* vector */
	movzwl	%ax, %eax
	movl	%eax, MB(MB_VECTOR)
	popw	%ax			/* IP */
	movzwl	%ax, %eax
	movl	%eax, MB(MB_FAULT_RIP)
	movl	$0, MB(MB_FAULT_RIP) + 4
	movl	$0, MB(MB_ERROR_CODE)
	movl	$0, MB(MB_ERROR_CODE) + 4
	movl	$PROBE_STATUS_FAULT, MB(MB_STATUS)
	movw	$PROBE_STACK_TOP, %sp
	jmp	finish16

/* 32-bit protected mode -> real mode, through a 16-bit code segment. Called from
 * the 32-bit dispatcher with paging off. */
	.global pm16_entry
pm16_entry:
	movw	$PROBE_SEL_DATA16, %ax
	movw	%ax, %ds
	movw	%ax, %es
	movw	%ax, %fs
	movw	%ax, %gs
	movw	%ax, %ss
	movl	%cr0, %eax
	andl	$~CR0_PE, %eax
	movl	%eax, %cr0
	ljmp	$0, $real_entry

	.data
	.balign 4
jump16_ptr:
	.word	0, 0

	.section .note.GNU-stack,"",@progbits
