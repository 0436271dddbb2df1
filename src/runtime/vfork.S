/* SPDX-License-Identifier: MIT */
/*
 * vfork: a vfork child runs on its parent's memory and stack until it
 * execs or exits, so anything it reports would overwrite the parent's cap
 * map and region.  This wrapper raises the calling thread's rt_in_vfork
 * before the system call; the child inherits the thread pointer and sees it
 * set, so its wrappers fall straight through; the parent, which resumes
 * only once the child is gone, lowers it again.  It must be assembly: a C
 * function cannot return twice on one stack.  The shape is glibc's.
 */
	.text
	.globl	vfork
	.type	vfork, @function
vfork:
	movq	rt_in_vfork@gottpoff(%rip), %rcx
	movl	$1, %fs:(%rcx)
	popq	%rdi			/* return address: the child clobbers the stack */
	movl	$58, %eax		/* SYS_vfork */
	syscall
	pushq	%rdi
	testq	%rax, %rax
	je	1f			/* child: keep the mark */
	movq	rt_in_vfork@gottpoff(%rip), %rcx
	movl	$0, %fs:(%rcx)
	cmpq	$-4095, %rax
	jae	2f
1:	ret
2:	movq	%rax, %rdi
	jmp	rt_vfork_error@PLT
	.size	vfork, .-vfork
	.section .note.GNU-stack,"",@progbits
