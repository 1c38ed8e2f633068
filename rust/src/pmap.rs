//! A persistent (immutable, structurally shared) sorted map from string keys: a B+tree
//! with path copying over `Arc` nodes. Twin of `python/hbeam/_pure/pmap.py`.
//!
//! Keys sort by UTF-8 bytes (= code point order). Costs: `get`/`insert`/`remove`/
//! `lower_bound` O(log n); one update copies one node per level (at most [`LEAF_CAP`]
//! entries in a leaf, [`BRANCH_CAP`] children in a branch), so updating k keys of an
//! n-key map costs O(k log n) and shares everything else; `len` O(1); iteration sorted,
//! O(n); [`PMap::from_sorted`] O(n).
//!
//! Mutation is copy-on-write (`Arc::make_mut`): a `PMap` is a cheap handle (`clone` is
//! one `Arc` increment), and the `*_mut` methods copy a node only while it is shared, so
//! a batch on a private clone copies each touched path once, then edits it in place.
//!
//! The node width is a trade: a one-key update clones every entry of each node on its
//! path (a reference-count increment per value), so narrow nodes make single updates of
//! big maps cheap; but a message of up to [`LEAF_CAP`] keys (the common 15–25 key
//! messages) is then a single leaf, so a small batch update copies one node (one
//! allocation: a leaf's entries sit in one `Vec`, sized so the allocator serves it from
//! its fast path) and never splits (see `benches/bench_core.py`).

use std::cmp::Ordering;
use std::sync::Arc;

/// A map key: an immutable UTF-8 string, stored inline up to 23 bytes (cloning it then
/// copies 24 bytes instead of touching a shared reference count).
pub type Key = smol_str::SmolStr;

/// Most entries of a leaf.
pub const LEAF_CAP: usize = 32;
/// Most children of a branch.
pub const BRANCH_CAP: usize = 8;
const LEAF_MIN: usize = LEAF_CAP / 2;
const BRANCH_MIN: usize = BRANCH_CAP / 2;

/// Entries sorted by key, keys and values side by side (one allocation per leaf).
struct Leaf<V> {
    entries: Vec<(Key, V)>,
}

/// A copy made by copy-on-write is about to be edited: it gets room for a full leaf, so
/// inserting never regrows it (a full leaf splits before it takes one more entry).
impl<V: Clone> Clone for Leaf<V> {
    fn clone(&self) -> Self {
        let mut entries = Vec::with_capacity(self.entries.len().max(LEAF_CAP));
        entries.extend(self.entries.iter().cloned());
        Leaf { entries }
    }
}

/// `seps[i]` separates `kids[i]` and `kids[i + 1]`: every key of `kids[i]` is `< seps[i]`,
/// every key of `kids[i + 1]` is `>= seps[i]`.
struct Branch<V> {
    seps: Vec<Key>,
    kids: Vec<Node<V>>,
}

/// As for leaves: a copy has room for the child a split adds.
impl<V> Clone for Branch<V> {
    fn clone(&self) -> Self {
        let mut seps = Vec::with_capacity(self.seps.len().max(BRANCH_CAP));
        seps.extend(self.seps.iter().cloned());
        let mut kids = Vec::with_capacity(self.kids.len().max(BRANCH_CAP + 1));
        kids.extend(self.kids.iter().cloned());
        Branch { seps, kids }
    }
}

enum Node<V> {
    Leaf(Arc<Leaf<V>>),
    Branch(Arc<Branch<V>>),
}

impl<V> Clone for Node<V> {
    fn clone(&self) -> Self {
        match self {
            Node::Leaf(l) => Node::Leaf(Arc::clone(l)),
            Node::Branch(b) => Node::Branch(Arc::clone(b)),
        }
    }
}

impl<V> Node<V> {
    fn width(&self) -> usize {
        match self {
            Node::Leaf(l) => l.entries.len(),
            Node::Branch(b) => b.kids.len(),
        }
    }
}

/// The persistent map. `Clone` is O(1) and shares the whole tree.
pub struct PMap<V> {
    root: Option<Node<V>>,
    len: usize,
}

impl<V> Clone for PMap<V> {
    fn clone(&self) -> Self {
        PMap {
            root: self.root.clone(),
            len: self.len,
        }
    }
}

impl<V> Default for PMap<V> {
    fn default() -> Self {
        PMap { root: None, len: 0 }
    }
}

