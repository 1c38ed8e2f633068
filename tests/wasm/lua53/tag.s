# The exception tag LLVM's wasm setjmp/longjmp lowering throws: one pointer (i64 on wasm64).
	.tagtype	__c_longjmp i64
	.globl	__c_longjmp
__c_longjmp:
