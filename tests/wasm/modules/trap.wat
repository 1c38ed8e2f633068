;; Exports that trap, beside one that does not.
(module
  (memory (export "memory") i64 1)
  (func (export "boom") (unreachable))
  (func (export "div") (param i32 i32) (result i32) (i32.div_s (local.get 0) (local.get 1)))
  (func (export "oob") (result i32) (i32.load (i64.const 0x7fffffff)))
  (func (export "ok") (result i32) (i32.const 1)))
