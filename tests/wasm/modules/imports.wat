;; Imports a function the host may or may not provide.
(module
  (import "env" "mystery" (func $mystery (param i64) (result i64)))
  (import "env" "log" (func $log (param i64)))
  (memory (export "memory") i64 1)
  (func (export "call_mystery") (param i64) (result i64)
    (call $log (local.get 0))
    (i64.add (call $mystery (local.get 0)) (i64.const 1))))
