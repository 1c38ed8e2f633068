//! First pass over one function body: the shape of every legacy `try`.
//!
//! The emitter needs to know, when it meets a `try`, how many catch clauses it
//! has, whether a `rethrow` or a `delegate` will target it, and where its own
//! `delegate` (if any) lands; all of that comes later in the stream, so it is
//! collected here first. Trys are numbered in order of appearance ("ordinals").

use wasmparser::{FunctionBody, Operator};

use crate::Error;

/// Where a `delegate` sends the exception.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Landing {
    /// Rethrown inside the body of the try with this ordinal.
    Try(usize),
    /// Rethrown to the caller of the function.
    Caller,
}

/// What the translator needs to know about one legacy `try`.
#[derive(Debug, Clone)]
pub(crate) struct TryInfo {
    /// Catch clauses in order: `Some(tag)` for `catch tag`, `None` for `catch_all`.
    pub catches: Vec<Option<u32>>,
    /// `Some` for a `try … delegate`.
    pub delegate: Option<Landing>,
    /// Some `delegate` lands in this try's body.
    pub delegate_target: bool,
    /// Some `rethrow` names this try.
    pub rethrow_target: bool,
    /// The nearest enclosing try (any phase), for exnref-local assignment.
    pub parent: Option<usize>,
    /// Index into the function's extra exnref locals, for rethrow targets.
    pub exn_slot: u32,
}

#[derive(Debug, Clone, Copy)]
enum Frame {
    Func,
    Plain,
    TryTable,
    Try { ord: usize, in_handler: bool },
}

/// The result of scanning one function.
#[derive(Debug, Default)]
pub(crate) struct FuncScan {
    pub trys: Vec<TryInfo>,
    /// Some `delegate` targets the caller: the body needs an exnref wrapper.
    pub caller_landing: bool,
    /// How many exnref locals the rethrow targets need.
    pub exn_locals: u32,
    /// Any legacy instruction at all (if not, the body is copied unchanged).
    pub legacy: bool,
}

fn unsupported(offset: u64, reason: &str) -> Error {
    Error::Unsupported {
        offset,
        reason: reason.to_string(),
    }
}

fn invalid(offset: u64, message: &str) -> Error {
    Error::Invalid {
        offset,
        message: message.to_string(),
    }
}

/// The frame `depth` labels out from the top of `stack` (0 = innermost).
fn frame_at(stack: &[Frame], depth: u32, offset: u64) -> Result<(usize, Frame), Error> {
    let depth = usize::try_from(depth).map_err(|_| invalid(offset, "label depth too large"))?;
    let idx = stack
        .len()
        .checked_sub(1)
        .and_then(|top| top.checked_sub(depth))
        .ok_or_else(|| invalid(offset, "label depth out of range"))?;
    let frame = stack
        .get(idx)
        .copied()
        .ok_or_else(|| invalid(offset, "label depth out of range"))?;
    Ok((idx, frame))
}

