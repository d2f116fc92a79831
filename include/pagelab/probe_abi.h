/*
 * The contract between the host and the probe: guest-physical layout, the mailbox
 * format and the command codes. Included by the probe's .S files (through the C
 * preprocessor, with __ASSEMBLY__ defined) and by the host, so it holds only
 * #defines.
 *
 * Protocol: the host fills MB_CMD and its arguments, then bumps MB_SEQ and resumes
 * the vCPU. The probe runs the command, writes the result block, copies MB_SEQ to
 * MB_DONE_SEQ and rings the doorbell (OUT to PROBE_PORT_DOORBELL). Where the doorbell
 * exits to the host (KVM) the host sees the result at once; where it does not, the
 * host polls MB_DONE_SEQ and the probe spins until MB_SEQ changes again. Either way
 * the probe never trusts a command it has already done.
 */
#ifndef PAGELAB_PROBE_ABI_H
#define PAGELAB_PROBE_ABI_H

/* Guest-physical layout (all below 1 MiB so real mode reaches it). */
#define PROBE_MAILBOX_GPA 0x1000  /* one page */
#define PROBE_STACK_TOP 0x8000    /* grows down into 0x7000; one stack for every mode */
#define PROBE_LOAD_GPA 0x8000     /* entry point, real mode CS=0 IP=0x8000 */
#define PROBE_MAX_SIZE 0x4000     /* the image ends below 0xC000: the worked example owns 0xC000 */
#define PROBE_TABLES_GPA 0x100000 /* host-built page tables start here */

/* Doorbell: one OUT byte per finished command. 0xE9 is also QEMU's debugcon port. */
#define PROBE_PORT_DOORBELL 0xE9

/* Mailbox offsets. Command block (host writes). */
#define MB_SEQ 0x00  /* u32: bumped by the host for each command */
#define MB_CMD 0x08  /* u32: PROBE_CMD_* */
#define MB_ARG0 0x10 /* u64 */
#define MB_ARG1 0x18 /* u64 */
#define MB_ARG2 0x20 /* u64 */
#define MB_ARG3 0x28 /* u64 */
/* Waiting without burning a host core (QEMU TCG spins a whole core on a PAUSE loop):
 * where the host allows it (MB_HALT_OK, set by the QEMU backend only: on KVM the
 * doorbell exits and the next command is there when the vCPU resumes), the probe spins
 * PROBE_SPIN_BEFORE_HALT times, then announces PROBE_WAIT_HALTED in MB_WAITING, looks
 * at MB_SEQ once more and HLTs with interrupts off. A host that bumps MB_SEQ and finds
 * the announcement swaps it for PROBE_WAIT_WOKEN (compare-and-swap, so exactly one side
 * takes it back) and injects an NMI; the probe's NMI handler counts in MB_NMI_COUNT and
 * IRETs. The probe never goes on while an NMI it was promised is still to come; an NMI
 * that lands between the probe's last look and its HLT returns to the look, not to the
 * HLT, so one NMI per wake-up is enough and the host never sends another. */
#define MB_WAITING 0x30   /* u32: 0, PROBE_WAIT_HALTED or PROBE_WAIT_WOKEN */
#define MB_NMI_COUNT 0x34 /* u32: NMIs the probe has taken */
#define MB_HALT_OK 0x38   /* u32: nonzero when the host wakes a halted probe with an NMI */
#define PROBE_WAIT_HALTED 1
#define PROBE_WAIT_WOKEN 2
#define PROBE_SPIN_BEFORE_HALT 16
/* Result block (probe writes). */
#define MB_DONE_SEQ 0x40   /* u32: MB_SEQ of the last finished command */
#define MB_STATUS 0x44     /* u32: PROBE_STATUS_* */
#define MB_CODE_BITS 0x48  /* u32: 16, 32 or 64: the dispatcher that answered */
#define MB_VECTOR 0x4C     /* u32: exception vector when MB_STATUS is FAULT */
#define MB_ERROR_CODE 0x50 /* u64 */
#define MB_FAULT_RIP 0x58  /* u64 */
#define MB_CR0 0x60        /* u64: control registers as read inside the guest */
#define MB_CR2 0x68
#define MB_CR3 0x70
#define MB_CR4 0x78
#define MB_EFER 0x80
#define MB_CS 0x88 /* u16 selectors */
#define MB_SS 0x8A
#define MB_DS 0x8C
#define MB_VALUE 0x90  /* u64: a value a command read (CPUID: EBX:EAX) */
#define MB_VALUE2 0x98 /* u64: a second value (CPUID: EDX:ECX) */
#define MB_RESULT_END 0xA0
/* A batch's sync point (BOP_SYNC): the probe stores the GPA of the record in MB_SYNC_AT,
 * rings the doorbell and spins until the host has copied it to MB_SYNC_GO. The host
 * does what it must do at that point of the batch (a foreign write) in between; the
 * batch then goes on without a new command. The host zeroes both before a batch. */
#define MB_SYNC_AT 0xA0 /* u64 */
#define MB_SYNC_GO 0xA8 /* u64 */

