//! Module-level passes: find the legacy instructions, translate the functions
//! that use them, and re-encode the module with the new function bodies and any
//! new block types appended to the type section.

use std::collections::HashMap;

use wasm_encoder::reencode::{utils, Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, CodeSection, Function, TypeSection, ValType};
use wasmparser::{CompositeInnerType, FunctionBody, Operator, Parser, Payload, TypeRef};

use crate::emit::translate_function;
use crate::scan::scan_function;
use crate::Error;

/// A function signature, in wasm-encoder types.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Sig {
    pub params: Vec<ValType>,
    pub results: Vec<ValType>,
}

/// What the translator needs to know about the module around a function.
#[derive(Debug, Default)]
pub(crate) struct ModuleCtx {
    /// Every type index; `None` for non-function types.
    types: Vec<Option<Sig>>,
    /// Type index of every tag (imported first).
    tags: Vec<u32>,
    /// Type index of every defined function.
    funcs: Vec<u32>,
    /// Function types added for new blocks, appended after `types`.
    new_types: Vec<Sig>,
    interned: HashMap<Sig, u32>,
}

fn internal(msg: &str) -> Error {
    Error::Internal(msg.to_string())
}

impl ModuleCtx {
    fn sig(&self, type_index: u32) -> Result<&Sig, Error> {
        usize::try_from(type_index)
            .ok()
            .and_then(|i| self.types.get(i))
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Invalid {
                offset: 0,
                message: format!("type {type_index} is not a function type"),
            })
    }

    /// Parameter and result types of a block type.
    pub(crate) fn block_sig(
        &self,
        bt: wasmparser::BlockType,
    ) -> Result<(Vec<ValType>, Vec<ValType>), Error> {
        Ok(match bt {
            wasmparser::BlockType::Empty => (Vec::new(), Vec::new()),
            wasmparser::BlockType::Type(t) => (Vec::new(), vec![RoundtripReencoder.val_type(t)?]),
            wasmparser::BlockType::FuncType(idx) => {
                let s = self.sig(idx)?;
                (s.params.clone(), s.results.clone())
            }
        })
    }

    /// The values a tag carries.
    pub(crate) fn tag_params(&self, tag: u32) -> Result<&[ValType], Error> {
        let ty = usize::try_from(tag)
            .ok()
            .and_then(|i| self.tags.get(i))
            .copied()
            .ok_or_else(|| Error::Invalid {
                offset: 0,
                message: format!("unknown tag {tag}"),
            })?;
        Ok(&self.sig(ty)?.params)
    }

    /// A block type `[params] -> [results]`, adding a function type if needed.
    pub(crate) fn block_type(
        &mut self,
        params: &[ValType],
        results: &[ValType],
    ) -> Result<BlockType, Error> {
        match (params, results) {
            ([], []) => return Ok(BlockType::Empty),
            ([], [one]) => return Ok(BlockType::Result(*one)),
            _ => {}
        }
        let sig = Sig {
            params: params.to_vec(),
            results: results.to_vec(),
        };
        if let Some(idx) = self.interned.get(&sig) {
            return Ok(BlockType::FunctionType(*idx));
        }
        let idx = self
            .types
            .len()
            .checked_add(self.new_types.len())
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| internal("too many types"))?;
        self.new_types.push(sig.clone());
        self.interned.insert(sig, idx);
        Ok(BlockType::FunctionType(idx))
    }
}

fn is_legacy(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Try { .. }
            | Operator::Catch { .. }
            | Operator::CatchAll
            | Operator::Delegate { .. }
            | Operator::Rethrow { .. }
    )
}

fn body_uses_legacy(body: &FunctionBody<'_>) -> Result<bool, Error> {
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        if is_legacy(&reader.read()?) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether any function body uses a legacy instruction; parse errors are errors.
pub(crate) fn scan_for_legacy(bytes: &[u8]) -> Result<bool, Error> {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::CodeSectionEntry(body) if body_uses_legacy(&body)? => return Ok(true),
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => {
                return Err(Error::Invalid {
                    offset: 0,
                    message: "a component, not a core module".to_string(),
                })
            }
            _ => {}
        }
    }
    Ok(false)
}

/// Pass 1: collect types, tags and function types, and translate the bodies
/// that need it (indexed by defined-function position).
fn analyse(bytes: &[u8]) -> Result<(ModuleCtx, Vec<Option<Function>>), Error> {
    let mut ctx = ModuleCtx::default();
    let mut bodies: Vec<Option<Function>> = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        ctx.types.push(match &sub.composite_type.inner {
                            CompositeInnerType::Func(ft) => Some(Sig {
                                params: RoundtripReencoder.val_types(ft.params().to_vec())?,
                                results: RoundtripReencoder.val_types(ft.results().to_vec())?,
                            }),
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    if let TypeRef::Tag(t) = import?.ty {
                        ctx.tags.push(t.func_type_idx);
                    }
                }
            }
            Payload::TagSection(reader) => {
                for tag in reader {
                    ctx.tags.push(tag?.func_type_idx);
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    ctx.funcs.push(ty?);
                }
            }
            Payload::CodeSectionEntry(body) => {
                let index = bodies.len();
                let scan = scan_function(&body)?;
                if scan.legacy {
                    let ty = ctx
                        .funcs
                        .get(index)
                        .copied()
                        .ok_or_else(|| Error::Invalid {
                            offset: body.range().start,
                            message: "more function bodies than declared functions".to_string(),
                        })?;
                    let n_params = u32::try_from(ctx.sig(ty)?.params.len())
                        .map_err(|_| internal("too many parameters"))?;
                    bodies.push(Some(translate_function(&mut ctx, &body, n_params, &scan)?));
                } else {
                    bodies.push(None);
                }
            }
            _ => {}
        }
    }
    Ok((ctx, bodies))
}

/// Pass 2: re-encode the module, appending the new types and substituting the
/// translated bodies (other bodies are copied byte for byte).
struct Rewriter {
    new_types: Vec<Sig>,
    bodies: Vec<Option<Function>>,
    next_body: usize,
    saw_types: bool,
}

impl Reencode for Rewriter {
    type Error = Error;

    fn parse_type_section(
        &mut self,
        types: &mut TypeSection,
        section: wasmparser::TypeSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        utils::parse_type_section(self, types, section)?;
        for sig in &self.new_types {
            types
                .ty()
                .function(sig.params.iter().copied(), sig.results.iter().copied());
        }
        self.saw_types = true;
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut CodeSection,
        func: FunctionBody<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let translated = self.bodies.get_mut(self.next_body).and_then(Option::take);
        self.next_body = self.next_body.saturating_add(1);
        match translated {
            Some(f) => code.function(&f),
            None => code.raw(func.as_bytes()),
        };
        Ok(())
    }
}

/// Translate a module known to contain legacy instructions.
pub(crate) fn translate_module(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let (ctx, bodies) = analyse(bytes)?;
    let mut rewriter = Rewriter {
        new_types: ctx.new_types,
        bodies,
        next_body: 0,
        saw_types: false,
    };
    let mut module = wasm_encoder::Module::new();
    rewriter
        .parse_core_module(&mut module, Parser::new(0), bytes)
        .map_err(|e| match e {
            wasm_encoder::reencode::Error::UserError(e) => e,
            other => Error::from(other),
        })?;
    if !rewriter.new_types.is_empty() && !rewriter.saw_types {
        return Err(internal(
            "new block types needed but the module has no type section",
        ));
    }
    Ok(module.finish())
}