/// Byte-order comparison, eight bytes at a time: keys are short, and this beats a
/// `memcmp` call per comparison (measured: 2x faster lookups).
#[inline]
fn cmp_bytes(a: &[u8], b: &[u8]) -> Ordering {
    let (mut x, mut y) = (a, b);
    while let (Some((hx, tx)), Some((hy, ty))) =
        (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
    {
        if hx != hy {
            return u64::from_be_bytes(*hx).cmp(&u64::from_be_bytes(*hy));
        }
        x = tx;
        y = ty;
    }
    for (p, q) in x.iter().zip(y) {
        if p != q {
            return p.cmp(q);
        }
    }
    x.len().cmp(&y.len())
}

#[inline]
fn cmp_key(k: &Key, target: &[u8]) -> Ordering {
    cmp_bytes(k.as_bytes(), target)
}

/// Index of the child of `b` that may hold `key`.
fn child_index<V>(b: &Branch<V>, key: &[u8]) -> usize {
    b.seps
        .partition_point(|s| cmp_key(s, key) != Ordering::Greater)
}

enum Inserted<V> {
    Replaced(V),
    Added,
    Split(Key, Node<V>),
}

impl<V: Clone> PMap<V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries, O(1).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the map has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value stored under exactly `key`, O(log n).
    pub fn get(&self, key: &str) -> Option<&V> {
        self.get_entry(key.as_bytes()).map(|(_, v)| v)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get_entry(key.as_bytes()).is_some()
    }

    fn get_entry(&self, key: &[u8]) -> Option<(&Key, &V)> {
        let mut node = self.root.as_ref()?;
        loop {
            match node {
                Node::Branch(b) => node = b.kids.get(child_index(b, key))?,
                Node::Leaf(l) => {
                    let i = l.entries.binary_search_by(|(k, _)| cmp_key(k, key)).ok()?;
                    let (k, v) = l.entries.get(i)?;
                    return Some((k, v));
                }
            }
        }
    }

    /// The first entry whose key is `>= key` (byte order), O(log n).
    pub fn lower_bound(&self, key: &[u8]) -> Option<(&Key, &V)> {
        fn go<'a, V>(node: &'a Node<V>, key: &[u8]) -> Option<(&'a Key, &'a V)> {
            match node {
                Node::Leaf(l) => {
                    let i = l
                        .entries
                        .partition_point(|(k, _)| cmp_key(k, key) == Ordering::Less);
                    let (k, v) = l.entries.get(i)?;
                    Some((k, v))
                }
                Node::Branch(b) => {
                    let i = child_index(b, key);
                    go(b.kids.get(i)?, key).or_else(|| first(b.kids.get(i + 1)?))
                }
            }
        }
        fn first<V>(mut node: &Node<V>) -> Option<(&Key, &V)> {
            loop {
                match node {
                    Node::Leaf(l) => return l.entries.first().map(|(k, v)| (k, v)),
                    Node::Branch(b) => node = b.kids.first()?,
                }
            }
        }
        go(self.root.as_ref()?, key)
    }

    /// The first entry in key order whose key equals `key` under ASCII case folding.
    ///
    /// A single leaf is scanned. A bigger map is searched with seeks: the first key at or
    /// above the smallest case variant of `key` (all upper case) is either a variant, or
    /// tells the next variant worth seeking (the smallest above it, see
    /// [`next_variant`]); so a miss costs a few `lower_bound`s (O(log n) each), never a
    /// scan of the whole map.
    pub fn get_ascii_ci(&self, key: &str) -> Option<(&Key, &V)> {
        let target = key.as_bytes();
        let is_variant = |k: &Key| {
            let k = k.as_bytes();
            k.len() == target.len() && k.eq_ignore_ascii_case(target)
        };
        if let Node::Leaf(l) = self.root.as_ref()? {
            return l
                .entries
                .iter()
                .find(|(k, _)| is_variant(k))
                .map(|(k, v)| (k, v));
        }
        let mut probe: Vec<u8> = target.iter().map(u8::to_ascii_uppercase).collect();
        loop {
            let (k, v) = self.lower_bound(&probe)?;
            if is_variant(k) {
                return Some((k, v));
            }
            if !next_variant(target, k.as_bytes(), &mut probe) {
                return None;
            }
        }
    }

    /// A new map with `key` set to `val` (this one is unchanged).
    pub fn insert(&self, key: Key, val: V) -> Self {
        let mut out = self.clone();
        out.insert_mut(key, val);
        out
    }

    /// Set `key` to `val` in place (copying only shared nodes); returns the old value.
    pub fn insert_mut(&mut self, key: Key, val: V) -> Option<V> {
        let Some(root) = self.root.as_mut() else {
            let leaf = Leaf {
                entries: vec![(key, val)],
            };
            self.root = Some(Node::Leaf(Arc::new(leaf)));
            self.len = 1;
            return None;
        };
        match insert_node(root, key, val) {
            Inserted::Replaced(old) => Some(old),
            Inserted::Added => {
                self.len += 1;
                None
            }
            Inserted::Split(sep, right) => {
                let left = root.clone();
                let mut branch = Branch {
                    seps: Vec::with_capacity(BRANCH_CAP),
                    kids: Vec::with_capacity(BRANCH_CAP + 1),
                };
                branch.seps.push(sep);
                branch.kids.push(left);
                branch.kids.push(right);
                self.root = Some(Node::Branch(Arc::new(branch)));
                self.len += 1;
                None
            }
        }
    }

    /// A new map without `key` (this one is unchanged).
    pub fn remove(&self, key: &str) -> Self {
        let mut out = self.clone();
        out.remove_mut(key);
        out
    }

    /// Remove `key` in place (copying only shared nodes); returns its value if present.
    pub fn remove_mut(&mut self, key: &str) -> Option<V> {
        // Nothing to do for a missing key: leave the tree (and its sharing) untouched.
        if !self.contains_key(key) {
            return None;
        }
        let root = self.root.as_mut()?;
        let removed = remove_node(root, key.as_bytes());
        if removed.is_some() {
            self.len -= 1;
            // Collapse a root left with a single child or no entries.
            let replacement = match &self.root {
                Some(Node::Branch(b)) if b.kids.len() == 1 => Some(b.kids.first().cloned()),
                Some(Node::Leaf(l)) if l.entries.is_empty() => Some(None),
                _ => None,
            };
            if let Some(r) = replacement {
                self.root = r;
            }
        }
        removed
    }

    /// Entries in key order.
    pub fn iter(&self) -> Iter<'_, V> {
        let mut it = Iter {
            stack: Vec::new(),
            leaf: None,
            remaining: self.len,
        };
        if let Some(root) = &self.root {
            it.descend(root);
        }
        it
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.iter().map(|(k, _)| k)
    }

    /// An iterator that owns its share of the tree (no borrow of `self`).
    pub fn owned_iter(&self) -> OwnedIter<V> {
        let mut it = OwnedIter {
            stack: Vec::new(),
            remaining: self.len,
        };
        if let Some(root) = &self.root {
            it.stack.push((root.clone(), 0));
        }
        it
    }

    /// Build from entries sorted by key with no duplicates, O(n).
    pub fn from_sorted(entries: Vec<(Key, V)>) -> Self {
        let len = entries.len();
        if len == 0 {
            return Self::new();
        }
        if len <= LEAF_CAP {
            // one leaf: it takes the entries as they are
            return PMap {
                root: Some(Node::Leaf(Arc::new(Leaf { entries }))),
                len,
            };
        }
        let mut level: Vec<(Key, Node<V>)> = Vec::with_capacity(len / LEAF_MIN + 1);
        let mut items = entries.into_iter();
        for size in even_chunks(len, LEAF_CAP) {
            let leaf = Leaf {
                entries: items.by_ref().take(size).collect::<Vec<_>>(),
            };
            let Some(min) = leaf.entries.first().map(|(k, _)| k.clone()) else {
                break;
            };
            level.push((min, Node::Leaf(Arc::new(leaf))));
        }
        while level.len() > 1 {
            let n = level.len();
            let mut next: Vec<(Key, Node<V>)> = Vec::with_capacity(n / BRANCH_MIN + 1);
            let mut nodes = level.into_iter();
            for size in even_chunks(n, BRANCH_CAP) {
                let mut branch = Branch {
                    seps: Vec::with_capacity(size.saturating_sub(1)),
                    kids: Vec::with_capacity(size),
                };
                let mut min = None;
                for (k, node) in nodes.by_ref().take(size) {
                    if min.is_none() {
                        min = Some(k);
                    } else {
                        branch.seps.push(k);
                    }
                    branch.kids.push(node);
                }
                let Some(min) = min else { break };
                next.push((min, Node::Branch(Arc::new(branch))));
            }
            level = next;
        }
        PMap {
            root: level.pop().map(|(_, node)| node),
            len,
        }
    }

    /// Build from entries in any order whose keys are all different (the caller knows:
    /// e.g. the `str` keys of one `dict`); cheaper than [`PMap::from_unsorted`].
    pub fn from_distinct(mut entries: Vec<(Key, V)>) -> Self {
        if entries.len() <= SMALL_SORT {
            // as cheap as checking the order first when it is sorted already
            sort_small(&mut entries);
        } else if !sorted_strictly(&entries) {
            sort_entries(&mut entries);
        }
        debug_assert!(sorted_strictly(&entries), "from_distinct got equal keys");
        Self::from_sorted(entries)
    }

    /// Build from entries in any order; for equal keys the later entry wins.
    pub fn from_unsorted(mut entries: Vec<(Key, V)>) -> Self {
        if !sorted_strictly(&entries) {
            // stable: equal keys keep their input order, so keeping the last keeps the later
            sort_entries(&mut entries);
            // `dedup_by` keeps the first of a run: move each later value into it
            entries.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    std::mem::swap(&mut later.1, &mut kept.1);
                    true
                } else {
                    false
                }
            });
        }
        Self::from_sorted(entries)
    }

    #[cfg(test)]
    fn check_invariants(&self) -> usize {
        fn go<V>(
            node: &Node<V>,
            lo: Option<&Key>,
            hi: Option<&Key>,
            is_root: bool,
        ) -> (usize, usize) {
            match node {
                Node::Leaf(l) => {
                    assert!(l.entries.len() <= LEAF_CAP, "overfull leaf");
                    assert!(is_root || l.entries.len() >= LEAF_MIN, "underfull leaf");
                    assert!(l
                        .entries
                        .windows(2)
                        .all(|w| matches!(w, [a, b] if a.0 < b.0)));
                    for (k, _) in &l.entries {
                        assert!(lo.is_none_or(|lo| k >= lo));
                        assert!(hi.is_none_or(|hi| k < hi));
                    }
                    (l.entries.len(), 1)
                }
                Node::Branch(b) => {
                    assert_eq!(b.seps.len() + 1, b.kids.len());
                    assert!(b.kids.len() <= BRANCH_CAP, "overfull branch");
                    assert!(
                        b.kids.len() >= if is_root { 2 } else { BRANCH_MIN },
                        "underfull branch"
                    );
                    let mut total = 0;
                    let mut depth = None;
                    for (i, kid) in b.kids.iter().enumerate() {
                        let klo = if i == 0 { lo } else { b.seps.get(i - 1) };
                        let khi = if i + 1 == b.kids.len() {
                            hi
                        } else {
                            b.seps.get(i)
                        };
                        let (n, d) = go(kid, klo, khi, false);
                        total += n;
                        assert!(depth.is_none_or(|x| x == d), "unbalanced");
                        depth = Some(d);
                    }
                    (total, depth.unwrap_or(0) + 1)
                }
            }
        }
        match &self.root {
            None => 0,
            Some(root) => {
                let (n, _) = go(root, None, None, true);
                assert_eq!(n, self.len);
                n
            }
        }
    }
}