/* Status codes. */
#define PROBE_STATUS_OK 0
#define PROBE_STATUS_FAULT 1  /* an exception was caught; vector/error code/RIP set */
#define PROBE_STATUS_BADCMD 2 /* unknown command or not valid in this mode */

/* Commands. Each dispatcher (16-bit real, 32-bit, 64-bit) knows the ones that make
 * sense in its bitness and answers BADCMD to the rest. */
#define PROBE_CMD_REPORT 0x01       /* only report the state */
#define PROBE_CMD_WRITE_CR0 0x02    /* ARG0 = value */
#define PROBE_CMD_WRITE_CR3 0x03    /* ARG0 = value */
#define PROBE_CMD_WRITE_CR4 0x04    /* ARG0 = value */
#define PROBE_CMD_WRMSR 0x05        /* ARG0 = MSR index, ARG1 = value */
#define PROBE_CMD_RDMSR 0x06        /* ARG0 = MSR index -> MB_VALUE */
#define PROBE_CMD_ENTER_PROT 0x10   /* real -> 32-bit protected (PE=1, own GDT) */
#define PROBE_CMD_ENTER_REAL 0x11   /* 32-bit protected, PG=0 -> real mode */
#define PROBE_CMD_JUMP_CS 0x12      /* ARG0 = selector: far jump to that code segment */
#define PROBE_CMD_CPUID 0x13        /* ARG0 = leaf, ARG1 = subleaf -> MB_VALUE, MB_VALUE2 */
#define PROBE_CMD_TRIPLE_FAULT 0x20 /* load an empty IDT and fault: a test of diagnostics */
#define PROBE_CMD_HANG 0x21         /* spin forever: a test of the watchdog */
#define PROBE_CMD_EXEC 0x22         /* ARG0 = GPA of code to call in the current mode */
/* Batches run in 64-bit mode (batch64.S) and in 32-bit protected mode outside IA-32e
 * mode (batch32.S; 32-bit and PAE paging). */
#define PROBE_CMD_BATCH 0x30 /* ARG0 = GPA of the first record, ARG1 = count */

/* Batches (PROBE_CMD_BATCH): fixed 64-byte records in the batch area, one per
 * operation; the host fills the command half and sets BREC_STATUS to
 * PROBE_STATUS_PENDING, the probe runs them in order and fills the result half. One
 * doorbell at the end of the batch. The probe writes only what differs from success:
 * a record of a finished batch whose status is still PENDING succeeded (one emulated
 * store fewer per record). It ends the batch with a BOP_END record it writes after
 * the last one, so a batch holds at most one record fewer than the area. A fault inside an
 * operation is recorded in its record and the batch goes on with the next one. CPL3 operations run
 * in a user stub that reaches the batch area and its own code through the user alias (linear
 * address = PROBE_USER_ALIAS + GPA, U=1), so the CPL0 side never touches a user page
 * (SMAP). Consecutive CPL3 operations stay at CPL3; the stub returns with UD2, which
 * the probe routes to the batch while one runs (SYSCALL from CPL3 faulted at its
 * target with #PF U=1 on PVM). In 32-bit and PAE paging (batch32.S) the records are the
 * same, addresses are 32-bit, the user alias is PROBE_USER_ALIAS32, CPL3 is entered with
 * a far return and left with UD2 through the 32-bit TSS, and no handler IRETs. */
#define PROBE_BATCH_GPA 0x40000
#define PROBE_BATCH_LIMIT 0x80000
#define PROBE_BATCH_RECORD 64
#define PROBE_USER_ALIAS 0x00007F0000000000 /* user alias of the probe and batch pages */
/* The same alias for 32-bit and PAE paging (batch32.S), below 4 GiB: in PAE's last
 * PDPTE, clear of the engine's pools and of 32-bit paging's usual recursive slot
 * (PDE 1023). */
#define PROBE_USER_ALIAS32 0xF0000000
#define PROBE_STATUS_PENDING 0xFF

#define BREC_OP 0x00   /* u8: BOP_* (| BOP_AC or | BOP_USER for accesses) */
#define BREC_TYPE 0x02 /* u8: INVPCID type; BOP_WRITE_ENTRY: BREC_ENTRY_4 for a 4-byte entry */
#define BREC_ARG0 \
  0x08 /* u64: address (access, INVLPG, entry GPA), value (control writes), INVPCID PCID */
#define BREC_ARG1 0x10 /* u64: value to store (write, entry write), INVPCID address */
/* Status and vector are adjacent so a fault handler stores both with one write. */
#define BREC_STATUS 0x18 /* u32: PROBE_STATUS_* (result) */
#define BREC_VECTOR 0x1C /* u32 (result) */
#define BREC_ERROR 0x20  /* u64 (result) */
#define BREC_CR2 0x28    /* u64 (result) */
#define BREC_RIP 0x30    /* u64 (result): RIP of the faulting instruction */
#define BREC_VALUE 0x38  /* u64 (result): value read */
/* BOP_READ_CONTROL results: CR0 in ARG0, CR3 in ARG1, CR4 in RIP, CR2 in CR2, EFER in VALUE. */

