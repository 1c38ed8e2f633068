;; Grows memory a page at a time until refused, then traps (as malloc failure → abort
;; does in a C program); `pages` reports the current size.
(module
  (memory (export "memory") i64 1)
  (func (export "grow_forever")
    (loop $more
      (br_if $more (i64.ne (memory.grow (i64.const 1)) (i64.const -1))))
    (unreachable))
  (func (export "pages") (result i64) (memory.size)))
