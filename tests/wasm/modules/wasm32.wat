;; A 32-bit-memory module: fine for plain wasm, refused where wasm-64 is required.
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
