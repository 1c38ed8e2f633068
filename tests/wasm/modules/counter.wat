;; A json-iface@1.0 process: handle(msgPtr, envPtr) counts the messages it has seen
;; (the count lives in linear memory, so it survives in snapshots) and answers
;;   {"ok":true,"response":{"Output":{"data":"count=N"},
;;    "Messages":[{"Target":"<message Id>","Data":"N","Tags":[{"name":"Action","value":"Counted"}]}],
;;    "patches":[{"Tags":[{"name":"count","value":"N"}]}]}}
;; It "parses" the message JSON just enough to find the value of its "Id" key.
(module
  (memory (export "memory") i64 1)
  ;; State lives in memory, as a C program's statics do, so memory snapshots hold it:
  ;; the count at address 8, the allocator's next free byte at 16 (0 = not yet set).
  (data (i64.const 1024) "{\"ok\":true,\"response\":{\"Output\":{\"data\":\"count=")
  (data (i64.const 1152) "\"},\"Messages\":[{\"Target\":\"")
  (data (i64.const 1280) "\",\"Data\":\"")
  (data (i64.const 1408) "\",\"Tags\":[{\"name\":\"Action\",\"value\":\"Counted\"}]}],\"patches\":[{\"Tags\":[{\"name\":\"count\",\"value\":\"")
  (data (i64.const 1536) "\"}]}]}}")
  (data (i64.const 1664) "\"Id\":\"")

  ;; malloc(n): 16-byte aligned bump allocation, growing memory; 0 when it cannot
  (func $malloc (export "malloc") (param $n i64) (result i64)
    (local $p i64) (local $end i64) (local $have i64)
    (local.set $p (i64.load (i64.const 16)))
    (if (i64.eqz (local.get $p)) (then (local.set $p (i64.const 4096))))
    (local.set $p (i64.and (i64.add (local.get $p) (i64.const 15)) (i64.const -16)))
    (local.set $end (i64.add (local.get $p) (local.get $n)))
    (local.set $have (i64.mul (memory.size) (i64.const 65536)))
    (if (i64.gt_u (local.get $end) (local.get $have))
      (then
        (if (i64.eq
              (memory.grow
                (i64.shr_u (i64.add (i64.sub (local.get $end) (local.get $have)) (i64.const 65535))
                           (i64.const 16)))
              (i64.const -1))
          (then (return (i64.const 0))))))
    (i64.store (i64.const 16) (local.get $end))
    (local.get $p))

  (func (export "free") (param i64))

  (func $strlen (param $p i64) (result i64)
    (local $q i64)
    (local.set $q (local.get $p))
    (block $done
      (loop $next
        (br_if $done (i32.eqz (i32.load8_u (local.get $q))))
        (local.set $q (i64.add (local.get $q) (i64.const 1)))
        (br $next)))
    (i64.sub (local.get $q) (local.get $p)))

  ;; copy n bytes from src to dst; returns dst + n
  (func $copy (param $dst i64) (param $src i64) (param $n i64) (result i64)
    (memory.copy (local.get $dst) (local.get $src) (local.get $n))
    (i64.add (local.get $dst) (local.get $n)))

  ;; decimal digits of v at dst; returns the end
  (func $itoa (param $dst i64) (param $v i64) (result i64)
    (local $tmp i64) (local $len i64) (local $i i64)
    (local.set $tmp (local.get $v))
    (loop $count
      (local.set $len (i64.add (local.get $len) (i64.const 1)))
      (local.set $tmp (i64.div_u (local.get $tmp) (i64.const 10)))
      (br_if $count (i64.ne (local.get $tmp) (i64.const 0))))
    (local.set $i (local.get $len))
    (loop $digit
      (local.set $i (i64.sub (local.get $i) (i64.const 1)))
      (i64.store8 (i64.add (local.get $dst) (local.get $i))
                  (i64.add (i64.const 48) (i64.rem_u (local.get $v) (i64.const 10))))
      (local.set $v (i64.div_u (local.get $v) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $i) (i64.const 0))))
    (i64.add (local.get $dst) (local.get $len)))

  ;; position just after the first occurrence of needle in hay, or -1
  (func $find (param $hay i64) (param $hlen i64) (param $needle i64) (param $nlen i64) (result i64)
    (local $i i64) (local $j i64)
    (block $none
      (loop $outer
        (br_if $none (i64.gt_u (i64.add (local.get $i) (local.get $nlen)) (local.get $hlen)))
        (local.set $j (i64.const 0))
        (block $mismatch
          (loop $inner
            (if (i64.eq (local.get $j) (local.get $nlen))
              (then (return (i64.add (i64.add (local.get $hay) (local.get $i)) (local.get $nlen)))))
            (br_if $mismatch
              (i32.ne (i32.load8_u (i64.add (i64.add (local.get $hay) (local.get $i)) (local.get $j)))
                      (i32.load8_u (i64.add (local.get $needle) (local.get $j)))))
            (local.set $j (i64.add (local.get $j) (i64.const 1)))
            (br $inner)))
        (local.set $i (i64.add (local.get $i) (i64.const 1)))
        (br $outer)))
    (i64.const -1))

  (func (export "handle") (param $msg i64) (param $env i64) (result i64)
    (local $count i64) (local $mlen i64) (local $id i64) (local $idlen i64)
    (local $out i64) (local $w i64)
    (local.set $count (i64.add (i64.load (i64.const 8)) (i64.const 1)))
    (i64.store (i64.const 8) (local.get $count))
    (local.set $mlen (call $strlen (local.get $msg)))
    ;; the Id value: from after "Id":" up to the next quote
    (local.set $id (call $find (local.get $msg) (local.get $mlen) (i64.const 1664) (i64.const 6)))
    (if (i64.ne (local.get $id) (i64.const -1))
      (then
        (block $end
          (loop $scan
            (br_if $end (i32.eq (i32.load8_u (i64.add (local.get $id) (local.get $idlen)))
                                (i32.const 34)))
            (br_if $end (i32.eqz (i32.load8_u (i64.add (local.get $id) (local.get $idlen)))))
            (local.set $idlen (i64.add (local.get $idlen) (i64.const 1)))
            (br $scan)))))
    (local.set $out (call $malloc (i64.add (local.get $idlen) (i64.const 512))))
    (if (i64.eqz (local.get $out)) (then (unreachable)))
    (local.set $w (call $copy (local.get $out) (i64.const 1024) (i64.const 47)))
    (local.set $w (call $itoa (local.get $w) (local.get $count)))
    (local.set $w (call $copy (local.get $w) (i64.const 1152) (i64.const 26)))
    (local.set $w (call $copy (local.get $w) (local.get $id) (local.get $idlen)))
    (local.set $w (call $copy (local.get $w) (i64.const 1280) (i64.const 10)))
    (local.set $w (call $itoa (local.get $w) (local.get $count)))
    (local.set $w (call $copy (local.get $w) (i64.const 1408) (i64.const 94)))
    (local.set $w (call $itoa (local.get $w) (local.get $count)))
    (local.set $w (call $copy (local.get $w) (i64.const 1536) (i64.const 7)))
    (i64.store8 (local.get $w) (i64.const 0))
    (local.get $out))
)
