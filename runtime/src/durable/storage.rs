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

impl Storage {
    /// Alarm.
    pub fn set_alarm(&self, at: std::time::SystemTime) -> Result<(), RpcError> {
        let ms = at
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        self.put("__alarm", &ms)
    }
    /// Alarm.
    pub fn get_alarm(&self) -> Result<Option<std::time::SystemTime>, RpcError> {
        Ok(self
            .get::<u64>("__alarm")?
            .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms)))
    }
    /// Alarm.
    pub fn delete_alarm(&self) -> Result<(), RpcError> {
        self.0.lock().unwrap().remove("__alarm");
        Ok(())
    }
}