/// The smallest case variant of `target` (its ASCII letters in either case) that sorts
/// above `k`, which is no variant, written to `out`; `false` when every variant is below.
///
/// The variant follows `k` as long as it can (the longest common prefix gives the
/// smallest variant above): where `k` ends, the rest is the smallest (upper case); where
/// `k`'s byte is neither case of `target`'s, the smallest case above it, then the
/// smallest rest; when none is above, or `k` goes on after a whole variant (which is then
/// below `k`), the last place where `k` has the upper case of a letter takes the lower
/// case instead, followed by the smallest rest.
fn next_variant(target: &[u8], k: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut last_upper: Option<usize> = None;
    for (i, &t) in target.iter().enumerate() {
        let (lo, hi) = (t.to_ascii_uppercase(), t.to_ascii_lowercase());
        let Some(&c) = k.get(i) else {
            // `k` is a prefix of the variants that go on from here
            out.extend(target.iter().skip(i).map(u8::to_ascii_uppercase));
            return true;
        };
        if c == lo || c == hi {
            if c == lo && lo != hi {
                last_upper = Some(i);
            }
            out.push(c);
            continue;
        }
        if c > hi {
            break;
        }
        out.push(if c < lo { lo } else { hi });
        out.extend(target.iter().skip(i + 1).map(u8::to_ascii_uppercase));
        return true;
    }
    let Some(j) = last_upper else {
        return false;
    };
    out.truncate(j);
    out.extend(target.get(j).map(u8::to_ascii_lowercase));
    out.extend(target.iter().skip(j + 1).map(u8::to_ascii_uppercase));
    true
}

