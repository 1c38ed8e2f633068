;; Legacy exception handling (try / catch / catch_all / rethrow / delegate), in the
;; flat text syntax.  Each export returns a number the tests predict from the
;; legacy semantics; hbeam translates the module to the exnref form before wasmtime
;; runs it.
(module
  (tag $e0)
  (tag $e1 (param i32))
  (tag $e2 (param i32 i64))
  (tag $e3)
  (type $pair (func (param i32) (result i32 i32)))

  (func $throw1 (param i32) (throw $e1 (local.get 0)))
  ;; throws e1(p) when p is not zero
  (func $maybe (param i32)
    local.get 0
    if
      local.get 0
      call $throw1
    end)

  ;; catch: p=0 → -1, else p+100
  (func (export "catch1") (param i32) (result i32)
    try (result i32)
      local.get 0
      call $maybe
      i32.const -1
    catch $e1
      i32.const 100
      i32.add
    end)

  ;; clause selection: p=0 → e0 → 1; p=1 → e1(7) → 17; p=2 → e2(3,4) → 27; else e3 → 99
  (func (export "multi") (param i32) (result i32)
    try (result i32)
      block
        block
          block
            block
              local.get 0
              br_table 0 1 2 3
            end
            throw $e0
          end
          i32.const 7
          throw $e1
        end
        i32.const 3
        i64.const 4
        throw $e2
      end
      throw $e3
    catch $e0
      i32.const 1
    catch $e1
      i32.const 10
      i32.add
    catch $e2
      i32.wrap_i64
      i32.add
      i32.const 20
      i32.add
    catch_all
      i32.const 99
    end)

  ;; catch_all + rethrow 0 keeps the payload: p+1000
  (func (export "rethrow") (param i32) (result i32)
    try (result i32)
      try
        local.get 0
        call $throw1
      catch_all
        rethrow 0
      end
      i32.const 0
    catch $e1
      i32.const 1000
      i32.add
    end)

  ;; rethrow 2 (through a block) rethrows the OUTER caught exception: p, not 42
  (func (export "rethrow_outer") (param i32) (result i32)
    try (result i32)
      try
        local.get 0
        call $throw1
      catch $e1
        drop
        try
          i32.const 42
          call $throw1
        catch $e1
          drop
          block
            rethrow 2
          end
        end
      end
      i32.const 0
    catch $e1
    end)

  ;; both trys are rethrow targets: the inner catch must not clobber the outer
  ;; exception, so rethrow 1 still rethrows e1(p), not e1(42): p
  (func (export "rethrow_shadow") (param i32) (result i32)
    try (result i32)
      try
        local.get 0
        call $throw1
      catch $e1
        drop
        try
          i32.const 42
          call $throw1
        catch $e1
          i32.const 1
          i32.and
          if
            rethrow 1
          end
          rethrow 1
        end
      end
      i32.const 0
    catch $e1
    end)

  ;; rethrow of a two-value tag: p + 9
  (func (export "rethrow_e2") (param i32) (result i32)
    try (result i32)
      try
        local.get 0
        i64.const 9
        throw $e2
      catch $e2
        drop
        drop
        rethrow 0
      end
      i32.const 0
    catch $e2
      i32.wrap_i64
      i32.add
    end)

  ;; delegate 1 skips the middle try: p+300
  (func (export "delegate_outer") (param i32) (result i32)
    try (result i32)
      try (result i32)
        try
          local.get 0
          call $throw1
        delegate 1
        i32.const 0
      catch $e1
        i32.const 200
        i32.add
      end
    catch $e1
      i32.const 300
      i32.add
    end)

  ;; delegate 0 goes to the middle try: p+200
  (func (export "delegate_middle") (param i32) (result i32)
    try (result i32)
      try (result i32)
        try
          local.get 0
          call $throw1
        delegate 0
        i32.const 0
      catch $e1
        i32.const 200
        i32.add
      end
    catch $e1
      i32.const 300
      i32.add
    end)

  ;; delegate to the function label: the caller sees it
  (func $delegate_to_caller (param i32) (result i32)
    try
      local.get 0
      call $maybe
    delegate 0
    i32.const 1)
  ;; p=0 → 1, else p+400
  (func (export "delegate_caller") (param i32) (result i32)
    try (result i32)
      local.get 0
      call $delegate_to_caller
    catch $e1
      i32.const 400
      i32.add
    end)

  ;; a delegate inside a catch handler does not go back to that try: p+500
  (func (export "delegate_from_handler") (param i32) (result i32)
    try (result i32)
      try (result i32)
        i32.const 1
        call $throw1
        i32.const 0
      catch $e1
        drop
        try
          local.get 0
          call $throw1
        delegate 0
        i32.const 0
      end
    catch $e1
      i32.const 500
      i32.add
    end)

  ;; delegate to a plain block: the try around the block catches it: p+600
  (func (export "delegate_block") (param i32) (result i32)
    try (result i32)
      block
        try
          local.get 0
          call $throw1
        delegate 0
      end
      i32.const 0
    catch $e1
      i32.const 600
      i32.add
    end)

  ;; delegate to a try that itself delegates further out: p+700
  (func (export "delegate_chain") (param i32) (result i32)
    try (result i32)
      try (result i32)
        try
          try
            local.get 0
            call $throw1
          delegate 0
        delegate 1
        i32.const 0
      catch $e1
        i32.const 800
        i32.add
      end
    catch $e1
      i32.const 700
      i32.add
    end)

  ;; a try with a parameter and two results; the handler gets e2's (i32, i64)
  ;; p=0 → 1+2 = 3, else p + 2p
  (func (export "multivalue") (param i32) (result i32)
    local.get 0
    try (type $pair)
      local.tee 0
      if
        local.get 0
        local.get 0
        i64.extend_i32_u
        i64.const 2
        i64.mul
        throw $e2
      end
      i32.const 1
      i32.const 2
    catch $e2
      i32.wrap_i64
    end
    i32.add)

  ;; branching out of a try body with a value: p≠0 → 77, p=0 → throw e1(0) → 900
  (func (export "br_out") (param i32) (result i32)
    block $out (result i32)
      try (result i32)
        i32.const 77
        local.get 0
        br_if $out
        drop
        local.get 0
        call $throw1
        i32.const 1
      catch $e1
        i32.const 900
        i32.add
      end
    end)

  ;; a catch branches back to a loop around the try: returns p (p ≥ 1)
  (func (export "retry") (param i32) (result i32) (local $n i32)
    loop $again
      try
        local.get $n
        i32.const 1
        i32.add
        local.set $n
        local.get $n
        local.get 0
        i32.lt_u
        if
          local.get $n
          call $throw1
        end
      catch $e1
        drop
        br $again
      end
    end
    local.get $n)

  ;; a throw inside a handler goes to the enclosing try: (p+1)*10
  (func (export "throw_in_handler") (param i32) (result i32)
    try (result i32)
      try (result i32)
        local.get 0
        call $throw1
        i32.const 0
      catch $e1
        i32.const 1
        i32.add
        call $throw1
        i32.const 0
      end
    catch $e1
      i32.const 10
      i32.mul
    end)

  ;; a catch-less try is a plain block: p
  (func (export "catchless") (param i32) (result i32)
    try (result i32)
      local.get 0
    end)

  ;; uncaught: the exception leaves the module
  (func (export "uncaught") (param i32) (result i32)
    try (result i32)
      local.get 0
      call $throw1
      i32.const 0
    catch $e0
      i32.const 1
    end)
)
