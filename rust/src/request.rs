//! HyperBEAM's singleton HTTP path grammar (`hb_singleton:from`): [`parse_request`].
//!
//! The grammar is specified in `docs/core-contract.md` ("The HTTP path language");
//! `python/hbeam/_pure/request.py` is the reference twin and this module must agree with
//! it down to the text of every error message. The parser is plain Rust producing an
//! [`Item`] tree that borrows from the path wherever no decoding changed the text; the
//! `python` feature adds the binding that turns globals in and the tree out into Python
//! objects.

use std::borrow::Cow;
use std::fmt;

/// Longest HTTP path segment accepted, in UTF-8 bytes.
pub const MAX_SEGMENT_BYTES: usize = 512;
/// Deepest nesting of sub-paths (`(…)` segments, `+resolve` values).
pub const MAX_NESTING: usize = 32;
/// Longest `+integer` value in digits (below Python's smallest `int_max_str_digits`).
pub const MAX_INT_DIGITS: usize = 600;
const SHOW_CHARS: usize = 100;

/// Text that borrows from the parsed path unless decoding changed it.
pub type Text<'a> = Cow<'a, str>;

/// A value in a parsed request message.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    /// Text (untyped values, `+binary`, list tokens and strings).
    Str(Text<'a>),
    /// `&flag`, `+atom` true/false, `?1`/`?0`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A decimal integer too large for `i64` (its text, `-?[0-9]+`).
    BigInt(String),
    /// `+float` or an RFC 8941 decimal.
    Float(f64),
    /// `+list`.
    List(Vec<Value<'a>>),
    /// `+map`.
    Map(Dict<'a>),
    /// `+resolve`: a request list to resolve first.
    Resolve(Vec<Item<'a>>),
    /// An opaque global value supplied by the caller (its index in the caller's table).
    Ext(usize),
}

impl Value<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Bool(b) => Value::Bool(b),
            Value::Int(n) => Value::Int(n),
            Value::BigInt(s) => Value::BigInt(s),
            Value::Float(x) => Value::Float(x),
            Value::List(values) => Value::List(values.into_iter().map(Value::into_owned).collect()),
            Value::Map(dict) => Value::Map(dict.into_owned()),
            Value::Resolve(items) => Value::Resolve(owned_items(items)),
            Value::Ext(i) => Value::Ext(i),
        }
    }
}

/// An insertion-ordered map with unique keys (Python `dict` semantics: assigning an
/// existing key replaces its value in place).
#[derive(Debug, Clone, Default)]
pub struct Dict<'a> {
    entries: Vec<(Text<'a>, Value<'a>)>,
    /// How many leading entries are unchanged copies of the effective globals (see
    /// [`parse_request_with_globals`]); lets a binding copy those in one go.
    shared: usize,
}

impl PartialEq for Dict<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl<'a> Dict<'a> {
    /// An empty dict.
    pub fn new() -> Self {
        Dict {
            entries: Vec::new(),
            shared: 0,
        }
    }

    /// A copy of the effective `globals` (all of its entries shared).
    fn from_globals(globals: &Dict<'a>, extra: usize) -> Self {
        let mut entries = Vec::with_capacity(globals.len() + extra);
        entries.extend(globals.entries.iter().cloned());
        Dict {
            shared: entries.len(),
            entries,
        }
    }

    /// Set `key` to `value` (replacing in place when present).
    pub fn insert(&mut self, key: Text<'a>, value: Value<'a>) {
        if let Some(at) = self.entries.iter().position(|(k, _)| *k == key) {
            if let Some(slot) = self.entries.get_mut(at) {
                slot.1 = value;
            }
            self.shared = self.shared.min(at);
        } else {
            self.entries.push((key, value));
        }
    }

    /// How many leading entries are unchanged copies of the effective globals.
    pub fn shared_prefix(&self) -> usize {
        self.shared
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The entries in insertion order.
    pub fn entries(&self) -> &[(Text<'a>, Value<'a>)] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Dict<'static> {
        Dict {
            entries: self
                .entries
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k.into_owned()), v.into_owned()))
                .collect(),
            shared: self.shared,
        }
    }

    fn extend(&mut self, other: Dict<'a>) {
        if self.entries.is_empty() {
            *self = other;
            return;
        }
        for (k, v) in other.entries {
            self.insert(k, v);
        }
    }
}

