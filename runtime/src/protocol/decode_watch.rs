//! Which call's response message failed to decode, told by the decoder to the call's
//! response body on the same thread. tonic's `Streaming` polls the body for a frame and
//! decodes what it completed in the same poll, on the same stack: a body yielding data
//! marks itself as the one being decoded, any other outcome of its poll unmarks it, and
//! a decoder that fails records the marked body. A decoder running for anything else (a
//! server's, a client's outside ephemos's channel) finds no body marked and records
//! nothing, so a failure is never put on a call it did not happen to.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

thread_local! {
    /// The body whose data was just handed to tonic on this thread (0: none).
    static DECODING: Cell<u64> = const { Cell::new(0) };
    /// The body whose message failed to decode on this thread (0: none).
    static FAILED: Cell<u64> = const { Cell::new(0) };
}

/// A new body's number (never 0).
pub(crate) fn next_body() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Body `id` hands tonic data now (`true`), or anything else (`false`).
pub(crate) fn yielding(id: u64, data: bool) {
    DECODING.with(|d| d.set(if data { id } else { 0 }));
}

/// A decoder finished: it decoded a message (`true`) or failed.
pub(crate) fn decoded(ok: bool) {
    let body = DECODING.with(|d| d.replace(0));
    if !ok && body != 0 {
        FAILED.with(|f| f.set(body));
    }
}

/// Whether body `id`'s message failed to decode (asked once, when it is dropped).
pub(crate) fn failed(id: u64) -> bool {
    FAILED.with(|f| {
        let failed = f.get() == id;
        if failed {
            f.set(0);
        }
        failed
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_put_on_the_body_being_decoded_and_only_on_it() {
        let (a, b) = (next_body(), next_body());
        yielding(a, true);
        decoded(false);
        assert!(!failed(b));
        assert!(failed(a));
        assert!(!failed(a), "asked once");
        // A decoder with no body marked (a server's, or after a Pending) records nothing.
        yielding(a, true);
        yielding(a, false);
        decoded(false);
        assert!(!failed(a));
        // A message decoded: the mark is gone, a later failure elsewhere is not a's.
        yielding(a, true);
        decoded(true);
        decoded(false);
        assert!(!failed(a));
    }
}
