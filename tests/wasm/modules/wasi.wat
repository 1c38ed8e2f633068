;; Uses the WASI subset with 64-bit pointers: 16-byte iovecs, 8-byte size_t.
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i64 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i64 i64) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") i64 1)
  (data (i64.const 256) "hello, wasi\n")
  ;; writes "hello, wasi\n" to stdout through one iovec at 64; returns bytes written
  (func (export "hello") (result i64)
    (i64.store (i64.const 64) (i64.const 256))
    (i64.store (i64.const 72) (i64.const 12))
    (drop (call $fd_write (i32.const 1) (i64.const 64) (i64.const 1) (i64.const 80)))
    (i64.load (i64.const 80)))
  (func (export "now") (result i64)
    (drop (call $clock (i32.const 0) (i64.const 1) (i64.const 96)))
    (i64.load (i64.const 96)))
  ;; 8 random bytes as an i64
  (func (export "rand") (result i64)
    (drop (call $random (i64.const 112) (i64.const 8)))
    (i64.load (i64.const 112)))
  (func (export "quit") (param i32) (call $exit (local.get 0))))
