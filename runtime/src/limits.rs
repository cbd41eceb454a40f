//! Per-session limits on what a peer may send.

/// Limits on what a peer may send. The message limits' defaults are capnweb's
/// (`DEFAULT_LIMITS`); the stream limits are capwire's (capnweb has none).
///
/// ```
/// let limits = capwire::Limits { max_message_size: 1 << 20, ..Default::default() };
/// assert_eq!(limits.max_depth, 256);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest message accepted, in bytes of JSON text (default 32 MiB).
    pub max_message_size: usize,
    /// Deepest expression nesting accepted (default 256).
    pub max_depth: usize,
    /// Most digits accepted in a `bigint` (default 16384).
    pub max_bigint_digits: usize,
    /// Most bytes a peer may have written into this session's streams that no reader has
    /// taken yet (default 128 MiB). A peer that keeps to flow control stays below it (its
    /// window: 2 to 64 MiB per stream for capwire; capnweb's adapts up to 1 GiB, which
    /// only a link of huge bandwidth × delay reaches); one that does not is cut off with an
    /// `abort` naming the limit. Keep it well above the peers' windows.
    pub max_stream_buffer: usize,
    /// Largest `Blob` received, which arrives whole (default 128 MiB). A bigger one fails
    /// the call that carries it.
    pub max_blob_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 * 1024 * 1024,
            max_depth: 256,
            max_bigint_digits: 16384,
            max_stream_buffer: 128 * 1024 * 1024,
            max_blob_size: 128 * 1024 * 1024,
        }
    }
}
