//! `Entries`: a batch of log entries shared, not copied, between the log, the persist
//! request, every append and the apply.
//!
//! A leader builds each batch once; the same allocation then travels to its `Persist`, to
//! the `Append` of every follower (in process, a follower stores the very same batch) and
//! to the `Apply`. Handing it on costs one reference-count increment per batch instead of
//! one payload clone per entry and copy.

use crate::log::Entry;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::{Bound, Deref, RangeBounds};
use std::sync::Arc;

/// A cheaply cloneable, immutable run of log entries: a window onto a shared allocation.
///
/// Guarantees: it dereferences to `[Entry]`, so it reads like a slice; `clone` and
/// [`Entries::slice`] copy no entry (one reference-count increment, or none when empty);
/// the entries never change once built. It compares, prints (`Debug`) and serializes
/// exactly as the equivalent `Vec<Entry>`, so the wire format of `MessageBody::Append` is
/// that of a `Vec<Entry>`.
#[derive(Clone, Default)]
pub struct Entries {
    /// `None` for an empty batch, so that empty appends and persists allocate nothing.
    /// One allocation holds the count and the entries (an `Arc<Vec>` would take two).
    buf: Option<Arc<[Entry]>>,
    /// The window, as `u32`s so that an `Entries` is no larger than the `Vec` it replaced.
    start: u32,
    end: u32,
}

impl Entries {
    /// An empty batch (allocates nothing).
    pub const fn new() -> Self {
        Entries { buf: None, start: 0, end: 0 }
    }

    /// The entries `range` (positions within this batch, as for slice indexing) as a new
    /// batch sharing this one's allocation. Panics if the range is out of bounds, like
    /// slice indexing.
    pub fn slice(&self, range: impl RangeBounds<usize>) -> Entries {
        let len = (self.end - self.start) as usize;
        let lo = match range.start_bound() {
            Bound::Included(&i) => i,
            Bound::Excluded(&i) => i + 1,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&i) => i + 1,
            Bound::Excluded(&i) => i,
            Bound::Unbounded => len,
        };
        self.window(lo, hi)
    }

    /// Entries `lo..hi` of this batch (positions within it) as a new batch sharing its
    /// allocation; the non-generic core of [`Entries::slice`].
    pub(crate) fn window(&self, lo: usize, hi: usize) -> Entries {
        let len = (self.end - self.start) as usize;
        assert!(lo <= hi && hi <= len, "slice {lo}..{hi} out of a batch of {len} entries");
        if lo == hi {
            return Entries::new();
        }
        Entries { buf: self.buf.clone(), start: self.start + lo as u32, end: self.start + hi as u32 }
    }

    /// Shortens the window to its first `len` entries (nothing happens if it holds no
    /// more), like `Vec::truncate`; no reference count changes unless it becomes empty.
    pub fn truncate(&mut self, len: usize) {
        if len < self.len() {
            self.end = self.start + len as u32;
            if len == 0 {
                *self = Entries::new();
            }
        }
    }

    /// Drops the first `n` entries from the window, like `Bytes::advance`; no reference
    /// count changes unless it becomes empty. Panics if the window holds fewer than `n`.
    pub fn advance(&mut self, n: usize) {
        assert!(n <= self.len(), "advancing {n} entries past the end of a batch of {}", self.len());
        self.start += n as u32;
        if self.start == self.end {
            *self = Entries::new();
        }
    }

    /// The entries as an owned vector (a clone of each: the allocation is shared).
    pub fn into_vec(self) -> Vec<Entry> {
        self.to_vec()
    }

    /// A batch of one entry (one allocation, the entry moved in).
    pub(crate) fn from_one(entry: Entry) -> Self {
        Entries::from_arc(Arc::from([entry]))
    }

    /// The whole of `buf` as a batch.
    fn from_arc(buf: Arc<[Entry]>) -> Self {
        if buf.is_empty() {
            return Entries::new();
        }
        let end = u32::try_from(buf.len()).expect("a batch holds fewer than 2^32 entries");
        Entries { buf: Some(buf), start: 0, end }
    }

    /// True if both batches are windows onto the same allocation (so neither was copied
    /// from the other). Two empty batches share nothing.
    pub fn shares_allocation_with(&self, other: &Entries) -> bool {
        match (&self.buf, &other.buf) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// Extends this batch by `next` if `next` is the window that directly follows it in the
    /// same allocation; returns whether it did. Lets a log keep consecutive pieces of one
    /// batch (several appends cut from one leader batch) as one window.
    pub(crate) fn try_join(&mut self, next: &Entries) -> bool {
        if self.shares_allocation_with(next) && self.end == next.start {
            self.end = next.end;
            true
        } else {
            false
        }
    }
}

impl Deref for Entries {
    type Target = [Entry];

    #[inline]
    fn deref(&self) -> &[Entry] {
        match &self.buf {
            Some(buf) => &buf[self.start as usize..self.end as usize],
            None => &[],
        }
    }
}

impl From<Vec<Entry>> for Entries {
    /// Moves the entries into one new shared allocation (a move, not a clone: no payload
    /// reference count changes). An empty vector allocates nothing.
    fn from(v: Vec<Entry>) -> Self {
        if v.is_empty() {
            return Entries::new();
        }
        Entries::from_arc(Arc::from(v))
    }
}

impl From<&[Entry]> for Entries {
    /// Clones the entries into a new allocation.
    fn from(s: &[Entry]) -> Self {
        Entries::from(s.to_vec())
    }
}

