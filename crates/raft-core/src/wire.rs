//! Zero-copy decoding of command payloads: while `Message::decode_bytes` runs, a payload
//! that postcard hands out as a slice of the received buffer becomes a `Bytes` sharing
//! that buffer instead of a copy.
//!
//! The buffer is kept in a thread-local for the duration of one decode only, because
//! serde's `Deserialize` has no way to pass it down; outside such a decode (or for any
//! other deserializer) payloads are copied as usual.

use bytes::Bytes;
use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use std::cell::RefCell;
use std::fmt;

thread_local! {
    static BASE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Runs `decode` with `base` as the buffer payload slices may point into.
pub(crate) fn with_base<T>(base: &Bytes, decode: impl FnOnce() -> T) -> T {
    struct Reset(Option<Bytes>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            BASE.with(|b| *b.borrow_mut() = previous);
        }
    }
    let previous = BASE.with(|b| b.borrow_mut().replace(base.clone()));
    let _reset = Reset(previous);
    decode()
}

/// `deserialize_with` for command payloads: shares the decode buffer when possible.
pub(crate) fn payload_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    d.deserialize_bytes(PayloadVisitor)
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = Bytes;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_borrowed_bytes<E: Error>(self, v: &'de [u8]) -> Result<Bytes, E> {
        let shared = BASE.with(|b| {
            let b = b.borrow();
            let base = b.as_ref()?;
            let start = base.as_ptr() as usize;
            let at = v.as_ptr() as usize;
            // Only a slice lying inside the buffer can share it.
            (at >= start && at + v.len() <= start + base.len()).then(|| base.slice_ref(v))
        });
        Ok(shared.unwrap_or_else(|| Bytes::copy_from_slice(v)))
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Bytes, E> {
        Ok(Bytes::copy_from_slice(v))
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
        Ok(Bytes::from(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(b) = seq.next_element::<u8>()? {
            out.push(b);
        }
        Ok(Bytes::from(out))
    }
}
