//! TEMPORARY stand-in, replaced by the SQLite storage on merge.
use crate::RpcError;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Storage.
#[derive(Clone, Default)]
pub struct Storage(Arc<Mutex<BTreeMap<String, String>>>);

impl Storage {
    /// Opens.
    pub fn open(_path: impl AsRef<std::path::Path>) -> Result<Storage, RpcError> {
        Ok(Storage::default())
    }
    /// Get.
    pub fn get<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RpcError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(key)
            .map(|v| serde_json::from_str(v).unwrap()))
    }
    /// Put.
    pub fn put<T: serde::Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), RpcError> {
        self.0
            .lock()
            .unwrap()
            .insert(key.into(), serde_json::to_string(value).unwrap());
        Ok(())
    }
}