impl<'a, K: Into<Text<'a>>> FromIterator<(K, Value<'a>)> for Dict<'a> {
    fn from_iter<I: IntoIterator<Item = (K, Value<'a>)>>(iter: I) -> Self {
        let mut dict = Dict::new();
        for (k, v) in iter {
            dict.insert(k.into(), v);
        }
        dict
    }
}

/// One element of a parsed request: the base or a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Item<'a> {
    /// A 43-char ID to load from the store (base only).
    Id(Text<'a>),
    /// `("as", device, ID)`: load, then set its device (base only).
    AsId { device: Text<'a>, id: Text<'a> },
    /// A plain message.
    Msg(Dict<'a>),
    /// `("as", device, msg)`: resolve `msg["path"]` with the device swapped, or a cast.
    As { device: Text<'a>, msg: Dict<'a> },
    /// `("resolve", list)`: resolve the inner list, use its result as the request.
    Resolve(Vec<Item<'a>>),
}

impl Item<'_> {
    /// A copy that borrows nothing.
    pub fn into_owned(self) -> Item<'static> {
        match self {
            Item::Id(id) => Item::Id(Cow::Owned(id.into_owned())),
            Item::AsId { device, id } => Item::AsId {
                device: Cow::Owned(device.into_owned()),
                id: Cow::Owned(id.into_owned()),
            },
            Item::Msg(dict) => Item::Msg(dict.into_owned()),
            Item::As { device, msg } => Item::As {
                device: Cow::Owned(device.into_owned()),
                msg: msg.into_owned(),
            },
            Item::Resolve(items) => Item::Resolve(owned_items(items)),
        }
    }
}

fn owned_items(items: Vec<Item<'_>>) -> Vec<Item<'static>> {
    items.into_iter().map(Item::into_owned).collect()
}

/// A malformed request path; the message says what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    message: String,
}

impl RequestError {
    /// The full error message (identical to the pure backend's).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RequestError {}

impl From<RequestError> for crate::errors::CoreError {
    fn from(err: RequestError) -> Self {
        crate::errors::CoreError::InvalidPath(err.message)
    }
}

/// Parse an HTTP request path into `[base, step1, step2, …]` (core contract).
///
/// `globals` are the singleton's other keys; query keys are applied over them.
pub fn parse_request<'a>(path: &'a str, globals: &Dict<'a>) -> Result<Vec<Item<'a>>, RequestError> {
    parse_request_with_globals(path, globals).map(|(items, _)| items)
}

/// [`parse_request`], plus the effective globals: `globals` with the query applied and
/// the `N.`-scoped keys removed. Every top-level dict built from them starts with
/// [`Dict::shared_prefix`] unchanged copies of their entries.
pub fn parse_request_with_globals<'a>(
    path: &'a str,
    globals: &Dict<'a>,
) -> Result<(Vec<Item<'a>>, Dict<'a>), RequestError> {
    let mut effective = Dict::new();
    match parse_level(path, globals, 0, Some(&mut effective)) {
        Ok(items) => Ok((items, effective)),
        Err(fail) => Err(RequestError {
            message: format!("bad request path '{}': {}", show(path), fail.message()),
        }),
    }
}

/// Internal failure: `detail` says what and where; `context` the outermost sub-path.
struct Fail {
    detail: String,
    context: Option<String>,
}

impl Fail {
    fn new(detail: String) -> Self {
        Fail {
            detail,
            context: None,
        }
    }

    fn within(mut self, context: String) -> Self {
        self.context = Some(context);
        self
    }

    fn message(&self) -> String {
        match &self.context {
            Some(context) => format!("{} ({})", self.detail, context),
            None => self.detail.clone(),
        }
    }
}

#[derive(Clone, Copy)]
enum Where {
    Segment(usize),
    Query,
}

impl fmt::Display for Where {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Where::Segment(n) => write!(f, "in segment {n}"),
            Where::Query => f.write_str("in the query"),
        }
    }
}

/// `text` for an error message, shortened past 100 chars.
fn show(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(SHOW_CHARS) {
        None => Cow::Borrowed(text),
        Some(_) => {
            let cut = text
                .char_indices()
                .nth(SHOW_CHARS - 3)
                .map_or(text.len(), |(i, _)| i);
            Cow::Owned(format!("{}...", text.get(..cut).unwrap_or(text)))
        }
    }
}

/// `text[start..end]` with the lifetime of the text it came from.
fn slice<'a>(text: &Text<'a>, start: usize, end: usize) -> Text<'a> {
    match text {
        Cow::Borrowed(s) => Cow::Borrowed(s.get(start..end).unwrap_or("")),
        Cow::Owned(s) => Cow::Owned(s.get(start..end).unwrap_or("").to_owned()),
    }
}

struct Scoped<'a> {
    key: Text<'a>,
    index: Option<u64>,
    name: Text<'a>,
    value: Value<'a>,
}

/// `N.key` → `(N, offset of key)`; `N` is `None` when too long to be an index.
fn scoped_key(key: &str) -> Option<(Option<u64>, usize)> {
    let digits = key.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || key.as_bytes().get(digits) != Some(&b'.') || key.len() <= digits + 1 {
        return None;
    }
    let index = if digits <= 18 {
        key.get(..digits).and_then(|d| d.parse::<u64>().ok())
    } else {
        None
    };
    Some((index, digits + 1))
}

fn parse<'a>(path: &'a str, globals: &Dict<'a>, depth: usize) -> Result<Vec<Item<'a>>, Fail> {
    parse_level(path, globals, depth, None)
}

fn parse_level<'a>(
    path: &'a str,
    globals: &Dict<'a>,
    depth: usize,
    effective: Option<&mut Dict<'a>>,
) -> Result<Vec<Item<'a>>, Fail> {
    if depth > MAX_NESTING {
        return Err(Fail::new(format!(
            "sub-paths nested deeper than {MAX_NESTING} levels"
        )));
    }
    let (path_part, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut globals: Cow<'_, Dict<'a>> = Cow::Borrowed(globals);
    if let Some(query) = query {
        parse_query(query, globals.to_mut(), depth)?;
    }
    let mut scoped: Vec<Scoped<'a>> = Vec::new();
    for (key, value) in globals.entries() {
        if let Some((index, at)) = scoped_key(key) {
            let name = slice(key, at, key.len());
            scoped.push(Scoped {
                key: key.clone(),
                index,
                name,
                value: value.clone(),
            });
        }
    }
    if !scoped.is_empty() {
        globals
            .to_mut()
            .entries
            .retain(|(k, _)| scoped_key(k).is_none());
    }

    let segments = split_path(path_part)?;
    let mut items: Vec<Item<'a>> = Vec::with_capacity(segments.len() + 1);
    for (i, segment) in segments.into_iter().enumerate() {
        let number = i + 1;
        if segment.text.len() > MAX_SEGMENT_BYTES {
            return Err(Fail::new(format!(
                "segment {number} is {} bytes (limit {MAX_SEGMENT_BYTES})",
                segment.text.len()
            )));
        }
        let (item, is_base) = parse_segment(segment, number, &globals, depth)?;
        if number == 1 && !is_base {
            items.push(Item::Msg(Dict::from_globals(&globals, 0)));
        }
        items.push(item);
    }
    if items.is_empty() {
        items.push(Item::Msg(Dict::from_globals(&globals, 0)));
    }

    for entry in scoped {
        let target = entry
            .index
            .and_then(|n| usize::try_from(n).ok())
            .and_then(|n| items.get_mut(n));
        match target {
            Some(Item::Msg(dict)) | Some(Item::As { msg: dict, .. }) => {
                dict.insert(entry.name, entry.value);
            }
            _ => {
                return Err(Fail::new(format!(
                    "scoped key '{}' names no path segment",
                    show(&entry.key)
                )))
            }
        }
    }
    if let Some(effective) = effective {
        *effective = globals.into_owned();
    }
    Ok(items)
}

