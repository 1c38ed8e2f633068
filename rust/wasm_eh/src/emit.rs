//! Second pass over one function body: emit the exnref form.
//!
//! Two control stacks are kept in step. The original one has a frame per
//! original `block`/`loop`/`if`/`try`/`try_table`, each remembering the absolute
//! index (in the new code's control stack) of the frame a branch to it must
//! target; the new code's stack is only counted (`depth`), since the frames we
//! add (outer blocks, handler blocks, delegate landing blocks) are never the
//! target of an original branch. A relative label in the output is then
//! `depth - 1 - target`.

use std::borrow::Cow;

use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{BlockType, Catch, Function, Handle, Instruction, ValType};
use wasmparser::{FunctionBody, Operator};

use crate::module::ModuleCtx;
use crate::scan::{FuncScan, Landing, TryInfo};
use crate::Error;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Func,
    Plain,
    /// A try with catch clauses; `next` is the index of the next clause.
    TryCatch {
        ord: usize,
        next: usize,
    },
    TryDelegate {
        ord: usize,
    },
    /// A try with neither catches nor delegate: a block.
    TryPlain {
        ord: usize,
    },
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    /// Absolute index, in the new control stack, of this frame's branch target.
    target: u32,
    kind: Kind,
}

struct Emitter<'s> {
    f: Function,
    scan: &'s FuncScan,
    frames: Vec<Frame>,
    /// Number of open frames in the emitted code (the function frame included).
    depth: u32,
    /// For each try ordinal, the absolute index of its open delegate landing block.
    landing: Vec<Option<u32>>,
    /// Absolute index of the caller landing block, when there is one.
    caller_landing: Option<u32>,
    next_try: usize,
    exn_base: u32,
    offset: u64,
}

fn internal(msg: &str) -> Error {
    Error::Internal(msg.to_string())
}

impl<'s> Emitter<'s> {
    fn invalid(&self, message: &str) -> Error {
        Error::Invalid {
            offset: self.offset,
            message: message.to_string(),
        }
    }

    fn ins(&mut self, i: &Instruction<'_>) {
        self.f.instruction(i);
    }

    fn open(&mut self, i: &Instruction<'_>) -> Result<u32, Error> {
        self.ins(i);
        let idx = self.depth;
        self.depth = self
            .depth
            .checked_add(1)
            .ok_or_else(|| internal("nesting too deep"))?;
        Ok(idx)
    }

    fn close(&mut self) -> Result<(), Error> {
        self.ins(&Instruction::End);
        self.depth = self
            .depth
            .checked_sub(1)
            .ok_or_else(|| internal("control stack underflow"))?;
        Ok(())
    }

    /// Relative label, from the current position, of new frame `target`.
    fn rel(&self, target: u32) -> Result<u32, Error> {
        self.depth
            .checked_sub(1)
            .and_then(|top| top.checked_sub(target))
            .ok_or_else(|| internal("branch target not on the control stack"))
    }

    /// Relative label in the output for an original relative label.
    fn map_depth(&self, depth: u32) -> Result<u32, Error> {
        let d = usize::try_from(depth).map_err(|_| self.invalid("label depth too large"))?;
        let frame = self
            .frames
            .len()
            .checked_sub(1)
            .and_then(|top| top.checked_sub(d))
            .and_then(|i| self.frames.get(i))
            .ok_or_else(|| self.invalid("label depth out of range"))?;
        self.rel(frame.target)
    }