/// Scan `body` and describe its trys.
pub(crate) fn scan_function(body: &FunctionBody<'_>) -> Result<FuncScan, Error> {
    let mut out = FuncScan::default();
    let mut stack: Vec<Frame> = vec![Frame::Func];
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let offset = reader.original_position();
        let op = reader.read()?;
        match op {
            Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. } => {
                stack.push(Frame::Plain);
            }
            Operator::TryTable { .. } => stack.push(Frame::TryTable),
            Operator::Try { .. } => {
                out.legacy = true;
                let parent = stack.iter().rev().find_map(|f| match f {
                    Frame::Try { ord, .. } => Some(*ord),
                    _ => None,
                });
                let ord = out.trys.len();
                out.trys.push(TryInfo {
                    catches: Vec::new(),
                    delegate: None,
                    delegate_target: false,
                    rethrow_target: false,
                    parent,
                    exn_slot: 0,
                });
                stack.push(Frame::Try {
                    ord,
                    in_handler: false,
                });
            }
            Operator::Catch { .. } | Operator::CatchAll => {
                out.legacy = true;
                let tag = match op {
                    Operator::Catch { tag_index } => Some(tag_index),
                    _ => None,
                };
                match stack.last_mut() {
                    Some(Frame::Try { ord, in_handler }) => {
                        *in_handler = true;
                        let info = out
                            .trys
                            .get_mut(*ord)
                            .ok_or_else(|| invalid(offset, "catch outside try"))?;
                        if info.catches.last().is_some_and(Option::is_none) {
                            return Err(invalid(offset, "catch after catch_all"));
                        }
                        info.catches.push(tag);
                    }
                    _ => return Err(invalid(offset, "catch outside try")),
                }
            }
            Operator::Delegate { relative_depth } => {
                out.legacy = true;
                let ord = match stack.pop() {
                    Some(Frame::Try {
                        ord,
                        in_handler: false,
                    }) => ord,
                    _ => return Err(invalid(offset, "delegate outside a try body")),
                };
                let (mut idx, _) = frame_at(&stack, relative_depth, offset)?;
                // The exception is rethrown at the target label's position: the
                // first try whose *body* (not handler) encloses that position
                // catches it, else it leaves the function.
                let landing = loop {
                    match stack.get(idx).copied() {
                        Some(Frame::Func) => break Landing::Caller,
                        Some(Frame::Try {
                            ord: target,
                            in_handler: false,
                        }) => break Landing::Try(target),
                        Some(Frame::TryTable) => {
                            return Err(unsupported(
                                offset,
                                "delegate across a try_table in the same function",
                            ))
                        }
                        Some(Frame::Plain | Frame::Try { .. }) => {}
                        None => return Err(invalid(offset, "delegate target out of range")),
                    }
                    idx = idx
                        .checked_sub(1)
                        .ok_or_else(|| invalid(offset, "delegate target out of range"))?;
                };
                match landing {
                    Landing::Caller => out.caller_landing = true,
                    Landing::Try(target) => {
                        if let Some(t) = out.trys.get_mut(target) {
                            t.delegate_target = true;
                        }
                    }
                }
                let info = out
                    .trys
                    .get_mut(ord)
                    .ok_or_else(|| invalid(offset, "delegate outside try"))?;
                if !info.catches.is_empty() {
                    return Err(invalid(offset, "delegate after catch"));
                }
                info.delegate = Some(landing);
            }
            Operator::Rethrow { relative_depth } => {
                out.legacy = true;
                match frame_at(&stack, relative_depth, offset)? {
                    (
                        _,
                        Frame::Try {
                            ord,
                            in_handler: true,
                        },
                    ) => {
                        if let Some(t) = out.trys.get_mut(ord) {
                            t.rethrow_target = true;
                        }
                    }
                    _ => return Err(invalid(offset, "rethrow target is not a catch block")),
                }
            }
            Operator::End if stack.pop().is_none() => {
                return Err(invalid(offset, "unbalanced end"));
            }
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err(invalid(
            reader.original_position(),
            "function body ends inside a block",
        ));
    }
    assign_exn_slots(&mut out);
    Ok(out)
}

/// Give each rethrow target an exnref local, reusing locals between trys that
/// are not nested in one another: a try's slot is the number of rethrow-target
/// trys enclosing it.
fn assign_exn_slots(scan: &mut FuncScan) {
    let mut depth: Vec<u32> = Vec::with_capacity(scan.trys.len());
    let mut max_slots = 0u32;
    for i in 0..scan.trys.len() {
        let (parent, rt) = match scan.trys.get(i) {
            Some(t) => (t.parent, t.rethrow_target),
            None => break,
        };
        // Parents come before children, so their depth is already known.
        let inherited = parent
            .and_then(|p| {
                let d = depth.get(p).copied()?;
                let prt = scan.trys.get(p)?.rethrow_target;
                Some(d.saturating_add(u32::from(prt)))
            })
            .unwrap_or(0);
        depth.push(inherited);
        if rt {
            if let Some(t) = scan.trys.get_mut(i) {
                t.exn_slot = inherited;
            }
            max_slots = max_slots.max(inherited.saturating_add(1));
        }
    }
    scan.exn_locals = max_slots;
}
