;; Plain numeric exports (HyperBEAM's test-64.wasm exports fac(f64) -> f64).
(module
  (memory (export "memory") i64 1)
  (func (export "add") (param i64 i64) (result i64)
    (i64.add (local.get 0) (local.get 1)))
  (func (export "add32") (param i32 i32) (result i32)
    (i32.add (local.get 0) (local.get 1)))
  (func (export "nop"))
  (func (export "pair") (param i32) (result i32 f64)
    (local.get 0) (f64.convert_i32_s (local.get 0)))
  (func $fac (export "fac") (param f64) (result f64)
    (if (result f64) (f64.lt (local.get 0) (f64.const 1))
      (then (f64.const 1))
      (else (f64.mul (local.get 0) (call $fac (f64.sub (local.get 0) (f64.const 1))))))))
