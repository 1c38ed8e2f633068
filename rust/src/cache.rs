//! `ResultCache`: a bounded, thread-safe LRU from hash paths to results, with hit/miss
//! counters. Twin of `python/hbeam/_pure/cache.py`.
//!
//! [`Lru`] is the pure-Rust core (O(1) per operation: a hash map into a slab-backed doubly
//! linked list); the Python class wraps it in a mutex. Evicted values are handed back to
//! the caller, so the Python side drops them after releasing the lock (dropping a Python
//! object can run arbitrary code, which must never happen under the lock).

use std::collections::HashMap;

const NIL: usize = usize::MAX;

struct Entry<V> {
    key: Box<str>,
    value: V,
    prev: usize,
    next: usize,
}

/// A least-recently-used map of string keys.
pub struct Lru<V> {
    index: HashMap<Box<str>, usize>,
    slots: Vec<Option<Entry<V>>>,
    free: Vec<usize>,
    head: usize, // most recent
    tail: usize, // least recent
    capacity: usize,
}

impl<V> Lru<V> {
    /// An empty cache holding at most `capacity` entries (at least 1).
    pub fn new(capacity: usize) -> Self {
        Lru {
            index: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            capacity: capacity.max(1),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Whether `key` is cached (does not touch recency).
    pub fn contains(&self, key: &str) -> bool {
        self.index.contains_key(key)
    }

    fn entry(&self, slot: usize) -> Option<&Entry<V>> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    fn entry_mut(&mut self, slot: usize) -> Option<&mut Entry<V>> {
        self.slots.get_mut(slot).and_then(Option::as_mut)
    }

    fn unlink(&mut self, slot: usize) {
        let Some((prev, next)) = self.entry(slot).map(|e| (e.prev, e.next)) else {
            return;
        };
        match self.entry_mut(prev) {
            Some(p) => p.next = next,
            None => self.head = next,
        }
        match self.entry_mut(next) {
            Some(n) => n.prev = prev,
            None => self.tail = prev,
        }
    }

    fn push_front(&mut self, slot: usize) {
        let old_head = self.head;
        if let Some(e) = self.entry_mut(slot) {
            e.prev = NIL;
            e.next = old_head;
        }
        if let Some(h) = self.entry_mut(old_head) {
            h.prev = slot;
        }
        self.head = slot;
        if self.tail == NIL {
            self.tail = slot;
        }
    }

    /// The value of `key`, made most recent.
    pub fn get(&mut self, key: &str) -> Option<&V> {
        let slot = *self.index.get(key)?;
        if self.head != slot {
            self.unlink(slot);
            self.push_front(slot);
        }
        self.entry(slot).map(|e| &e.value)
    }

    /// Store `value` under `key` as most recent; returns the replaced and evicted values.
    pub fn put(&mut self, key: &str, value: V) -> Vec<V> {
        let mut dropped = Vec::new();
        if let Some(&slot) = self.index.get(key) {
            if let Some(e) = self.entry_mut(slot) {
                dropped.push(std::mem::replace(&mut e.value, value));
            }
            if self.head != slot {
                self.unlink(slot);
                self.push_front(slot);
            }
            return dropped;
        }
        let entry = Entry {
            key: key.into(),
            value,
            prev: NIL,
            next: NIL,
        };
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(s) = self.slots.get_mut(slot) {
                    *s = Some(entry);
                }
                slot
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.index.insert(key.into(), slot);
        self.push_front(slot);
        while self.index.len() > self.capacity {
            let victim = self.tail;
            self.unlink(victim);
            match self.slots.get_mut(victim).and_then(Option::take) {
                Some(e) => {
                    self.index.remove(&e.key);
                    self.free.push(victim);
                    dropped.push(e.value);
                }
                None => break,
            }
        }
        dropped
    }

    /// Remove every entry; returns the values.
    pub fn clear(&mut self) -> Vec<V> {
        self.index.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.slots.drain(..).flatten().map(|e| e.value).collect()
    }

    /// Keys from most to least recent.
    pub fn keys(&self) -> Vec<&str> {
        let mut out = Vec::with_capacity(self.len());
        let mut slot = self.head;
        while let Some(e) = self.entry(slot) {
            out.push(&*e.key);
            slot = e.next;
        }
        out
    }
}

#[cfg(feature = "python")]
pub use python::ResultCache;

#[cfg(feature = "python")]
mod python {
    use super::Lru;
    use crate::errors::CoreError;
    use parking_lot::Mutex;
    use pyo3::prelude::*;
    use pyo3::types::{PyInt, PyString};

    struct State {
        lru: Lru<Py<PyAny>>,
        hits: u64,
        misses: u64,
    }

    /// A thread-safe LRU map of `str` keys to any object, with hit/miss counters.
    #[pyclass(module = "hbeam._native", name = "ResultCache", frozen)]
    pub struct ResultCache {
        state: Mutex<State>,
        capacity: Py<PyInt>,
    }

    fn key_str(key: &Bound<'_, PyAny>) -> PyResult<String> {
        match key.cast::<PyString>() {
            Ok(s) => Ok(s.to_cow()?.into_owned()),
            Err(_) => Err(CoreError::Type(format!(
                "ResultCache keys must be str, not {}",
                crate::py::type_name(key)
            ))
            .into()),
        }
    }

    #[pymethods]
    impl ResultCache {
        #[new]
        #[pyo3(signature = (capacity = crate::py::Arg::Missing), text_signature = "(capacity=65536)")]
        fn new(py: Python<'_>, capacity: crate::py::Arg) -> PyResult<Self> {
            let capacity = match capacity {
                crate::py::Arg::Missing => PyInt::new(py, 65536).into_any(),
                crate::py::Arg::Given(c) => c.into_bound(py),
            };
            if crate::py::is_bool(&capacity) || !capacity.is_instance_of::<PyInt>() {
                return Err(CoreError::Type(format!(
                    "capacity must be an int, not {}",
                    crate::py::type_name(&capacity)
                ))
                .into());
            }
            let exact = crate::py::exact_int(&capacity)?;
            if exact.lt(1)? {
                let shown = crate::py::int_text(&exact)?;
                return Err(
                    CoreError::Value(format!("capacity must be at least 1, got {shown}")).into(),
                );
            }
            // a capacity past usize::MAX is as good as unbounded
            let limit = exact.extract::<usize>().unwrap_or(usize::MAX);
            Ok(ResultCache {
                state: Mutex::new(State {
                    lru: Lru::new(limit),
                    hits: 0,
                    misses: 0,
                }),
                capacity: exact.cast_into::<PyInt>()?.unbind(),
            })
        }

        /// The cached value of `key` (a hit, now most recent), or `default` (a miss).
        #[pyo3(signature = (key, default = None))]
        fn get(
            &self,
            py: Python<'_>,
            key: &Bound<'_, PyAny>,
            default: Option<Py<PyAny>>,
        ) -> PyResult<Py<PyAny>> {
            let key = key_str(key)?;
            let found = {
                let mut state = self.state.lock();
                let found = state.lru.get(&key).map(|v| v.clone_ref(py));
                if found.is_some() {
                    state.hits += 1;
                } else {
                    state.misses += 1;
                }
                found
            };
            Ok(found.or(default).unwrap_or_else(|| py.None()))
        }

        /// Cache `value` under `key` as the most recent entry, evicting past capacity.
        fn put(&self, key: &Bound<'_, PyAny>, value: Py<PyAny>) -> PyResult<()> {
            let key = key_str(key)?;
            let dropped = self.state.lock().lru.put(&key, value);
            drop(dropped); // outside the lock
            Ok(())
        }

        fn __contains__(&self, key: &Bound<'_, PyAny>) -> PyResult<bool> {
            let key = key_str(key)?;
            Ok(self.state.lock().lru.contains(&key))
        }

        fn __len__(&self) -> usize {
            self.state.lock().lru.len()
        }

        /// Drop every entry and zero the counters.
        fn clear(&self) {
            let dropped = {
                let mut state = self.state.lock();
                state.hits = 0;
                state.misses = 0;
                state.lru.clear()
            };
            drop(dropped);
        }

        /// How many `get` calls found their key.
        #[getter]
        fn hits(&self) -> u64 {
            self.state.lock().hits
        }

        /// How many `get` calls did not.
        #[getter]
        fn misses(&self) -> u64 {
            self.state.lock().misses
        }

        /// The most entries kept.
        #[getter]
        fn capacity(&self, py: Python<'_>) -> Py<PyInt> {
            self.capacity.clone_ref(py)
        }

        fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
            let (len, hits, misses) = {
                let state = self.state.lock();
                (state.lru.len(), state.hits, state.misses)
            };
            let capacity = crate::py::int_text(self.capacity.bind(py).as_any())?;
            Ok(format!(
                "ResultCache(capacity={capacity}, len={len}, hits={hits}, misses={misses})"
            ))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recent() {
        let mut lru = Lru::new(2);
        assert!(lru.put("a", 1).is_empty());
        assert!(lru.put("b", 2).is_empty());
        assert_eq!(lru.get("a"), Some(&1)); // a is now most recent
        assert_eq!(lru.put("c", 3), vec![2]); // b evicted
        assert!(!lru.contains("b"));
        assert_eq!(lru.keys(), ["c", "a"]);
        assert_eq!(lru.put("a", 10), vec![1]); // replaced
        assert_eq!(lru.keys(), ["a", "c"]);
        assert_eq!(lru.len(), 2);
        let mut all = lru.clear();
        all.sort();
        assert_eq!(all, vec![3, 10]);
        assert!(lru.is_empty());
        assert!(lru.put("z", 1).is_empty());
        assert_eq!(lru.keys(), ["z"]);
    }

    #[test]
    fn capacity_one_and_slot_reuse() {
        let mut lru = Lru::new(1);
        for i in 0..100 {
            let dropped = lru.put(&i.to_string(), i);
            assert_eq!(dropped.len(), usize::from(i > 0));
        }
        assert_eq!(lru.keys(), ["99"]);
        assert!(lru.slots.len() <= 2);
    }
}
