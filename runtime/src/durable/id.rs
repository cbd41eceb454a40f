//! Durable Object IDs: 64 lowercase hex digits, tied to their namespace.

use crate::RpcError;
use sha2::{Digest, Sha256};
use std::fmt;

/// The ID of one Durable Object: 32 bytes, written as 64 lowercase hex digits.
///
/// The first 24 bytes name the object (a hash of its name, or random); the last 8 are a
/// check derived from the namespace and those 24, so that an ID of another namespace, or a
/// mistyped one, is refused by [`Namespace::id_from_string`](super::Namespace::id_from_string)
/// instead of silently naming a new, empty object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DurableObjectId([u8; 32]);

impl DurableObjectId {
    /// The ID `name` has in `namespace`: the same on every host and every run.
    pub(crate) fn from_name(namespace: &str, name: &str) -> DurableObjectId {
        let digest = Sha256::new()
            .chain_update(b"capwire durable object name\0")
            .chain_update(namespace.as_bytes())
            .chain_update(b"\0")
            .chain_update(name.as_bytes())
            .finalize();
        let mut body = [0u8; 24];
        body.copy_from_slice(&digest[..24]);
        Self::sealed(namespace, body)
    }

    /// A new random ID in `namespace`.
    pub(crate) fn unique(namespace: &str) -> Result<DurableObjectId, RpcError> {
        let mut body = [0u8; 24];
        getrandom::fill(&mut body)
            .map_err(|e| RpcError::error(format!("no randomness for a new ID: {e}")))?;
        Ok(Self::sealed(namespace, body))
    }

    /// Parses `text` as an ID of `namespace`.
    pub(crate) fn parse(namespace: &str, text: &str) -> Result<DurableObjectId, RpcError> {
        let invalid =
            |why: &str| RpcError::type_error(format!("Invalid Durable Object ID {text:?}: {why}"));
        if text.len() != 64 {
            return Err(invalid("it must be 64 hex digits"));
        }
        let mut bytes = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let digit = |b: u8| match b {
                b'0'..=b'9' => Some(b - b'0'),
                b'a'..=b'f' => Some(b - b'a' + 10),
                _ => None,
            };
            match (digit(pair[0]), digit(pair[1])) {
                (Some(h), Some(l)) => bytes[i] = h << 4 | l,
                _ => return Err(invalid("it must be 64 lowercase hex digits")),
            }
        }
        let mut body = [0u8; 24];
        body.copy_from_slice(&bytes[..24]);
        let id = Self::sealed(namespace, body);
        if id.0 != bytes {
            return Err(invalid("it is not an ID of this namespace"));
        }
        Ok(id)
    }

    fn sealed(namespace: &str, body: [u8; 24]) -> DurableObjectId {
        let check = Sha256::new()
            .chain_update(b"capwire durable object check\0")
            .chain_update(namespace.as_bytes())
            .chain_update(b"\0")
            .chain_update(body)
            .finalize();
        let mut bytes = [0u8; 32];
        bytes[..24].copy_from_slice(&body);
        bytes[24..].copy_from_slice(&check[..8]);
        DurableObjectId(bytes)
    }
}

impl fmt::Display for DurableObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DurableObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableObjectId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_give_the_same_id_every_time_and_only_in_their_namespace() {
        let a = DurableObjectId::from_name("w/Counter", "alice");
        assert_eq!(a, DurableObjectId::from_name("w/Counter", "alice"));
        assert_ne!(a, DurableObjectId::from_name("w/Counter", "bob"));
        assert_ne!(a, DurableObjectId::from_name("w/Other", "alice"));
        let text = a.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(DurableObjectId::parse("w/Counter", &text).unwrap(), a);
        assert!(DurableObjectId::parse("w/Other", &text).is_err());
    }

    #[test]
    fn malformed_ids_are_refused() {
        let good = DurableObjectId::unique("ns").unwrap().to_string();
        let mut flipped = good.clone().into_bytes();
        flipped[3] = if flipped[3] == b'0' { b'1' } else { b'0' };
        for bad in [
            "",
            "abc",
            &good[..62],
            &good.to_uppercase(),
            &format!("{}zz", &good[..62]),
            std::str::from_utf8(&flipped).unwrap(),
        ] {
            assert!(DurableObjectId::parse("ns", bad).is_err(), "{bad:?}");
        }
        assert_ne!(good, DurableObjectId::unique("ns").unwrap().to_string());
    }
}