/* Accesses are BOP_READ1..BOP_FETCH, or'ed with BOP_AC (CPL0 with RFLAGS.AC=1) or
 * BOP_USER (CPL3). The dispatch is one indexed jump: no flag tests per record. */
#define BOP_READ1 0x01
#define BOP_READ2 0x02
#define BOP_READ4 0x03
#define BOP_READ8 0x04
#define BOP_WRITE1 0x05
#define BOP_WRITE2 0x06
#define BOP_WRITE4 0x07
#define BOP_WRITE8 0x08
#define BOP_FETCH 0x09      /* jumps to ARG0, where the host planted BATCH_FETCH_RETURN */
#define BOP_ACCESS_OPS 0x0A /* accesses are below this */
#define BOP_AC 0x20
#define BOP_USER 0x40
#define BOP_WRITE_ENTRY 0x10 /* *(u64 *)ARG0 = ARG1 at CPL0, identity-mapped */
#define BREC_ENTRY_4 4       /* BREC_TYPE of a 32-bit paging entry write: *(u32 *)ARG0 (batch32) */
#define BOP_WRITE_CR0 0x11
#define BOP_WRITE_CR3 0x12
#define BOP_WRITE_CR4 0x13
#define BOP_WRITE_EFER 0x14
#define BOP_WRITE_PKRU 0x15
#define BOP_INVLPG 0x16
#define BOP_INVPCID 0x17 /* descriptor = {ARG0 = PCID, ARG1 = address} */
#define BOP_TOGGLE_PGE 0x18
#define BOP_READ_CONTROL 0x19
#define BOP_FENCE 0x1A
#define BOP_SYNC 0x1B /* stop at a sync point (MB_SYNC_AT) until the host lets the batch go on */
#define BOP_END 0x7F  /* written by the probe after the last record: ends the batch */
#define BOP_COUNT 0x80
/* A fetch returns with "jmp *%rdi" (FF E7), planted by the host at the target. */
#define BATCH_FETCH_RETURN_0 0xFF
#define BATCH_FETCH_RETURN_1 0xE7

/* The image starts with a jump over this header, so the host can find the GDT
 * and check that it loaded the probe it was built with. */
#define PROBE_HDR_MAGIC_LO 0x4C474150 /* "PAGL" */
#define PROBE_HDR_MAGIC_HI 0x45424F52 /* "ROBE" */
#define PROBE_HDR_MAGIC 8             /* offset of the 8-byte magic "PAGLROBE" */
#define PROBE_HDR_VERSION 16          /* u32 */
#define PROBE_HDR_GDT 20              /* u32: GPA of the GDT */
#define PROBE_HDR_GDT_SIZE 24         /* u32: bytes */
#define PROBE_HDR_END_MARK 28         /* u32: GPA just past the image */
#define PROBE_ABI_VERSION 1

/* GDT selectors the probe installs. */
#define PROBE_SEL_CODE32 0x08
#define PROBE_SEL_DATA32 0x10
#define PROBE_SEL_CODE16 0x18
#define PROBE_SEL_DATA16 0x20
#define PROBE_SEL_CODE64 0x28
/* SYSCALL loads CS = STAR[47:32] (0x28) and SS = that + 8; SYSRET (64-bit) loads
 * SS = STAR[63:48] + 8 and CS = STAR[63:48] + 16, hence this order. */
#define PROBE_SEL_DATA64 0x30
#define PROBE_SEL_USER_DATA 0x38 /* DPL 3; used with RPL 3 */
#define PROBE_SEL_USER_CODE64 0x40
#define PROBE_SEL_TSS64 0x48 /* 16-byte descriptor: two GDT slots */
/* 32-bit batches (batch32.S): CPL3 code and the TSS that supplies ESP0. */
#define PROBE_SEL_USER_CODE32 0x58
#define PROBE_SEL_TSS32 0x60
/* A code segment with L=1 and D=1: invalid in IA-32e mode (JMP raises #GP(selector)),
 * 32-bit code outside it. */
#define PROBE_SEL_CODE_L1D1 0x68
#define PROBE_GDT_ENTRIES 14

/* Far jumps (PROBE_CMD_JUMP_CS) land where the target segment's width can run them:
 * CODE16, and CODE64 outside IA-32e mode (D=0: 16-bit code), land on a 16-bit pad;
 * CODE_L1D1 outside IA-32e mode on a 32-bit pad. A pad reports (MB_CODE_BITS 16 or 32)
 * with the new CS loaded and waits; the next command goes back to the 32-bit
 * dispatcher through CODE32 and runs there. A CPU that takes the jump to CODE_L1D1 in
 * IA-32e mode (the SDM says #GP(selector)) runs the 32-bit pad as 64-bit code: the pad
 * detects that and reports from the 64-bit dispatcher. In real mode the jump loads
 * CS = ARG0 (base ARG0 * 16) and the 16-bit dispatcher goes on in that segment. */

#endif