impl From<Entries> for Vec<Entry> {
    /// See [`Entries::into_vec`].
    fn from(e: Entries) -> Self {
        e.into_vec()
    }
}

impl FromIterator<Entry> for Entries {
    /// One allocation of exactly the entries' number when the iterator knows it (as
    /// `Vec::drain` does), else the entries are collected first.
    fn from_iter<I: IntoIterator<Item = Entry>>(iter: I) -> Self {
        Entries::from_arc(iter.into_iter().collect())
    }
}

impl<'a> IntoIterator for &'a Entries {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for Entries {
    type Item = Entry;
    type IntoIter = std::vec::IntoIter<Entry>;

    /// Owned entries, cloned as [`Entries::into_vec`] does; iterate `&entries` to avoid that.
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl fmt::Debug for Entries {
    /// The same text as the equivalent `Vec<Entry>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

impl PartialEq for Entries {
    fn eq(&self, other: &Entries) -> bool {
        **self == **other
    }
}

impl Eq for Entries {}

impl PartialEq<[Entry]> for Entries {
    fn eq(&self, other: &[Entry]) -> bool {
        **self == *other
    }
}

impl PartialEq<&[Entry]> for Entries {
    fn eq(&self, other: &&[Entry]) -> bool {
        **self == **other
    }
}

impl PartialEq<Vec<Entry>> for Entries {
    fn eq(&self, other: &Vec<Entry>) -> bool {
        **self == other[..]
    }
}

impl PartialEq<Entries> for Vec<Entry> {
    fn eq(&self, other: &Entries) -> bool {
        self[..] == **other
    }
}

impl Serialize for Entries {
    /// A sequence of entries, exactly as `Vec<Entry>` serializes.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Entries {
    /// Reads what `Vec<Entry>` would, into one new allocation.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Entry>::deserialize(deserializer).map(Entries::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Payload;
    use bytes::Bytes;

    fn entries(lo: u64, hi: u64) -> Vec<Entry> {
        (lo..=hi)
            .map(|index| Entry { term: 1, index, payload: Payload::Command(Bytes::from(vec![index as u8])) })
            .collect()
    }

    #[test]
    fn slices_share_the_allocation_and_see_the_right_window() {
        let all = Entries::from(entries(1, 10));
        let mid = all.slice(2..5);
        assert_eq!(mid, entries(3, 5));
        assert!(mid.shares_allocation_with(&all));
        let inner = mid.slice(1..);
        assert_eq!(inner, entries(4, 5));
        assert!(inner.shares_allocation_with(&all));
        assert_eq!(all.slice(..=0), entries(1, 1));
        assert!(all.slice(3..3).is_empty());
        assert!(!all.slice(3..3).shares_allocation_with(&all), "an empty batch holds nothing");
    }

    #[test]
    fn truncate_and_advance_narrow_the_window_in_place() {
        let all = Entries::from(entries(1, 6));
        let mut w = all.clone();
        w.advance(1);
        w.truncate(3);
        assert_eq!(w, entries(2, 4));
        assert!(w.shares_allocation_with(&all));
        w.truncate(9);
        assert_eq!(w.len(), 3, "truncating to more than the length changes nothing");
        w.advance(3);
        assert!(w.is_empty() && !w.shares_allocation_with(&all), "an emptied window lets go");
        let mut v = all.clone();
        v.truncate(0);
        assert!(v.is_empty() && !v.shares_allocation_with(&all));
    }

    #[test]
    #[should_panic(expected = "past the end")]
    fn advancing_past_the_end_panics() {
        Entries::from(entries(1, 2)).advance(3);
    }

    #[test]
    #[should_panic(expected = "out of a batch")]
    fn slicing_past_the_end_panics() {
        let _ = Entries::from(entries(1, 3)).slice(2..4);
    }

    #[test]
    fn into_vec_and_owned_iteration_give_the_window() {
        let all = Entries::from(entries(1, 6));
        let window = all.slice(1..4);
        assert_eq!(window.clone().into_vec(), entries(2, 4));
        assert_eq!(window.into_iter().map(|e| e.index).collect::<Vec<_>>(), [2, 3, 4]);
        assert!(Entries::new().into_vec().is_empty());
        let mut tail = entries(1, 3);
        let sealed: Entries = tail.drain(..).collect();
        assert_eq!((sealed.len(), tail.len()), (3, 0));
        assert!(tail.capacity() >= 3, "the drained vector keeps its capacity");
    }

    #[test]
    fn joins_only_the_directly_following_window_of_the_same_allocation() {
        let all = Entries::from(entries(1, 9));
        let mut a = all.slice(0..3);
        assert!(!a.try_join(&all.slice(4..6)), "a gap");
        assert!(!a.try_join(&Entries::from(entries(4, 6))), "another allocation");
        assert!(a.try_join(&all.slice(3..6)));
        assert_eq!(a, entries(1, 6));
    }

    #[test]
    fn serializes_debugs_and_compares_as_a_vec() {
        let v = entries(5, 7);
        let e = Entries::from(v.clone()).slice(..);
        assert_eq!(postcard::to_allocvec(&e).unwrap(), postcard::to_allocvec(&v).unwrap());
        assert_eq!(
            postcard::to_allocvec(&Entries::new()).unwrap(),
            postcard::to_allocvec(&Vec::<Entry>::new()).unwrap()
        );
        let back: Entries = postcard::from_bytes(&postcard::to_allocvec(&v).unwrap()).unwrap();
        assert_eq!(back, v);
        assert_eq!(format!("{e:?}"), format!("{v:?}"));
        assert_eq!(format!("{:?}", Entries::new()), "[]");
    }
}