/// The first 8 bytes of `key`, zero-padded, as a big-endian number: when two prefixes
/// differ they order their keys (byte order); when equal the keys must be compared.
#[inline]
fn prefix8(key: &[u8]) -> u64 {
    if let Some(head) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    let mut head = 0u64;
    for (byte, shift) in key.iter().zip((0..8).rev()) {
        head |= u64::from(*byte) << (8 * shift);
    }
    head
}

/// Most entries sorted by [`sort_small`].
const SMALL_SORT: usize = 16;

/// Sort a few `entries` (at most [`SMALL_SORT`]; more are left as they are) by key, byte
/// order, equal keys kept in input order, with no allocation: an insertion sort over the
/// keys' first 8 bytes taken once, so most comparisons are one integer comparison (as
/// cheap as checking the order when the entries are sorted already).
fn sort_small<V>(entries: &mut [(Key, V)]) {
    let mut heads = [0u64; SMALL_SORT];
    let Some(heads) = heads.get_mut(..entries.len()) else {
        return;
    };
    for (head, (k, _)) in heads.iter_mut().zip(entries.iter()) {
        *head = prefix8(k.as_bytes());
    }
    for i in 1..entries.len() {
        let mut j = i;
        while let (Some(&a), Some(&b)) = (heads.get(j.wrapping_sub(1)), heads.get(j)) {
            let less = b < a
                || (b == a
                    && match (entries.get(j - 1), entries.get(j)) {
                        (Some(x), Some(y)) => cmp_key(&y.0, x.0.as_bytes()) == Ordering::Less,
                        _ => false,
                    });
            if !less {
                break;
            }
            heads.swap(j - 1, j);
            entries.swap(j - 1, j);
            j -= 1;
        }
    }
}

/// Sort `entries` by key (byte order), equal keys kept in input order.
///
/// A few go to [`sort_small`]; more: sorts `(prefix, index)` pairs, so most comparisons never touch the keys (comparing
/// keys is most of the cost of sorting the entries themselves), then moves each entry
/// once into place.
fn sort_entries<V>(entries: &mut [(Key, V)]) {
    if entries.len() <= SMALL_SORT {
        sort_small(entries);
        return;
    }
    let mut order: Vec<(u64, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (prefix8(k.as_bytes()), i))
        .collect();
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| match (entries.get(a.1), entries.get(b.1)) {
                (Some(x), Some(y)) => cmp_key(&x.0, y.0.as_bytes()),
                _ => Ordering::Equal,
            })
            .then(a.1.cmp(&b.1))
    });
    // entries[j] must become the old entries[order[j].1]: walk each cycle of that
    // permutation with swaps, marking the places done (`order[j].1 = j`)
    for start in 0..order.len() {
        let mut j = start;
        while let Some(slot) = order.get_mut(j) {
            let src = std::mem::replace(&mut slot.1, j);
            if src == j || src == start {
                break;
            }
            entries.swap(j, src);
            j = src;
        }
    }
}