    fn info(&self, ord: usize) -> Result<&'s TryInfo, Error> {
        self.scan
            .trys
            .get(ord)
            .ok_or_else(|| internal("try ordinal out of range"))
    }

    fn exn_local(&self, ord: usize) -> Result<u32, Error> {
        let slot = self.info(ord)?.exn_slot;
        self.exn_base
            .checked_add(slot)
            .ok_or_else(|| internal("too many locals"))
    }

    fn top(&self) -> Result<Frame, Error> {
        self.frames
            .last()
            .copied()
            .ok_or_else(|| self.invalid("instruction after the end of the function"))
    }

    fn set_top(&mut self, kind: Kind) {
        if let Some(f) = self.frames.last_mut() {
            f.kind = kind;
        }
    }

    /// Open the exnref block that delegates to try `ord` branch to.
    fn open_landing(
        &mut self,
        ctx: &mut ModuleCtx,
        ord: usize,
        params: &[ValType],
    ) -> Result<(), Error> {
        let bt = ctx.block_type(params, &[ValType::EXNREF])?;
        let idx = self.open(&Instruction::Block(bt))?;
        if let Some(slot) = self.landing.get_mut(ord) {
            *slot = Some(idx);
        }
        Ok(())
    }

    /// End of the body of a delegate target: normal completion leaves the
    /// whole construct; a delegated exception is rethrown here, inside the body.
    fn close_landing(&mut self, ord: usize, exit: u32) -> Result<(), Error> {
        let rel = self.rel(exit)?;
        self.ins(&Instruction::Br(rel));
        self.close()?;
        self.ins(&Instruction::ThrowRef);
        if let Some(slot) = self.landing.get_mut(ord) {
            *slot = None;
        }
        Ok(())
    }

    fn on_try(&mut self, ctx: &mut ModuleCtx, blockty: wasmparser::BlockType) -> Result<(), Error> {
        let ord = self.next_try;
        self.next_try = self.next_try.saturating_add(1);
        let info = self.info(ord)?;
        let bt = RoundtripReencoder.block_type(blockty)?;
        let (params, _results) = ctx.block_sig(blockty)?;
        if let Some(landing) = info.delegate {
            let land = match landing {
                Landing::Caller => self.caller_landing,
                Landing::Try(t) => self.landing.get(t).copied().flatten(),
            }
            .ok_or_else(|| internal("delegate landing block is not open"))?;
            let label = self.rel(land)?;
            let idx = self.open(&Instruction::TryTable(
                bt,
                Cow::Owned(vec![Catch::AllRef { label }]),
            ))?;
            self.frames.push(Frame {
                target: idx,
                kind: Kind::TryDelegate { ord },
            });
        } else if info.catches.is_empty() {
            let idx = self.open(&Instruction::Block(bt))?;
            self.frames.push(Frame {
                target: idx,
                kind: Kind::TryPlain { ord },
            });
        } else {
            let outer = self.open(&Instruction::Block(bt))?;
            let refs = info.rethrow_target;
            let n = info.catches.len();
            // Handler blocks, the last clause's outermost.
            for tag in info.catches.iter().rev() {
                let mut sent: Vec<ValType> = match tag {
                    Some(t) => ctx.tag_params(*t)?.to_vec(),
                    None => Vec::new(),
                };
                if refs {
                    sent.push(ValType::EXNREF);
                }
                let hbt = ctx.block_type(&params, &sent)?;
                self.open(&Instruction::Block(hbt))?;
            }
            let mut catches = Vec::with_capacity(n);
            for (i, tag) in info.catches.iter().enumerate() {
                // Clause i's block sits i levels out from the try_table.
                let label = u32::try_from(i).map_err(|_| internal("too many catch clauses"))?;
                catches.push(match (tag, refs) {
                    (Some(tag), false) => Catch::One { tag: *tag, label },
                    (Some(tag), true) => Catch::OneRef { tag: *tag, label },
                    (None, false) => Catch::All { label },
                    (None, true) => Catch::AllRef { label },
                });
            }
            self.open(&Instruction::TryTable(bt, Cow::Owned(catches)))?;
            self.frames.push(Frame {
                target: outer,
                kind: Kind::TryCatch { ord, next: 0 },
            });
        }
        if info.delegate_target {
            self.open_landing(ctx, ord, &params)?;
        }
        Ok(())
    }

    fn on_catch(&mut self) -> Result<(), Error> {
        let frame = self.top()?;
        let Kind::TryCatch { ord, next } = frame.kind else {
            return Err(self.invalid("catch outside a try"));
        };
        let info = self.info(ord)?;
        if next == 0 {
            if info.delegate_target {
                self.close_landing(ord, frame.target)?;
            }
            self.close()?; // try_table
        }
        let rel = self.rel(frame.target)?;
        self.ins(&Instruction::Br(rel));
        self.close()?; // this clause's handler block
        if info.rethrow_target {
            let local = self.exn_local(ord)?;
            self.ins(&Instruction::LocalSet(local));
        }
        self.set_top(Kind::TryCatch {
            ord,
            next: next.saturating_add(1),
        });
        Ok(())
    }

    fn on_delegate(&mut self) -> Result<(), Error> {
        let frame = self.top()?;
        let Kind::TryDelegate { ord } = frame.kind else {
            return Err(self.invalid("delegate outside a try"));
        };
        if self.info(ord)?.delegate_target {
            self.close_landing(ord, frame.target)?;
        }
        self.close()?;
        self.frames.pop();
        Ok(())
    }

    fn on_end(&mut self) -> Result<(), Error> {
        let frame = self
            .frames
            .pop()
            .ok_or_else(|| self.invalid("unbalanced end"))?;
        match frame.kind {
            Kind::Func => {
                if self.caller_landing.is_some() {
                    self.ins(&Instruction::Return);
                    self.close()?;
                    self.ins(&Instruction::ThrowRef);
                }
                self.close()
            }
            Kind::Plain => self.close(),
            Kind::TryPlain { ord } => {
                if self.info(ord)?.delegate_target {
                    self.close_landing(ord, frame.target)?;
                }
                self.close()
            }
            Kind::TryCatch { next, .. } if next > 0 => self.close(),
            Kind::TryCatch { .. } | Kind::TryDelegate { .. } => {
                Err(internal("try ended without its clauses"))
            }
        }
    }

    fn on_rethrow(&mut self, depth: u32) -> Result<(), Error> {
        let d = usize::try_from(depth).map_err(|_| self.invalid("label depth too large"))?;
        let frame = self
            .frames
            .len()
            .checked_sub(1)
            .and_then(|top| top.checked_sub(d))
            .and_then(|i| self.frames.get(i))
            .copied()
            .ok_or_else(|| self.invalid("rethrow label out of range"))?;
        let Kind::TryCatch { ord, next } = frame.kind else {
            return Err(self.invalid("rethrow target is not a catch block"));
        };
        if next == 0 {
            return Err(self.invalid("rethrow target is not a catch block"));
        }
        let local = self.exn_local(ord)?;
        self.ins(&Instruction::LocalGet(local));
        self.ins(&Instruction::ThrowRef);
        Ok(())
    }

    fn push_plain(&mut self, i: &Instruction<'_>) -> Result<(), Error> {
        let idx = self.open(i)?;
        self.frames.push(Frame {
            target: idx,
            kind: Kind::Plain,
        });
        Ok(())
    }

    /// Copy an instruction, renumbering any labels it carries.
    fn copy(&mut self, op: Operator<'_>) -> Result<(), Error> {
        let ins = RoundtripReencoder.instruction(op)?;
        let ins = match ins {
            Instruction::Block(_) | Instruction::Loop(_) | Instruction::If(_) => {
                return self.push_plain(&ins);
            }
            Instruction::TryTable(bt, catches) => {
                let mut mapped = Vec::with_capacity(catches.len());
                for c in catches.iter() {
                    mapped.push(match *c {
                        Catch::One { tag, label } => Catch::One {
                            tag,
                            label: self.map_depth(label)?,
                        },
                        Catch::OneRef { tag, label } => Catch::OneRef {
                            tag,
                            label: self.map_depth(label)?,
                        },
                        Catch::All { label } => Catch::All {
                            label: self.map_depth(label)?,
                        },
                        Catch::AllRef { label } => Catch::AllRef {
                            label: self.map_depth(label)?,
                        },
                    });
                }
                return self.push_plain(&Instruction::TryTable(bt, Cow::Owned(mapped)));
            }
            Instruction::Br(d) => Instruction::Br(self.map_depth(d)?),
            Instruction::BrIf(d) => Instruction::BrIf(self.map_depth(d)?),
            Instruction::BrOnNull(d) => Instruction::BrOnNull(self.map_depth(d)?),
            Instruction::BrOnNonNull(d) => Instruction::BrOnNonNull(self.map_depth(d)?),
            Instruction::BrTable(targets, default) => {
                let mut mapped = Vec::with_capacity(targets.len());
                for t in targets.iter() {
                    mapped.push(self.map_depth(*t)?);
                }
                Instruction::BrTable(Cow::Owned(mapped), self.map_depth(default)?)
            }
            Instruction::BrOnCast {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => Instruction::BrOnCast {
                relative_depth: self.map_depth(relative_depth)?,
                from_ref_type,
                to_ref_type,
            },
            Instruction::BrOnCastFail {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => Instruction::BrOnCastFail {
                relative_depth: self.map_depth(relative_depth)?,
                from_ref_type,
                to_ref_type,
            },
            Instruction::BrOnCastDescEq {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => Instruction::BrOnCastDescEq {
                relative_depth: self.map_depth(relative_depth)?,
                from_ref_type,
                to_ref_type,
            },
            Instruction::BrOnCastDescEqFail {
                relative_depth,
                from_ref_type,
                to_ref_type,
            } => Instruction::BrOnCastDescEqFail {
                relative_depth: self.map_depth(relative_depth)?,
                from_ref_type,
                to_ref_type,
            },
            Instruction::Resume {
                cont_type_index,
                resume_table,
            } => Instruction::Resume {
                cont_type_index,
                resume_table: self.map_handles(&resume_table)?,
            },
            Instruction::ResumeThrow {
                cont_type_index,
                tag_index,
                resume_table,
            } => Instruction::ResumeThrow {
                cont_type_index,
                tag_index,
                resume_table: self.map_handles(&resume_table)?,
            },
            Instruction::ResumeThrowRef {
                cont_type_index,
                resume_table,
            } => Instruction::ResumeThrowRef {
                cont_type_index,
                resume_table: self.map_handles(&resume_table)?,
            },
            other => other,
        };
        self.ins(&ins);
        Ok(())
    }

    fn map_handles(&self, table: &[Handle]) -> Result<Cow<'static, [Handle]>, Error> {
        let mut out = Vec::with_capacity(table.len());
        for h in table {
            out.push(match *h {
                Handle::OnLabel { tag, label } => Handle::OnLabel {
                    tag,
                    label: self.map_depth(label)?,
                },
                Handle::OnSwitch { tag } => Handle::OnSwitch { tag },
            });
        }
        Ok(Cow::Owned(out))
    }
}

/// Translate one function body that uses legacy exception handling.
///
/// `n_params` is the function's parameter count (new locals go after the
/// existing ones).
pub(crate) fn translate_function(
    ctx: &mut ModuleCtx,
    body: &FunctionBody<'_>,
    n_params: u32,
    scan: &FuncScan,
) -> Result<Function, Error> {
    let mut locals: Vec<(u32, ValType)> = Vec::new();
    let mut n_locals = n_params;
    for pair in body.get_locals_reader()? {
        let (count, ty) = pair?;
        n_locals = n_locals
            .checked_add(count)
            .ok_or_else(|| internal("too many locals"))?;
        locals.push((count, RoundtripReencoder.val_type(ty)?));
    }
    if scan.exn_locals > 0 {
        locals.push((scan.exn_locals, ValType::EXNREF));
    }
    let mut e = Emitter {
        f: Function::new(locals),
        scan,
        frames: vec![Frame {
            target: 0,
            kind: Kind::Func,
        }],
        depth: 1,
        landing: vec![None; scan.trys.len()],
        caller_landing: None,
        next_try: 0,
        exn_base: n_locals,
        offset: 0,
    };
    if scan.caller_landing {
        let idx = e.open(&Instruction::Block(BlockType::Result(ValType::EXNREF)))?;
        e.caller_landing = Some(idx);
    }
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        e.offset = reader.original_position();
        let op = reader.read()?;
        if e.frames.is_empty() {
            return Err(e.invalid("instruction after the end of the function"));
        }
        match op {
            Operator::Try { blockty } => e.on_try(ctx, blockty)?,
            Operator::Catch { .. } | Operator::CatchAll => e.on_catch()?,
            Operator::Delegate { .. } => e.on_delegate()?,
            Operator::Rethrow { relative_depth } => e.on_rethrow(relative_depth)?,
            Operator::End => e.on_end()?,
            other => e.copy(other)?,
        }
    }
    if !e.frames.is_empty() || e.depth != 0 {
        return Err(e.invalid("function body ends inside a block"));
    }
    Ok(e.f)
}
