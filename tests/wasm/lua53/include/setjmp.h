#pragma once
/* LLVM lowers setjmp/longjmp to wasm exceptions (-mllvm -wasm-enable-sjlj); the
   buffer holds what the runtime in libc.c keeps (invocation id, label, arg). */
typedef struct { void *id; unsigned label; void *env; int val; void *pad[3]; } jmp_buf[1];
int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int val);
