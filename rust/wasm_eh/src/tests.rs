//! Structural tests: the output validates without the legacy feature, contains no
//! legacy instruction, and keeps everything else. (The behaviour of translated
//! modules is checked by running them under wasmtime in tests/wasm/.)

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use wasmparser::{Operator, Parser, Payload, Validator, WasmFeatures};

fn wat(src: &str) -> Vec<u8> {
    wat::parse_str(src).expect("test WAT parses")
}

fn standard_features() -> WasmFeatures {
    let mut f = WasmFeatures::all();
    f.remove(WasmFeatures::LEGACY_EXCEPTIONS);
    f
}

/// Translate and check the output is valid standard wasm with no legacy ops.
fn check(src: &str) -> Vec<u8> {
    let input = wat(src);
    assert!(uses_legacy_eh(&input), "test module should use legacy EH");
    assert!(Validator::new_with_features(standard_features())
        .validate_all(&input)
        .is_err());
    let out = translate(&input).expect("translates");
    Validator::new_with_features(standard_features())
        .validate_all(&out)
        .expect("output validates without legacy exceptions");
    assert!(!uses_legacy_eh(&out));
    out
}

fn count_ops(bytes: &[u8], pred: impl Fn(&Operator<'_>) -> bool) -> usize {
    let mut n = 0;
    for p in Parser::new(0).parse_all(bytes) {
        if let Payload::CodeSectionEntry(body) = p.unwrap() {
            let mut r = body.get_operators_reader().unwrap();
            while !r.eof() {
                if pred(&r.read().unwrap()) {
                    n += 1;
                }
            }
        }
    }
    n
}

const TAGS: &str = r#"
  (tag $e0)
  (tag $e1 (param i32))
  (tag $e2 (param i32 i64))
  (func $throw1 (param i32) (throw $e1 (local.get 0)))
"#;

#[test]
fn module_without_legacy_eh_is_byte_identical() {
    let input = wat(r#"(module (memory i64 1)
        (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
        (tag $t (param i32))
        (func (export "std") (result i32)
          (block $h (result i32)
            (try_table (catch $t $h) (throw $t (i32.const 1)))
            (i32.const 0))))"#);
    assert!(!uses_legacy_eh(&input));
    assert_eq!(translate(&input).unwrap(), input);
}

#[test]
fn try_catch_becomes_try_table() {
    let out = check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            local.get 0
            call $throw1
            i32.const 0
          catch $e1
            i32.const 100
            i32.add
          end))"#
    ));
    assert_eq!(
        count_ops(&out, |o| matches!(o, Operator::TryTable { .. })),
        1
    );
    assert_eq!(count_ops(&out, |o| matches!(o, Operator::ThrowRef)), 0);
}

#[test]
fn catch_all_and_multiple_catches() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            local.get 0
            call $throw1
            i32.const 0
          catch $e0
            i32.const 1
          catch $e2
            drop
            drop
            i32.const 2
          catch $e1
          catch_all
            i32.const 3
          end))"#
    ));
}

#[test]
fn rethrow_uses_catch_ref_and_throw_ref() {
    let out = check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            try
              local.get 0
              call $throw1
            catch $e1
              drop
              rethrow 0
            catch_all
              rethrow 0
            end
            i32.const 0
          catch $e1
          end))"#
    ));
    assert_eq!(count_ops(&out, |o| matches!(o, Operator::ThrowRef)), 2);
}

#[test]
fn nested_rethrow_depths() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            try
              local.get 0
              call $throw1
            catch $e1
              drop
              try
                i32.const 7
                call $throw1
              catch_all
                block
                  rethrow 2
                end
              end
            end
            i32.const 0
          catch $e1
          end))"#
    ));
}

#[test]
fn delegate_to_outer_try_and_to_caller() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            block
              try
                local.get 0
                call $throw1
              delegate 1
            end
            i32.const 0
          catch $e1
            i32.const 1000
            i32.add
          end)
        (func (export "g") (param i32) (result i32)
          try
            local.get 0
            call $throw1
          delegate 0
          i32.const 5))"#
    ));
}

#[test]
fn delegate_to_try_delegate_chain() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            try
              try
                local.get 0
                call $throw1
              delegate 0
            delegate 0
            i32.const 0
          catch $e1
          end))"#
    ));
}

#[test]
fn multi_value_block_types_with_params() {
    check(&format!(
        r#"(module {TAGS}
        (type $pr (func (param i32) (result i32 i64)))
        (func (export "f") (param i32) (result i32 i64)
          local.get 0
          try (type $pr) (param i32) (result i32 i64)
            call $throw1
            i32.const 0
            i64.const 0
          catch $e2
          catch $e1
            i64.const 9
          end))"#
    ));
}

#[test]
fn delegate_target_with_params_and_rethrow() {
    check(&format!(
        r#"(module {TAGS}
        (type $p (func (param i32) (result i32)))
        (func (export "f") (param i32) (result i32)
          local.get 0
          try (type $p) (param i32) (result i32)
            try (type $p) (param i32) (result i32)
              call $throw1
              i32.const 1
            delegate 0
          catch $e1
            try
              i32.const 3
              call $throw1
            catch_all
              rethrow 1
            end
          end))"#
    ));
}

#[test]
fn branches_out_of_try_are_renumbered() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          block $out (result i32)
            block $b
              loop $l
                try
                  i32.const 42
                  local.get 0
                  br_if $out
                  drop
                  local.get 0
                  call $throw1
                catch $e1
                  br_table $l $b
                end
              end
            end
            i32.const 0
          end))"#
    ));
}

#[test]
fn catchless_try_is_a_block() {
    check(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            local.get 0
          end))"#
    ));
}

#[test]
fn invalid_bytes_are_errors_not_panics() {
    assert!(matches!(translate(b"not wasm"), Err(Error::Invalid { .. })));
    assert!(matches!(translate(&[]), Err(Error::Invalid { .. })));
    assert!(!uses_legacy_eh(b"\0asm\x01\0\0\0\x01"));
    // Every truncation and single-byte corruption of a legacy module.
    let good = wat(&format!(
        r#"(module {TAGS}
        (func (export "f") (param i32) (result i32)
          try (result i32)
            try
              local.get 0
              call $throw1
            delegate 0
            i32.const 0
          catch $e1
          catch_all
            i32.const 1
          end))"#
    ));
    for n in 0..good.len() {
        let _ = translate(&good[..n]);
        let _ = uses_legacy_eh(&good[..n]);
    }
    for i in 0..good.len() {
        for b in [0x00u8, 0x06, 0x07, 0x09, 0x0b, 0x18, 0x19, 0x7f, 0xff] {
            let mut bad = good.clone();
            bad[i] = b;
            if let Ok(out) = translate(&bad) {
                // Anything accepted must be valid standard wasm.
                Validator::new_with_features(standard_features())
                    .validate_all(&out)
                    .expect("accepted input gives valid output");
            }
        }
    }
}

#[test]
fn invalid_legacy_module_is_reported() {
    // `rethrow` outside a catch does not validate.
    let bad = wat("(module (func try rethrow 0 end))");
    assert!(matches!(translate(&bad), Err(Error::Invalid { .. })));
}