/// Whether the keys of `entries` increase strictly.
fn sorted_strictly<V>(entries: &[(Key, V)]) -> bool {
    entries.windows(2).all(|w| match w {
        [a, b] => cmp_key(&a.0, b.0.as_bytes()) == Ordering::Less,
        _ => true,
    })
}

/// `n` items cut into the fewest chunks of at most `cap`, sizes as even as possible (so
/// every chunk holds at least `cap / 2` when there are two or more).
fn even_chunks(n: usize, cap: usize) -> impl Iterator<Item = usize> {
    let count = n.div_ceil(cap.max(1)).max(1);
    let base = n / count;
    let extra = n % count;
    (0..count).map(move |i| base + usize::from(i < extra))
}

fn insert_node<V: Clone>(node: &mut Node<V>, key: Key, val: V) -> Inserted<V> {
    match node {
        Node::Leaf(leaf) => {
            let leaf = Arc::make_mut(leaf);
            match leaf
                .entries
                .binary_search_by(|(k, _)| cmp_key(k, key.as_bytes()))
            {
                Ok(i) => match leaf.entries.get_mut(i) {
                    Some((_, slot)) => Inserted::Replaced(std::mem::replace(slot, val)),
                    None => Inserted::Added,
                },
                Err(i) => {
                    if leaf.entries.len() < LEAF_CAP {
                        leaf.entries.insert(i, (key, val));
                        return Inserted::Added;
                    }
                    // split first (left keeps the lower half of the LEAF_CAP + 1 entries)
                    let mid = LEAF_CAP.div_ceil(2);
                    let cut = if i < mid { mid - 1 } else { mid };
                    let mut right = Vec::with_capacity(LEAF_CAP);
                    right.extend(leaf.entries.drain(cut..));
                    if i < mid {
                        leaf.entries.insert(i, (key, val));
                    } else {
                        right.insert(i - cut, (key, val));
                    }
                    let sep = right.first().map(|(k, _)| k.clone()).unwrap_or_default();
                    Inserted::Split(sep, Node::Leaf(Arc::new(Leaf { entries: right })))
                }
            }
        }
        Node::Branch(branch) => {
            let branch = Arc::make_mut(branch);
            let i = child_index(branch, key.as_bytes());
            let Some(kid) = branch.kids.get_mut(i) else {
                return Inserted::Added;
            };
            match insert_node(kid, key, val) {
                Inserted::Split(sep, right) => {
                    branch.seps.insert(i, sep);
                    branch.kids.insert(i + 1, right);
                    if branch.kids.len() <= BRANCH_CAP {
                        return Inserted::Added;
                    }
                    let mid = branch.kids.len() / 2;
                    let mut right_kids = Vec::with_capacity(BRANCH_CAP + 1);
                    right_kids.extend(branch.kids.drain(mid..));
                    let mut right_seps = Vec::with_capacity(BRANCH_CAP);
                    right_seps.extend(branch.seps.drain(mid..));
                    // seps[mid - 1] moves up as the separator of the two halves
                    let up = branch.seps.pop().unwrap_or_default();
                    let right = Branch {
                        seps: right_seps,
                        kids: right_kids,
                    };
                    Inserted::Split(up, Node::Branch(Arc::new(right)))
                }
                other => other,
            }
        }
    }
}

fn remove_node<V: Clone>(node: &mut Node<V>, key: &[u8]) -> Option<V> {
    match node {
        Node::Leaf(leaf) => {
            let i = leaf
                .entries
                .binary_search_by(|(k, _)| cmp_key(k, key))
                .ok()?;
            let leaf = Arc::make_mut(leaf);
            Some(leaf.entries.remove(i).1)
        }
        Node::Branch(branch) => {
            let branch = Arc::make_mut(branch);
            let i = child_index(branch, key);
            let kid = branch.kids.get_mut(i)?;
            let removed = remove_node(kid, key)?;
            let min = match kid {
                Node::Leaf(_) => LEAF_MIN,
                Node::Branch(_) => BRANCH_MIN,
            };
            if kid.width() < min {
                rebalance(branch, i);
            }
            Some(removed)
        }
    }
}