/// Parses `k=v` / `k` items (empty items skipped) with `decode`, typing each into `into`.
fn insert_pairs<'a>(
    items: impl Iterator<Item = &'a str>,
    decode: fn(&'a str, Where) -> Result<Text<'a>, Fail>,
    place: Where,
    depth: usize,
    into: &mut Dict<'a>,
) -> Result<(), Fail> {
    for raw in items {
        if raw.is_empty() {
            continue;
        }
        let (raw_key, raw_value) = match raw.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (raw, None),
        };
        let key = decode(raw_key, place)?;
        let value = raw_value.map(|v| decode(v, place)).transpose()?;
        if key.is_empty() {
            return Err(Fail::new(format!("empty key in '{}' {place}", show(raw))));
        }
        let (name, typed) = typed(key, value, place, depth)?;
        into.insert(name, typed);
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` text: `+` → space, then `%XX`.
fn form_decode(raw: &str, place: Where) -> Result<Text<'_>, Fail> {
    if raw.contains('+') {
        let spaced = raw.replace('+', " ");
        Ok(Cow::Owned(percent_decode(&spaced, place)?.into_owned()))
    } else {
        percent_decode(raw, place)
    }
}

fn parse_query<'a>(query: &'a str, globals: &mut Dict<'a>, depth: usize) -> Result<(), Fail> {
    insert_pairs(query.split('&'), form_decode, Where::Query, depth, globals)
}

// Byte classes of the path syntax, found in one pass over the path.
const SLASH: u8 = 1;
const OPEN: u8 = 2;
const CLOSE: u8 = 4;
const AMP: u8 = 8;
const PCT: u8 = 16;
const TILDE: u8 = 32;
/// The syntax bytes below 64 (`% & ( ) /`) as a bit set.
const LOW_SYNTAX: u64 = (1 << b'%') | (1 << b'&') | (1 << b'(') | (1 << b')') | (1 << b'/');

fn is_syntax(b: u8) -> bool {
    (b < 64 && (LOW_SYNTAX >> b) & 1 != 0) || b == b'~'
}

/// Not syntax: a character of a 43-char ID (base64url).
const ID_CHAR: u8 = 64;

const fn class_of(b: u8) -> u8 {
    match b {
        b'/' => SLASH,
        b'(' => OPEN,
        b')' => CLOSE,
        b'&' => AMP,
        b'%' => PCT,
        b'~' => TILDE,
        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' => ID_CHAR,
        _ => 0,
    }
}

#[allow(clippy::indexing_slicing)] // i < 256 = the table's length, not input data
const fn class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = class_of(i as u8);
        i += 1;
    }
    table
}

static CLASS: [u8; 256] = class_table();

fn class(b: u8) -> u8 {
    CLASS.get(usize::from(b)).copied().unwrap_or(0)
}

/// A non-empty segment of the path: its text and the byte classes it contains.
struct Segment<'a> {
    text: &'a str,
    flags: u8,
}

fn unbalanced(path: &str, byte: usize) -> Fail {
    let at = path.get(..byte).map_or(0, |p| p.chars().count());
    Fail::new(format!("unbalanced parenthesis at {at}"))
}

/// Non-empty `/`-separated segments outside parentheses; checks the balance.
fn split_path(path: &str) -> Result<Vec<Segment<'_>>, Fail> {
    let bytes = path.as_bytes();
    let mut segments = Vec::with_capacity(8);
    let mut depth = 0usize;
    let mut opened = 0usize;
    let mut start = 0usize;
    let mut flags = 0u8;
    let mut i = 0usize;
    loop {
        // most bytes are plain text: a tight scan to the next syntax byte
        while bytes.get(i).is_some_and(|&b| !is_syntax(b)) {
            i += 1;
        }
        let Some(&b) = bytes.get(i) else {
            break;
        };
        match b {
            b'/' if depth == 0 => {
                if i > start {
                    segments.push(Segment {
                        text: path.get(start..i).unwrap_or(""),
                        flags,
                    });
                }
                start = i + 1;
                flags = 0;
            }
            b'(' => {
                if depth == 0 {
                    opened = i;
                }
                depth += 1;
                flags |= OPEN;
            }
            b')' => {
                if depth == 0 {
                    return Err(unbalanced(path, i));
                }
                depth -= 1;
            }
            _ => flags |= class(b),
        }
        i += 1;
    }
    if depth > 0 {
        return Err(unbalanced(path, opened));
    }
    if bytes.len() > start {
        segments.push(Segment {
            text: path.get(start..).unwrap_or(""),
            flags,
        });
    }
    Ok(segments)
}

/// `text` split on the ASCII `sep` outside parentheses (`text` is balanced).
fn split_top(text: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    for (i, b) in text.bytes().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            _ if b == sep && depth == 0 => {
                parts.push(text.get(start..i).unwrap_or(""));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text.get(start..).unwrap_or(""));
    parts
}

fn wholly_parenthesised(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    if bytes.first() != Some(&b'(') || bytes.last() != Some(&b')') {
        return false;
    }
    let mut depth = 0usize;
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1 == bytes.len();
                }
            }
            _ => {}
        }
    }
    false
}

fn is_id(text: &str) -> bool {
    text.len() == 43 && text.bytes().all(|b| class(b) & ID_CHAR != 0)
}

/// `{**base, key: value, **params}` (Python dict-merge order; `base` is the globals or
/// empty).
fn merged<'a>(base: &Dict<'a>, key: &'static str, value: Value<'a>, params: Dict<'a>) -> Dict<'a> {
    if base.is_empty() && params.is_empty() {
        return Dict {
            entries: vec![(Cow::Borrowed(key), value)],
            shared: 0,
        };
    }
    let mut msg = Dict::from_globals(base, 1 + params.len());
    msg.insert(Cow::Borrowed(key), value);
    msg.extend(params);
    msg
}

fn parse_segment<'a>(
    segment: Segment<'a>,
    number: usize,
    globals: &Dict<'a>,
    depth: usize,
) -> Result<(Item<'a>, bool), Fail> {
    let Segment {
        text: segment,
        flags,
    } = segment;
    let first = number == 1;
    let place = Where::Segment(number);
    if flags & OPEN != 0 && wholly_parenthesised(segment) {
        let inner = segment.get(1..segment.len() - 1).unwrap_or("");
        let list = parse(inner, &Dict::new(), depth + 1)
            .map_err(|f| f.within(format!("in the sub-path of segment {number}")))?;
        return Ok((Item::Resolve(list), false));
    }
    let (head, params) = if flags & AMP != 0 {
        let parts = if flags & OPEN != 0 {
            split_top(segment, b'&')
        } else {
            segment.split('&').collect()
        };
        let mut parts = parts.into_iter();
        let head = percent_decode(parts.next().unwrap_or(""), place)?;
        let mut params = Dict::new();
        insert_pairs(parts, percent_decode, place, depth, &mut params)?;
        (head, params)
    } else if flags & PCT != 0 {
        (percent_decode(segment, place)?, Dict::new())
    } else {
        (Cow::Borrowed(segment), Dict::new())
    };

    if is_id(&head) {
        if first {
            if !params.is_empty() {
                return Err(Fail::new("parameters on an ID segment".to_owned()));
            }
            return Ok((Item::Id(head), true));
        }
        return Ok((
            Item::Msg(merged(&Dict::new(), "path", Value::Str(head), params)),
            false,
        ));
    }
    // a `~` can only be in the head if the segment has one or an escape made one
    let tilde = if flags & (TILDE | PCT) != 0 {
        head.bytes().position(|b| b == b'~')
    } else {
        None
    };
    if let Some(tilde) = tilde {
        let device = slice(&head, tilde + 1, head.len());
        if device.is_empty() {
            return Err(Fail::new(format!("empty device name {place}")));
        }
        if device.contains('~') {
            return Err(Fail::new(format!(
                "device name '{}' contains '~' {place}",
                show(&device)
            )));
        }
        let key = slice(&head, 0, tilde);
        if first && is_id(&key) {
            if !params.is_empty() {
                return Err(Fail::new("parameters on an ID segment".to_owned()));
            }
            return Ok((Item::AsId { device, id: key }, true));
        }
        if key.is_empty() {
            if first {
                let msg = merged(globals, "device", Value::Str(device), params);
                return Ok((Item::Msg(msg), true));
            }
            let mut msg = Dict::from_globals(globals, params.len());
            msg.extend(params);
            return Ok((Item::As { device, msg }, false));
        }
        let msg = merged(&Dict::new(), "path", Value::Str(key), params);
        return Ok((Item::As { device, msg }, false));
    }
    Ok((
        Item::Msg(merged(globals, "path", Value::Str(head), params)),
        false,
    ))
}

/// `%XX` escapes decoded (the result must be UTF-8); nothing else changes.
fn percent_decode(text: &str, place: Where) -> Result<Text<'_>, Fail> {
    if !text.contains('%') {
        return Ok(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).copied().and_then(hex_value);
        let lo = bytes.get(i + 2).copied().and_then(hex_value);
        match (hi, lo) {
            (Some(hi), Some(lo)) => {
                out.push(hi * 16 + lo);
                i += 3;
            }
            _ => {
                let pair: String = text
                    .get(i + 1..)
                    .unwrap_or("")
                    .chars()
                    .take_while(|&c| c != '%')
                    .take(2)
                    .collect();
                return Err(Fail::new(format!("bad percent-escape '%{pair}' {place}")));
            }
        }
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| Fail::new(format!("percent-decoded text is not UTF-8 {place}")))
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

const TYPES: [&str; 7] = [
    "integer", "float", "binary", "atom", "list", "map", "resolve",
];

/// `key` split into `name+type` (or `name type`) and `value` cast to it; `None` = a flag.
fn typed<'a>(
    key: Text<'a>,
    value: Option<Text<'a>>,
    place: Where,
    depth: usize,
) -> Result<(Text<'a>, Value<'a>), Fail> {
    let Some(cut) = key.bytes().position(|b| b == b'+' || b == b' ') else {
        return Ok((key, value.map_or(Value::Bool(true), Value::Str)));
    };
    let name = slice(&key, 0, cut);
    let kind = key.get(cut + 1..).unwrap_or("");
    if name.is_empty() {
        return Err(Fail::new(format!(
            "empty key name in typed key '{}' {place}",
            show(&key)
        )));
    }
    if !TYPES.contains(&kind) {
        return Err(Fail::new(format!(
            "unknown type '{}' in key '{}' {place}",
            show(kind),
            show(&key)
        )));
    }
    let Some(value) = value else {
        return Err(Fail::new(format!(
            "typed key '{}' has no value {place}",
            show(&key)
        )));
    };
    let bad = || {
        format!(
            "bad {kind} value '{}' for key '{}' {place}",
            show(&value),
            show(&name)
        )
    };
    let typed = match kind {
        "binary" => Value::Str(value.clone()),
        "atom" => match value.as_ref() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::Str(value.clone()),
        },
        "integer" => {
            let digits = value.strip_prefix('-').unwrap_or(&value);
            if digits.is_empty()
                || digits.len() > MAX_INT_DIGITS
                || !digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(Fail::new(bad()));
            }
            match value.parse::<i64>() {
                Ok(n) => Value::Int(n),
                Err(_) => Value::BigInt(value.clone().into_owned()),
            }
        }
        "float" => match value.parse::<f64>() {
            Ok(x) if is_float_syntax(&value) && x.is_finite() => Value::Float(x),
            _ => return Err(Fail::new(bad())),
        },
        "resolve" => {
            let within = |f: Fail| f.within(format!("in the value of '{}' {place}", show(&key)));
            let list = match &value {
                Cow::Borrowed(s) => parse(s, &Dict::new(), depth + 1).map_err(within)?,
                Cow::Owned(s) => owned_items(parse(s, &Dict::new(), depth + 1).map_err(within)?),
            };
            Value::Resolve(list)
        }
        "list" => {
            let chars: Vec<char> = value.chars().collect();
            match sf_list(&chars) {
                Ok(list) => Value::List(list),
                Err(pos) => return Err(Fail::new(format!("{} (at {pos})", bad()))),
            }
        }
        _ => {
            let chars: Vec<char> = value.chars().collect();
            match sf_dict(&chars) {
                Ok(map) => Value::Map(map),
                Err(pos) => return Err(Fail::new(format!("{} (at {pos})", bad()))),
            }
        }
    };
    Ok((name, typed))
}

/// `[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?`
fn is_float_syntax(text: &str) -> bool {
    let b = text.as_bytes();
    let digits_from = |i: usize| {
        b.get(i..)
            .map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count())
    };
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let whole = digits_from(i);
    i += whole;
    let mut fraction = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        fraction = digits_from(i);
        i += fraction;
    }
    if whole == 0 && fraction == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exponent = digits_from(i);
        if exponent == 0 {
            return false;
        }
        i += exponent;
    }
    i == b.len()
}

// --- RFC 8941 structured fields (the subset the contract names) ----------------------

fn skip_ows(text: &[char], mut i: usize) -> usize {
    while matches!(text.get(i), Some(' ' | '\t')) {
        i += 1;
    }
    i
}

fn sf_list(text: &[char]) -> Result<Vec<Value<'static>>, usize> {
    let mut out = Vec::new();
    let mut i = skip_ows(text, 0);
    if i == text.len() {
        return Ok(out);
    }
    loop {
        let (item, next) = sf_item(text, i)?;
        out.push(item);
        i = skip_ows(text, next);
        match text.get(i) {
            None => return Ok(out),
            Some(',') => {}
            Some(_) => return Err(i),
        }
        i = skip_ows(text, i + 1);
        if i == text.len() {
            return Err(i);
        }
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*')
}

fn sf_dict(text: &[char]) -> Result<Dict<'static>, usize> {
    let mut out = Dict::new();
    let mut i = skip_ows(text, 0);
    if i == text.len() {
        return Ok(out);
    }
    loop {
        let mut end = i;
        while text.get(end).is_some_and(|&c| is_key_char(c)) {
            end += 1;
        }
        if end == i {
            return Err(i);
        }
        let key: String = text.get(i..end).unwrap_or(&[]).iter().collect();
        let mut item = Value::Bool(true);
        if text.get(end) == Some(&'=') {
            let (value, next) = sf_item(text, end + 1)?;
            item = value;
            end = next;
        }
        out.insert(Cow::Owned(key), item);
        i = skip_ows(text, end);
        match text.get(i) {
            None => return Ok(out),
            Some(',') => {}
            Some(_) => return Err(i),
        }
        i = skip_ows(text, i + 1);
        if i == text.len() {
            return Err(i);
        }
    }
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~:/".contains(c)
}

fn count_digits(text: &[char], from: usize) -> usize {
    text.get(from..)
        .map_or(0, |s| s.iter().take_while(|c| c.is_ascii_digit()).count())
}

fn collect(text: &[char], start: usize, end: usize) -> String {
    text.get(start..end).unwrap_or(&[]).iter().collect()
}

/// One bare item at `i`: `(value, index after it)`, or the offset of the error.
fn sf_item(text: &[char], i: usize) -> Result<(Value<'static>, usize), usize> {
    let Some(&c) = text.get(i) else {
        return Err(i);
    };
    match c {
        '"' => {
            let mut s = String::new();
            let mut pos = i + 1;
            while let Some(&c) = text.get(pos) {
                match c {
                    '\\' => match text.get(pos + 1) {
                        Some(&e @ ('"' | '\\')) => {
                            s.push(e);
                            pos += 2;
                        }
                        _ => return Err(pos),
                    },
                    '"' => return Ok((Value::Str(Cow::Owned(s)), pos + 1)),
                    _ => {
                        s.push(c);
                        pos += 1;
                    }
                }
            }
            Err(pos)
        }
        '-' | '0'..='9' => {
            let start = i;
            let digits_at = if c == '-' { i + 1 } else { i };
            let whole = count_digits(text, digits_at);
            if whole == 0 {
                return Err(start);
            }
            let end = digits_at + whole;
            if text.get(end) == Some(&'.') {
                let fraction = count_digits(text, end + 1);
                let stop = end + 1 + fraction;
                if whole > 12 || !(1..=3).contains(&fraction) {
                    return Err(start);
                }
                return collect(text, start, stop)
                    .parse::<f64>()
                    .map(|x| (Value::Float(x), stop))
                    .map_err(|_| start);
            }
            if whole > 15 {
                return Err(start);
            }
            collect(text, start, end)
                .parse::<i64>()
                .map(|n| (Value::Int(n), end))
                .map_err(|_| start)
        }
        '?' => match text.get(i + 1) {
            Some('1') => Ok((Value::Bool(true), i + 2)),
            Some('0') => Ok((Value::Bool(false), i + 2)),
            _ => Err(i),
        },
        c if c.is_ascii_alphabetic() || c == '*' => {
            let mut end = i + 1;
            while text.get(end).is_some_and(|&c| is_token_char(c)) {
                end += 1;
            }
            Ok((Value::Str(Cow::Owned(collect(text, i, end))), end))
        }
        _ => Err(i),
    }
}

// --- Python binding ---------------------------------------------------------------------

/// The Python binding: `hbeam._native.parse_request`.
#[cfg(feature = "python")]
pub mod python {
    use super::{Dict, Item, Value};
    use crate::errors::CoreError;
    use pyo3::exceptions::PyRuntimeError;
    use pyo3::intern;
    use pyo3::prelude::*;
    use pyo3::sync::PyOnceLock;
    use pyo3::types::{PyDict, PyInt, PyList, PyString, PyTuple, PyType};
    use std::borrow::Cow;

    fn invalid_path(message: String) -> PyErr {
        CoreError::InvalidPath(message).into()
    }

    fn type_name(obj: &Bound<'_, PyAny>) -> String {
        obj.get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "object".to_owned())
    }

    /// The caller's globals: `(key, key object, value object)`.
    struct Globals<'py> {
        keys: Vec<Bound<'py, PyString>>,
        values: Vec<Bound<'py, PyAny>>,
    }

    fn read_globals<'py>(globals: &Bound<'py, PyAny>) -> PyResult<Globals<'py>> {
        let py = globals.py();
        let mut out = Globals {
            keys: Vec::new(),
            values: Vec::new(),
        };
        let mut add = |key: Bound<'py, PyAny>, value: Bound<'py, PyAny>| -> PyResult<()> {
            let Ok(key_str) = key.cast::<PyString>() else {
                return Err(invalid_path(format!(
                    "globals key {} must be a str, not {}",
                    key.repr()?,
                    type_name(&key)
                )));
            };
            if key_str.to_str().is_err() {
                return Err(invalid_path(format!(
                    "globals key {} is not valid Unicode",
                    key.repr()?
                )));
            }
            out.keys.push(key_str.clone());
            out.values.push(value);
            Ok(())
        };
        if let Ok(dict) = globals.cast_exact::<PyDict>() {
            for (key, value) in dict.iter() {
                add(key, value)?;
            }
        } else {
            static MAPPING: PyOnceLock<Py<PyType>> = PyOnceLock::new();
            let mapping = MAPPING.import(py, "collections.abc", "Mapping")?;
            if !globals.is_instance(mapping)? {
                return Err(invalid_path(format!(
                    "globals must be a mapping, not {}",
                    type_name(globals)
                )));
            }
            for pair in globals.call_method0(intern!(py, "items"))?.try_iter()? {
                let pair = pair?;
                add(pair.get_item(0)?, pair.get_item(1)?)?;
            }
        }
        Ok(out)
    }

    /// Parse an HTTP request path into `[base, step1, …]` (see `docs/core-contract.md`).
    #[pyfunction]
    #[pyo3(signature = (path, globals=None))]
    pub fn parse_request<'py>(
        py: Python<'py>,
        path: &Bound<'py, PyAny>,
        globals: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let Ok(path) = path.cast::<PyString>() else {
            return Err(invalid_path(format!(
                "request path must be a str, not {}",
                type_name(path)
            )));
        };
        let Ok(path) = path.to_str() else {
            return Err(invalid_path(
                "request path is not valid Unicode: it contains a lone surrogate".to_owned(),
            ));
        };
        let table = match globals.filter(|g| !g.is_none()) {
            Some(globals) => read_globals(&globals)?,
            None => Globals {
                keys: Vec::new(),
                values: Vec::new(),
            },
        };
        let mut dict = Dict::new();
        for (i, key) in table.keys.iter().enumerate() {
            // checked in read_globals
            let text = key
                .to_str()
                .map_err(|_| invalid_path("globals key is not valid Unicode".into()))?;
            dict.insert(Cow::Borrowed(text), Value::Ext(i));
        }
        let (items, effective) =
            super::parse_request_with_globals(path, &dict).map_err(CoreError::from)?;
        let mut converter = Converter {
            py,
            table: &table,
            globals: None,
        };
        if !effective.is_empty() {
            // built once; every top-level dict that starts with the globals copies it
            converter.globals = Some(converter.dict(&effective, false)?);
        }
        converter.items(&items, true)
    }

    /// Tree → Python objects. `top` marks the request's own level, where a dict's
    /// shared prefix refers to `globals` (a sub-path's dicts have other globals).
    struct Converter<'t, 'py> {
        py: Python<'py>,
        table: &'t Globals<'py>,
        globals: Option<Bound<'py, PyDict>>,
    }

    impl<'py> Converter<'_, 'py> {
        fn items(&self, items: &[Item<'_>], top: bool) -> PyResult<Bound<'py, PyList>> {
            let list = PyList::empty(self.py);
            for item in items {
                list.append(self.item(item, top)?)?;
            }
            Ok(list)
        }

        fn as_tuple(&self, device: &str, target: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
            let py = self.py;
            let parts = [
                intern!(py, "as").clone().into_any(),
                PyString::new(py, device).into_any(),
                target,
            ];
            Ok(PyTuple::new(py, parts)?.into_any())
        }

        fn resolve_tuple(&self, items: &[Item<'_>]) -> PyResult<Bound<'py, PyAny>> {
            let py = self.py;
            let parts = [
                intern!(py, "resolve").clone().into_any(),
                self.items(items, false)?.into_any(),
            ];
            Ok(PyTuple::new(py, parts)?.into_any())
        }

        fn item(&self, item: &Item<'_>, top: bool) -> PyResult<Bound<'py, PyAny>> {
            match item {
                Item::Id(id) => Ok(PyString::new(self.py, id).into_any()),
                Item::AsId { device, id } => {
                    self.as_tuple(device, PyString::new(self.py, id).into_any())
                }
                Item::Msg(dict) => Ok(self.dict(dict, top)?.into_any()),
                Item::As { device, msg } => self.as_tuple(device, self.dict(msg, top)?.into_any()),
                Item::Resolve(items) => self.resolve_tuple(items),
            }
        }

        fn key(&self, key: &str, value: &Value<'_>) -> Bound<'py, PyString> {
            let py = self.py;
            match key {
                "path" => intern!(py, "path").clone(),
                "device" => intern!(py, "device").clone(),
                _ => {
                    // a global keeps its own key object (unless renamed by `N.` scoping)
                    if let Value::Ext(i) = value {
                        if let Some(obj) = self.table.keys.get(*i) {
                            if obj.to_str().is_ok_and(|k| k == key) {
                                return obj.clone();
                            }
                        }
                    }
                    PyString::new(py, key)
                }
            }
        }

        fn dict(&self, dict: &Dict<'_>, top: bool) -> PyResult<Bound<'py, PyDict>> {
            let (out, from) = match &self.globals {
                Some(globals) if top && dict.shared_prefix() > 0 => {
                    (globals.copy()?, dict.shared_prefix())
                }
                _ => (PyDict::new(self.py), 0),
            };
            for (key, value) in dict.entries().get(from..).unwrap_or(&[]) {
                out.set_item(self.key(key, value), self.value(value)?)?;
            }
            Ok(out)
        }

        fn value(&self, value: &Value<'_>) -> PyResult<Bound<'py, PyAny>> {
            let py = self.py;
            Ok(match value {
                Value::Str(s) => PyString::new(py, s).into_any(),
                Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
                Value::Int(n) => n.into_pyobject(py)?.into_any(),
                Value::BigInt(text) => py.get_type::<PyInt>().call1((text.as_str(),))?,
                Value::Float(x) => x.into_pyobject(py)?.into_any(),
                Value::List(values) => {
                    let list = PyList::empty(py);
                    for v in values {
                        list.append(self.value(v)?)?;
                    }
                    list.into_any()
                }
                Value::Map(dict) => self.dict(dict, false)?.into_any(),
                Value::Resolve(items) => self.resolve_tuple(items)?,
                Value::Ext(index) => match self.table.values.get(*index) {
                    Some(obj) => obj.clone(),
                    None => {
                        return Err(PyRuntimeError::new_err(
                            "hbeam internal error: parse_request lost a global value",
                        ))
                    }
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: &str = "FkJPkIHp_Gc_7KOLbtyzowPcJUc3SG_G25SJp0fbTmE";
    const TX: &str = "QSBQZsowVRdvsEbdTv-KEF4_Z5bYf11M3X5-8LN0NM4";

    fn parse(path: &str) -> Result<Vec<Item<'_>>, RequestError> {
        parse_request(path, &Dict::new())
    }

    fn s(text: &str) -> Value<'static> {
        Value::Str(Cow::Owned(text.to_owned()))
    }

    fn msg(entries: &[(&str, Value<'static>)]) -> Dict<'static> {
        entries
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    fn path_msg(key: &str) -> Item<'static> {
        Item::Msg(msg(&[("path", s(key))]))
    }

    fn cast(device: &str, entries: &[(&str, Value<'static>)]) -> Item<'static> {
        Item::As {
            device: Cow::Owned(device.to_owned()),
            msg: msg(entries),
        }
    }

    /// The message at `n` (an empty dict when `n` is not a plain message).
    fn step<'a>(items: &[Item<'a>], n: usize) -> Dict<'a> {
        match items.get(n) {
            Some(Item::Msg(d)) => d.clone(),
            _ => Dict::new(),
        }
    }

    fn err(path: &str) -> String {
        match parse(path) {
            Ok(items) => format!("unexpectedly parsed: {items:?}"),
            Err(e) => e.message().to_owned(),
        }
    }

    #[test]
    fn seed_url_with_cast_device() {
        let path = format!("/{PID}~process@1.0/now/cache/balances/format~json@1.0");
        assert_eq!(
            parse(&path),
            Ok(vec![
                Item::AsId {
                    device: "process@1.0".into(),
                    id: PID.into()
                },
                path_msg("now"),
                path_msg("cache"),
                path_msg("balances"),
                cast("json@1.0", &[("path", s("format"))]),
            ])
        );
    }

    #[test]
    fn seed_url_with_lua_cast_and_params() {
        let path = format!(
            "/{PID}~process@1.0/now/cache/balances/~lua@5.3a/sum&module={TX}/serialize~json@1.0"
        );
        let items = parse(&path).unwrap_or_default();
        assert_eq!(items.len(), 7);
        assert_eq!(items.get(4), Some(&cast("lua@5.3a", &[])));
        assert_eq!(
            items.get(5),
            Some(&Item::Msg(msg(&[("path", s("sum")), ("module", s(TX))])))
        );
        assert_eq!(
            items.get(6),
            Some(&cast("json@1.0", &[("path", s("serialize"))]))
        );
    }

    #[test]
    fn cast_first_and_globals() {
        let globals = msg(&[("host", s("h"))]);
        let items = parse_request("/~meta@1.0/info?x=1&n+integer=2", &globals);
        let want = vec![
            Item::Msg(msg(&[
                ("host", s("h")),
                ("x", s("1")),
                ("n", Value::Int(2)),
                ("device", s("meta@1.0")),
            ])),
            Item::Msg(msg(&[
                ("host", s("h")),
                ("x", s("1")),
                ("n", Value::Int(2)),
                ("path", s("info")),
            ])),
        ];
        assert_eq!(items, Ok(want));
    }

    #[test]
    fn sub_paths_and_scoped_keys() {
        let mut want = vec![
            Item::Msg(Dict::new()),
            path_msg("a"),
            Item::Resolve(vec![Item::Msg(Dict::new()), path_msg("b"), path_msg("c")]),
            path_msg("d"),
        ];
        // item 2 is a sub-resolution: a scoped key cannot name it
        assert!(err("/a/(b/c)/d?2.k=v").ends_with("scoped key '2.k' names no path segment"));
        if let Some(Item::Msg(d)) = want.get_mut(3) {
            d.insert("k".into(), s("v"));
        }
        if let Some(Item::Msg(d)) = want.get_mut(0) {
            d.insert("z".into(), Value::Bool(true));
        }
        assert_eq!(parse("/a/(b/c)/d?3.k=v&0.z"), Ok(want));
    }

    #[test]
    fn typed_values() {
        let items = parse(
            "/a&i+integer=-12&f+float=1.5e3&b+atom=true&l+list=1, 2.5, \"x\\\"y\", %3F0, tok\
             &m+map=a=1, c&big+integer=123456789012345678901234567890",
        )
        .unwrap_or_default();
        let d = step(&items, 1);
        assert_eq!(d.get("i"), Some(&Value::Int(-12)));
        assert_eq!(d.get("f"), Some(&Value::Float(1500.0)));
        assert_eq!(d.get("b"), Some(&Value::Bool(true)));
        assert_eq!(
            d.get("l"),
            Some(&Value::List(vec![
                Value::Int(1),
                Value::Float(2.5),
                s("x\"y"),
                Value::Bool(false),
                s("tok")
            ]))
        );
        assert_eq!(
            d.get("m"),
            Some(&Value::Map(msg(&[
                ("a", Value::Int(1)),
                ("c", Value::Bool(true))
            ])))
        );
        assert_eq!(
            d.get("big"),
            Some(&Value::BigInt("123456789012345678901234567890".into()))
        );
    }

    #[test]
    fn resolve_values_nest() {
        let items = parse("/a&r+resolve=x%2Fy").unwrap_or_default();
        let d = step(&items, 1);
        assert_eq!(
            d.get("r"),
            Some(&Value::Resolve(vec![
                Item::Msg(Dict::new()),
                path_msg("x"),
                path_msg("y")
            ]))
        );
    }

    #[test]
    fn undecoded_text_borrows_from_the_path() {
        let items = parse("/a/b~dev@1.0").unwrap_or_default();
        assert!(matches!(
            items.get(2),
            Some(Item::As {
                device: Cow::Borrowed(_),
                ..
            })
        ));
        let d = step(&items, 1);
        assert!(matches!(
            d.get("path"),
            Some(Value::Str(Cow::Borrowed("a")))
        ));
    }

    #[test]
    fn bad_input_says_where() {
        assert_eq!(
            err("/a/(b"),
            "bad request path '/a/(b': unbalanced parenthesis at 3"
        );
        assert_eq!(
            err("/a)/b"),
            "bad request path '/a)/b': unbalanced parenthesis at 2"
        );
        assert!(err("/a/b&x+foo=1").ends_with("unknown type 'foo' in key 'x+foo' in segment 2"));
        assert!(err("/a&n+integer=x").ends_with("bad integer value 'x' for key 'n' in segment 1"));
        assert!(err("/a/~").ends_with("empty device name in segment 2"));
        assert!(
            err(&format!("/a/{}", "x".repeat(600))).ends_with("segment 2 is 600 bytes (limit 512)")
        );
        assert!(err("/a&n+integer").ends_with("typed key 'n+integer' has no value in segment 1"));
        assert!(err(&format!("/{PID}&k=v")).ends_with("parameters on an ID segment"));
        assert!(err("/a?5.x=1").ends_with("scoped key '5.x' names no path segment"));
        assert!(err("/%zz").ends_with("bad percent-escape '%zz' in segment 1"));
        assert!(err("/%ff").ends_with("percent-decoded text is not UTF-8 in segment 1"));
        assert!(err("/a&f+float=inf").ends_with("bad float value 'inf' for key 'f' in segment 1"));
        assert!(err("/a&l+list=1,,2")
            .ends_with("bad list value '1,,2' for key 'l' in segment 1 (at 2)"));
        let deep = format!("/{}a{}", "(".repeat(40), ")".repeat(40));
        assert!(err(&deep).ends_with("nested deeper than 32 levels (in the sub-path of segment 1)"));
        let query = format!("/?k+resolve=x{}", "?k+resolve=x".repeat(100));
        assert!(err(&query).contains("nested deeper than 32 levels"));
    }

    #[test]
    fn globals_derived_dicts_report_their_shared_prefix() {
        let globals = msg(&[("a", Value::Ext(0)), ("b", Value::Ext(1))]);
        let parsed = parse_request_with_globals("/x/y&a=1/~d@1.0/k~d@1.0?c=2&1.s=3", &globals);
        let Ok((items, effective)) = parsed else {
            return assert!(parsed.is_ok(), "{parsed:?}");
        };
        assert_eq!(
            effective,
            msg(&[("a", Value::Ext(0)), ("b", Value::Ext(1)), ("c", s("2"))])
        );
        let prefixes: Vec<usize> = items
            .iter()
            .map(|item| match item {
                Item::Msg(d) | Item::As { msg: d, .. } => d.shared_prefix(),
                _ => usize::MAX,
            })
            .collect();
        // base, x (+ scoped s), y (param `a` overrides the first global), cast, keyed cast
        assert_eq!(prefixes, vec![3, 3, 0, 3, 0]);
        assert_eq!(step(&items, 2).get("a"), Some(&s("1")));
        assert_eq!(step(&items, 1).get("s"), Some(&s("3")));
    }

    #[test]
    fn empty_paths_give_the_globals() {
        let globals = msg(&[("k", Value::Ext(0))]);
        for path in ["", "/", "//", "?"] {
            assert_eq!(
                parse_request(path, &globals),
                Ok(vec![Item::Msg(globals.clone())])
            );
        }
    }

    #[test]
    fn long_messages_are_shortened() {
        let long = format!("/{}(", "é".repeat(200));
        let message = err(&long);
        assert!(message.contains("...'"));
        assert!(message.ends_with("unbalanced parenthesis at 201"));
    }

    #[test]
    fn request_error_becomes_invalid_path() {
        let e = parse("/a)").err().map(crate::errors::CoreError::from);
        assert_eq!(
            e.map(|e| e.class()),
            Some(crate::errors::ErrorClass::InvalidPath)
        );
    }
}
