;; An export that never returns, and one that does.
(module
  (memory (export "memory") i64 1)
  (global $calls (mut i64) (i64.const 0))
  (func (export "spin") (loop $forever (br $forever)))
  (func (export "ok") (result i64)
    (global.set $calls (i64.add (global.get $calls) (i64.const 1)))
    (global.get $calls)))