/// Restore the minimum width of `parent.kids[i]` by borrowing from or merging with a
/// sibling.
fn rebalance<V: Clone>(parent: &mut Branch<V>, i: usize) {
    let (li, ri) = if i + 1 < parent.kids.len() {
        (i, i + 1)
    } else if i > 0 {
        (i - 1, i)
    } else {
        return;
    };
    let (Some(sep), [Some(left), Some(right)]) = (parent.seps.get(li).cloned(), {
        let (a, b) = parent.kids.split_at_mut(ri);
        [a.get_mut(li), b.first_mut()]
    }) else {
        return;
    };
    let mut merged = false;
    match (left, right) {
        (Node::Leaf(l), Node::Leaf(r)) => {
            let (l, r) = (Arc::make_mut(l), Arc::make_mut(r));
            if l.entries.len() + r.entries.len() <= LEAF_CAP {
                l.entries.append(&mut r.entries);
                merged = true;
            } else if l.entries.len() < r.entries.len() {
                // move the first of the right into the left
                l.entries.push(r.entries.remove(0));
                if let (Some(s), Some((first, _))) = (parent.seps.get_mut(li), r.entries.first()) {
                    *s = first.clone();
                }
            } else if let Some((k, v)) = l.entries.pop() {
                r.entries.insert(0, (k.clone(), v));
                if let Some(s) = parent.seps.get_mut(li) {
                    *s = k;
                }
            }
        }
        (Node::Branch(l), Node::Branch(r)) => {
            let (l, r) = (Arc::make_mut(l), Arc::make_mut(r));
            if l.kids.len() + r.kids.len() <= BRANCH_CAP {
                l.seps.push(sep);
                l.seps.append(&mut r.seps);
                l.kids.append(&mut r.kids);
                merged = true;
            } else if l.kids.len() < r.kids.len() {
                // rotate left: the separator comes down, the right's first separator goes up
                let kid = r.kids.remove(0);
                let up = r.seps.remove(0);
                l.seps.push(sep);
                l.kids.push(kid);
                if let Some(s) = parent.seps.get_mut(li) {
                    *s = up;
                }
            } else if let (Some(kid), Some(up)) = (l.kids.pop(), l.seps.pop()) {
                r.seps.insert(0, sep);
                r.kids.insert(0, kid);
                if let Some(s) = parent.seps.get_mut(li) {
                    *s = up;
                }
            }
        }
        // siblings always sit at the same depth
        _ => {}
    }
    if merged {
        parent.seps.remove(li);
        parent.kids.remove(ri);
    }
}

