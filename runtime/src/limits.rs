//! Per-session limits on what a peer may send.

/// Limits on incoming messages. The defaults are capnweb's (`DEFAULT_LIMITS`).
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
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 32 * 1024 * 1024,
            max_depth: 256,
            max_bigint_digits: 16384,
        }
    }
}