/// Borrowing in-order iterator over `(key, value)`.
pub struct Iter<'a, V> {
    stack: Vec<(&'a Branch<V>, usize)>,
    leaf: Option<(&'a Leaf<V>, usize)>,
    remaining: usize,
}

impl<'a, V> Iter<'a, V> {
    fn descend(&mut self, mut node: &'a Node<V>) {
        loop {
            match node {
                Node::Leaf(l) => {
                    self.leaf = Some((l, 0));
                    return;
                }
                Node::Branch(b) => {
                    self.stack.push((b, 1));
                    match b.kids.first() {
                        Some(kid) => node = kid,
                        None => return,
                    }
                }
            }
        }
    }
}

impl<'a, V> Iterator for Iter<'a, V> {
    type Item = (&'a Key, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((leaf, i)) = self.leaf.as_mut() {
                if let Some((k, v)) = leaf.entries.get(*i) {
                    *i += 1;
                    self.remaining = self.remaining.saturating_sub(1);
                    return Some((k, v));
                }
                self.leaf = None;
            }
            let (branch, i) = self.stack.last_mut()?;
            let branch: &'a Branch<V> = branch;
            match branch.kids.get(*i) {
                Some(kid) => {
                    *i += 1;
                    self.descend(kid);
                }
                None => {
                    self.stack.pop();
                }
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl<V> ExactSizeIterator for Iter<'_, V> {}

/// In-order iterator holding its own references to the nodes; yields clones.
pub struct OwnedIter<V> {
    stack: Vec<(Node<V>, usize)>,
    remaining: usize,
}

impl<V: Clone> Iterator for OwnedIter<V> {
    type Item = (Key, V);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (node, i) = self.stack.last_mut()?;
            match node {
                Node::Leaf(l) => {
                    if let Some((k, v)) = l.entries.get(*i) {
                        *i += 1;
                        self.remaining = self.remaining.saturating_sub(1);
                        return Some((k.clone(), v.clone()));
                    }
                    self.stack.pop();
                }
                Node::Branch(b) => match b.kids.get(*i) {
                    Some(kid) => {
                        let kid = kid.clone();
                        *i += 1;
                        self.stack.push((kid, 0));
                    }
                    None => {
                        self.stack.pop();
                    }
                },
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn key(i: u64) -> Key {
        Key::new(format!("k{:06}", i))
    }

    /// A tiny deterministic PRNG (xorshift) for repeatable random operation sequences.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_ops_match_btreemap_and_keep_invariants() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut model: BTreeMap<Key, u64> = BTreeMap::new();
        let mut map: PMap<u64> = PMap::new();
        let mut snapshots = Vec::new();
        for step in 0..20_000u64 {
            let k = key(rng.next() % 3000);
            if rng.next().is_multiple_of(3) {
                assert_eq!(map.remove_mut(&k), model.remove(&k));
            } else {
                assert_eq!(map.insert_mut(k.clone(), step), model.insert(k, step));
            }
            if step % 997 == 0 {
                map.check_invariants();
                snapshots.push((map.clone(), model.clone()));
            }
        }
        map.check_invariants();
        assert!(map.iter().map(|(k, v)| (k.clone(), *v)).eq(model.clone()));
        // older versions are untouched by later updates (persistence)
        for (snap, snap_model) in snapshots {
            snap.check_invariants();
            assert!(snap
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .eq(snap_model.clone()));
            assert!(snap.owned_iter().eq(snap_model));
        }
    }

    #[test]
    fn remove_everything_collapses_to_empty() {
        let mut map = PMap::from_sorted((0..5000).map(|i| (key(i), i)).collect());
        map.check_invariants();
        for i in (0..5000).rev().step_by(2).chain((0..5000).step_by(2)) {
            assert_eq!(map.remove_mut(&key(i)), Some(i));
            map.check_invariants();
        }
        assert!(map.is_empty());
        assert!(map.root.is_none());
    }

    #[test]
    fn byte_comparison_matches_slice_order() {
        let samples: [&[u8]; 12] = [
            b"",
            b"a",
            b"ab",
            b"abcdefgh",
            b"abcdefghi",
            b"abcdefgg",
            b"abcdefgh\xff",
            b"\xff",
            b"key-0000500",
            b"key-0000501",
            b"key-00005",
            b"key-0000500/x",
        ];
        for a in samples {
            for b in samples {
                assert_eq!(cmp_bytes(a, b), a.cmp(b), "{a:?} vs {b:?}");
            }
        }
    }

    #[test]
    fn persistent_insert_leaves_original() {
        let a = PMap::from_sorted((0..1000).map(|i| (key(i), i)).collect());
        let b = a
            .insert(key(5), 99)
            .insert(Key::new("zzz"), 1)
            .remove(&key(7));
        assert_eq!(a.get(&key(5)), Some(&5));
        assert_eq!(a.get("zzz"), None);
        assert_eq!(a.get(&key(7)), Some(&7));
        assert_eq!(b.get(&key(5)), Some(&99));
        assert_eq!(b.len(), 1000);
        assert_eq!(a.len(), 1000);
    }

    #[test]
    fn from_sorted_sizes_are_valid() {
        for n in [0usize, 1, 2, 15, 16, 17, 31, 33, 256, 257, 4097, 70_000] {
            let map = PMap::from_sorted((0..n as u64).map(|i| (key(i), i)).collect());
            assert_eq!(map.check_invariants(), n);
        }
    }

    #[test]
    fn sorting_entries_is_stable_byte_order() {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        // short alphabets and lengths around the 8-byte prefix: many shared prefixes,
        // NUL bytes (equal to the padding) and equal keys
        let alphabet: [&str; 6] = ["a", "b", "\0", "é", "/", "A"];
        for n in [0usize, 1, 2, 3, 7, 15, 16, 33, 200] {
            let entries: Vec<(Key, usize)> = (0..n)
                .map(|i| {
                    let len = (rng.next() % 11) as usize;
                    let text: String = (0..len)
                        .map(|_| alphabet[(rng.next() % 6) as usize])
                        .collect();
                    (Key::new(text), i)
                })
                .collect();
            let mut expected = entries.clone();
            expected.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            let mut got = entries;
            sort_entries(&mut got);
            assert_eq!(got, expected, "n = {n}");
        }
    }

    #[test]
    fn from_distinct_and_from_unsorted_agree() {
        let mut rng = Rng(0x1234_5678_9abc_def1);
        for n in [0u64, 1, 5, 31, 32, 33, 100, 1000] {
            let mut picked: Vec<u64> = (0..n).map(|i| i * 7919 % 100_003).collect();
            for i in (1..picked.len()).rev() {
                picked.swap(i, (rng.next() % (i as u64 + 1)) as usize);
            }
            let entries: Vec<(Key, u64)> = picked.iter().map(|&i| (key(i), i)).collect();
            let a = PMap::from_distinct(entries.clone());
            let b = PMap::from_unsorted(entries);
            assert_eq!(a.check_invariants(), n as usize);
            assert!(a.iter().eq(b.iter()));
        }
        // later wins, also after sorting moved things around
        let map = PMap::from_unsorted(vec![
            (Key::new("k10"), 1),
            (Key::new("k2"), 2),
            (Key::new("k10"), 3),
            (Key::new("k1"), 4),
            (Key::new("k2"), 5),
        ]);
        map.check_invariants();
        assert_eq!(
            map.iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [("k1", 4), ("k10", 3), ("k2", 5)]
        );
    }

    #[test]
    fn full_leaf_splits_at_every_position() {
        for pos in 0..=LEAF_CAP as u64 {
            // even keys 0, 2, …: a full leaf; the new odd key lands at `pos`
            let full = PMap::from_sorted((0..LEAF_CAP as u64).map(|i| (key(2 * i), i)).collect());
            let mut map = full.clone();
            let new = if pos == 0 {
                Key::new("k")
            } else {
                key(2 * pos - 1)
            };
            assert_eq!(map.insert_mut(new.clone(), 99), None);
            assert_eq!(map.check_invariants(), LEAF_CAP + 1);
            assert_eq!(map.get(&new), Some(&99));
            assert_eq!(full.check_invariants(), LEAF_CAP);
            assert_eq!(full.get(&new), None);
        }
    }

    #[test]
    fn batch_on_a_clone_leaves_the_original() {
        let original = PMap::from_sorted((0..20u64).map(|i| (key(i), i)).collect());
        let mut draft = original.clone();
        for i in 0..20u64 {
            draft.insert_mut(key(i), i + 100);
            draft.insert_mut(key(1000 + i), i);
            draft.check_invariants();
        }
        draft.remove_mut(&key(3));
        assert_eq!(draft.check_invariants(), 39);
        assert_eq!(draft.get(&key(5)), Some(&105));
        // the original shares nothing that was edited
        assert_eq!(original.check_invariants(), 20);
        assert!(original
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .eq((0..20u64).map(|i| (key(i), i))));
    }

    #[test]
    fn from_unsorted_later_wins() {
        let map = PMap::from_unsorted(vec![
            (Key::new("b"), 1),
            (Key::new("a"), 2),
            (Key::new("b"), 3),
        ]);
        assert_eq!(
            map.iter()
                .map(|(k, v)| (k.as_str(), *v))
                .collect::<Vec<_>>(),
            [("a", 2), ("b", 3)]
        );
    }

    #[test]
    fn lower_bound_and_case_insensitive_lookup() {
        let keys = ["Abc", "aBd", "abc", "b", "ü", "ABC"];
        let map = PMap::from_unsorted(keys.iter().map(|k| (Key::new(k), *k)).collect());
        assert_eq!(
            map.lower_bound(b"abc").map(|(k, _)| k.as_str()),
            Some("abc")
        );
        assert_eq!(map.lower_bound(b"abca").map(|(k, _)| k.as_str()), Some("b"));
        assert_eq!(map.lower_bound(b"\xff"), None);
        // first in sorted order among the case variants
        assert_eq!(
            map.get_ascii_ci("abc").map(|(k, _)| k.as_str()),
            Some("ABC")
        );
        assert_eq!(
            map.get_ascii_ci("ABD").map(|(k, _)| k.as_str()),
            Some("aBd")
        );
        assert_eq!(map.get_ascii_ci("Ü"), None);
        assert_eq!(map.get_ascii_ci("ü").map(|(k, _)| k.as_str()), Some("ü"));
        assert_eq!(map.get_ascii_ci("zz"), None);
        assert_eq!(map.get_ascii_ci("ab"), None);
    }

    #[test]
    fn case_insensitive_lookup_matches_a_scan() {
        // keys from a tiny alphabet of letters in both cases and bytes around them, in
        // maps of one leaf and of many: the first variant in key order, as a scan finds
        let alphabet: [&str; 9] = ["a", "A", "b", "B", "-", "_", "z", "é", "0"];
        let mut rng = Rng(0x5851_f42d_4c95_7f2d);
        let text = |rng: &mut Rng, max: u64| -> String {
            let len = (rng.next() % max) as usize;
            (0..len)
                .map(|_| alphabet[(rng.next() % 9) as usize])
                .collect()
        };
        for n in [1usize, 5, 32, 33, 200, 3000] {
            let map =
                PMap::from_unsorted((0..n).map(|i| (Key::new(text(&mut rng, 6)), i)).collect());
            for _ in 0..400 {
                let probe = text(&mut rng, 6);
                let expected = map.iter().find(|(k, _)| {
                    k.len() == probe.len() && k.as_bytes().eq_ignore_ascii_case(probe.as_bytes())
                });
                assert_eq!(map.get_ascii_ci(&probe), expected, "n = {n}, {probe:?}");
            }
        }
    }

    #[test]
    fn next_variant_is_the_smallest_above() {
        let target = b"aB-c";
        let variants: Vec<Vec<u8>> = (0..8u8)
            .map(|m| {
                target
                    .iter()
                    .enumerate()
                    .map(|(i, &t)| {
                        let bit = match i {
                            0 => m & 1,
                            1 => m & 2,
                            3 => m & 4,
                            _ => 0,
                        };
                        if bit == 0 {
                            t.to_ascii_uppercase()
                        } else {
                            t.to_ascii_lowercase()
                        }
                    })
                    .collect()
            })
            .collect();
        let samples: [&[u8]; 14] = [
            b"", b"A", b"AB", b"AB-", b"AB-C0", b"Ab", b"Ab.", b"a", b"aB,", b"ab-c\0", b"ab-d",
            b"b", b"AC", b"\x00",
        ];
        for k in samples {
            let expected = variants.iter().filter(|v| v.as_slice() > k).min();
            let mut out = Vec::new();
            let found = next_variant(target, k, &mut out);
            assert_eq!(found.then_some(&out), expected, "{k:?}");
        }
    }

    #[test]
    fn case_insensitive_lookup_in_a_big_map() {
        let map = PMap::from_sorted((0..100_000).map(|i| (key(i), i)).collect());
        assert_eq!(map.get_ascii_ci("K000123").map(|(_, v)| *v), Some(123));
        assert_eq!(map.get_ascii_ci("K00012"), None);
    }
}
