//! The storage of a Durable Object: a key-value store, a SQL database and an alarm, kept
//! in one SQLite file.
//!
//! [`Storage`] is what a Cloudflare Durable Object knows as `state.storage`: `get`,
//! `get_many`, `put`, `put_many`, `delete`, `delete_many`, `delete_all`, `list` (with
//! `prefix`, `start`, `end`, `limit` and `reverse`, see [`ListOptions`]), `transaction`,
//! `sql_exec` (`storage.sql.exec`) and the alarm (`set_alarm`, `get_alarm`,
//! `delete_alarm`).
//!
//! # Every call is synchronous: the input gate
//!
//! Each method does all of its work, writing included, before it returns; none of them is
//! `async`. A method of an object that uses its storage therefore runs from one `await` to
//! the next without any other call of the object running in between, and everything it
//! reads and writes in that stretch is consistent: this is what Cloudflare calls the
//! *input gate*, here by construction rather than by a runtime's bookkeeping. To make
//! several reads and writes one unit even across a failure (or across threads sharing a
//! [`Storage`]), use [`Storage::transaction`]: its closure cannot `await` either.
//!
//! A [`Storage`] may be cloned and shared between threads; calls from different threads
//! take turns (a mutex around the one SQLite connection).
//!
//! # Durability
//!
//! [`Storage::open`] puts the database in WAL mode with `synchronous=FULL`: every write
//! (each `put`, each `sql_exec` that changes something, each committed transaction) is in
//! the file and synced to disk before the call returns, so a write that returned survives
//! a crash of the process or of the machine. Writes are atomic: a `put_many`, a
//! `delete_many` and a transaction are kept entirely or not at all.
//!
//! # Limits
//!
//! Keys are any string of at most 2048 bytes (UTF-8); values are stored as JSON text
//! (`serde_json`) of at most 128 MiB. A key or value over its limit is refused with a
//! `RangeError` naming the limit. (Cloudflare's own limits are 2 KiB keys and 128 KiB
//! values; keys are the same here, values may be much larger because SQLite stores them
//! in one row without trouble, which spares objects the splitting of large values.)
//!
//! # Errors
//!
//! Every failure is an [`RpcError`], ready to be returned from an RPC method: a failure of
//! the database itself is an `Error` whose message starts with `storage:`; a value that
//! does not serialize, or a stored value that does not deserialize as the type asked
//! for, a `TypeError`; an over-long key or value a `RangeError`; a bad SQL query an
//! `Error` with SQLite's message.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior, params_from_iter};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Object, RpcError, Value};

/// The longest key, in bytes of UTF-8.
const MAX_KEY_BYTES: usize = 2048;
/// The longest value, in bytes of its JSON text.
const MAX_VALUE_BYTES: usize = 128 * 1024 * 1024;
/// How long a call waits for another process holding the same file's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The tables this module keeps in the object's database. SQL given to `sql_exec` may
/// not name anything starting with `_cw_`.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS _cw_kv (
        key TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS _cw_alarm (
        id INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
        at_nanos INTEGER NOT NULL
    );
";

/// Statements `sql_exec` refuses, by their first keyword: transaction control (which would
/// break [`Storage::transaction`] and the atomicity of the other methods), other
/// databases, and pragmas (which could turn durability off; their read-only forms are
/// available as table-valued functions such as `pragma_table_info('t')`).
const REFUSED_STATEMENTS: &[&str] = &[
    "BEGIN",
    "COMMIT",
    "END",
    "ROLLBACK",
    "SAVEPOINT",
    "RELEASE",
    "ATTACH",
    "DETACH",
    "PRAGMA",
    "VACUUM",
];

/// One object's durable storage: a key-value store and a SQL database, in one SQLite file.
///
/// Cloning a `Storage` gives another handle on the same database. See the
/// [module documentation](self) for why every call is synchronous, what durability it
/// gives, and the limits on keys and values.
///
/// ```
/// use capwire::durable::{ListOptions, Storage};
/// use capwire::{RpcError, Value};
///
/// # fn main() -> Result<(), RpcError> {
/// let storage = Storage::in_memory()?;
///
/// // Key-value: any serde value, stored as JSON.
/// storage.put("count", &1)?;
/// storage.put("name", "Ada")?;
/// assert_eq!(storage.get::<u32>("count")?, Some(1));
/// assert_eq!(storage.get::<u32>("missing")?, None);
///
/// // Several changes as one: all kept, or none.
/// storage.transaction(|tx| {
///     let count: u32 = tx.get("count")?.unwrap_or(0);
///     tx.put("count", &(count + 1))
/// })?;
/// assert_eq!(storage.get::<u32>("count")?, Some(2));
///
/// let keys: Vec<String> = storage
///     .list::<serde_json::Value>(&ListOptions::default())?
///     .into_iter()
///     .map(|(key, _)| key)
///     .collect();
/// assert_eq!(keys, ["count", "name"]);
///
/// // SQL, on tables of the object's own.
/// storage.sql_exec("CREATE TABLE visits (page TEXT, n INTEGER)", &[])?;
/// storage.sql_exec("INSERT INTO visits VALUES (?, ?)", &["/".into(), 3.into()])?;
/// let rows = storage.sql_exec("SELECT page, n FROM visits", &[])?;
/// assert_eq!(rows[0]["page"], Value::from("/"));
/// assert_eq!(rows[0]["n"], Value::from(3));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Storage {
    backend: Arc<dyn StorageBackend + Send + Sync>,
    /// Bumped by every change of the alarm, so that the host reads the alarm back only
    /// after a call that changed it.
    alarm_changes: Arc<std::sync::atomic::AtomicU64>,
}

/// Where a Durable Object's storage is kept. [`SqliteBackend`] (one SQLite file per
/// object) is the default; a backend on another database implements this trait and is
/// given to the host with
/// [`HostBuilder::storage`](crate::host::HostBuilder::storage).
///
/// Keys reach a backend checked against the key limit; values are JSON text. Every method
/// is synchronous and must be durable when it returns (the output gate rests on it). A
/// [`Storage`] needs one that is `Send + Sync`; the view a transaction's body gets need
/// not be.
pub trait StorageBackend {
    /// The JSON stored at `key`.
    fn get(&self, key: &str) -> Result<Option<String>, RpcError>;
    /// Stores every `(key, json)` entry, atomically.
    fn put_many(&self, entries: &[(&str, &str)]) -> Result<(), RpcError>;
    /// Deletes `keys`, atomically; how many had a value.
    fn delete_many(&self, keys: &[&str]) -> Result<usize, RpcError>;
    /// Deletes every key-value pair.
    fn delete_all(&self) -> Result<(), RpcError>;
    /// The `(key, json)` pairs `options` selects, in key order (UTF-8 byte order).
    fn list(&self, options: &ListOptions) -> Result<Vec<(String, String)>, RpcError>;
    /// One SQL statement on the object's own tables (a backend without SQL refuses).
    fn sql_exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError>;
    /// Runs `body` on a view of this backend inside a transaction: committed if it returns
    /// Ok, rolled back if it returns Err or panics.
    fn transaction(
        &self,
        body: &mut dyn FnMut(&dyn StorageBackend) -> Result<(), RpcError>,
    ) -> Result<(), RpcError>;
    /// Sets the object's one alarm.
    fn set_alarm(&self, at: SystemTime) -> Result<(), RpcError>;
    /// The object's alarm, if set.
    fn get_alarm(&self) -> Result<Option<SystemTime>, RpcError>;
    /// Unsets the object's alarm.
    fn delete_alarm(&self) -> Result<(), RpcError>;
}

/// The default [`StorageBackend`]: one SQLite database per object, in WAL mode with
/// `synchronous=FULL`.
pub struct SqliteBackend {
    conn: Mutex<Connection>,
    /// The thread running a transaction's closure, while one runs: a call on the
    /// `Storage` from that thread would wait for itself.
    transaction_thread: Mutex<Option<ThreadId>>,
    /// The file, for `Debug` (`None` in memory).
    path: Option<PathBuf>,
}

impl Storage {
    /// Opens (creating) the SQLite database at `path` (parent directories created). WAL
    /// journal, synchronous=FULL: every committed write is on disk before the call returns.
    pub fn open(path: impl AsRef<Path>) -> Result<Storage, RpcError> {
        Ok(Storage::from_backend(Arc::new(SqliteBackend::open(path)?)))
    }

    /// An in-memory store (tests, or objects that need no durability).
    pub fn in_memory() -> Result<Storage, RpcError> {
        Ok(Storage::from_backend(Arc::new(SqliteBackend::in_memory()?)))
    }

    /// The storage kept in `backend`.
    pub fn from_backend(backend: Arc<dyn StorageBackend + Send + Sync>) -> Storage {
        Storage {
            backend,
            alarm_changes: Arc::default(),
        }
    }

    /// How many times the alarm was set or deleted through this storage (or a clone).
    pub(crate) fn alarm_changes(&self) -> u64 {
        self.alarm_changes
            .load(std::sync::atomic::Ordering::Acquire)
    }

    fn alarm_changed(&self) {
        self.alarm_changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    fn typed(&self) -> Typed<'_> {
        Typed(&*self.backend)
    }

    /// The value stored at `key`, or `None` if there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RpcError> {
        self.typed().get(key)
    }

    /// The values stored at `keys`, by key; keys with no value are left out.
    pub fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<BTreeMap<String, T>, RpcError> {
        self.typed().get_many(keys)
    }

    /// Stores `value` at `key`, replacing what was there.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), RpcError> {
        self.typed().put(key, value)
    }

    /// Stores every entry, atomically: all of them, or (on any error) none.
    pub fn put_many<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<(), RpcError> {
        self.typed().put_many(entries)
    }

    /// Deletes `key`; whether it had a value.
    pub fn delete(&self, key: &str) -> Result<bool, RpcError> {
        self.typed().delete(key)
    }

    /// Deletes `keys`, atomically; how many of them had a value.
    pub fn delete_many(&self, keys: &[&str]) -> Result<usize, RpcError> {
        self.typed().delete_many(keys)
    }

    /// Deletes every key-value pair. The object's SQL tables and its alarm are kept (drop
    /// tables with [`sql_exec`](Storage::sql_exec), the alarm with
    /// [`delete_alarm`](Storage::delete_alarm)).
    pub fn delete_all(&self) -> Result<(), RpcError> {
        self.backend.delete_all()
    }

    /// The key-value pairs `options` selects, in key order (UTF-8 byte order, reversed if
    /// asked).
    pub fn list<T: DeserializeOwned>(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<(String, T)>, RpcError> {
        self.typed().list(options)
    }

    /// Runs `f` in a transaction: committed if it returns Ok, rolled back (nothing of it
    /// kept) if it returns Err or panics.
    ///
    /// `f` reads and writes through the [`Transaction`] it is given. While it runs, calls
    /// on this `Storage` (or a clone) from other threads wait for the transaction to end;
    /// a call on it from `f` itself (its thread) is an error rather than a deadlock, and so
    /// is a nested `transaction`: nested transactions are not supported.
    ///
    /// ```
    /// # use capwire::{durable::Storage, RpcError};
    /// # fn main() -> Result<(), RpcError> {
    /// let storage = Storage::in_memory()?;
    /// let failed = storage.transaction(|tx| {
    ///     tx.put("a", &1)?;
    ///     Err::<(), _>(RpcError::error("changed my mind"))
    /// });
    /// assert!(failed.is_err());
    /// assert_eq!(storage.get::<i32>("a")?, None);
    /// # Ok(()) }
    /// ```
    pub fn transaction<R>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, RpcError>,
    ) -> Result<R, RpcError> {
        let mut f = Some(f);
        let mut result = None;
        self.backend.transaction(&mut |backend| {
            let f = f
                .take()
                .ok_or_else(|| RpcError::error("storage: a transaction ran its body twice"))?;
            result = Some(f(&Transaction { backend })?);
            Ok(())
        })?;
        result.ok_or_else(|| RpcError::error("storage: the transaction's body did not run"))
    }

    /// SQL on the object's own database (tables of its own; the key-value table is
    /// `_cw_kv`, which SQL may not touch: queries naming `_cw_` are refused): params and
    /// result cells are [`Value`]s (Null, Bool, Number, String, Bytes; integers that fit
    /// i64 bind as INTEGER), rows as [`Object`]s (column name -> value), in order.
    ///
    /// One statement per call. Parameters are SQL's `?`, `?N` or `:name` placeholders,
    /// bound in order; a `Bool` binds as the INTEGER 0 or 1, a `BigInt` that fits i64 as
    /// an INTEGER. Cells come back as `Null`, `Number` (an INTEGER beyond 2^53 as a
    /// `BigInt`), `String` or `Bytes`. Transaction control (`BEGIN`, `COMMIT`,
    /// `SAVEPOINT`, ...), `ATTACH`, `DETACH`, `PRAGMA` and `VACUUM` statements are refused
    /// (use [`transaction`](Storage::transaction); read pragmas through their table-valued
    /// functions, such as `SELECT * FROM pragma_table_info('t')`). Foreign keys are
    /// enforced. The check for `_cw_` looks at the whole text, string literals included.
    pub fn sql_exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        self.backend.sql_exec(query, params)
    }

    /// The SQL API as Cloudflare spells it: `storage.sql().exec(query, params)`, the same
    /// as [`Storage::sql_exec`].
    ///
    /// ```
    /// let storage = capwire::durable::Storage::in_memory()?;
    /// storage.sql().exec("CREATE TABLE t (n INTEGER)", &[])?;
    /// storage.sql().exec("INSERT INTO t VALUES (?)", &[7.into()])?;
    /// let rows = storage.sql().exec("SELECT n FROM t", &[])?;
    /// assert_eq!(rows[0]["n"], capwire::Value::from(7));
    /// # Ok::<(), capwire::RpcError>(())
    /// ```
    pub fn sql(&self) -> Sql<'_> {
        Sql(self)
    }

    /// Alarms (one per object): stored durably with the data. Sets the object's alarm to
    /// `at`, replacing any earlier one; times are kept to the nanosecond, between the years
    /// 1677 and 2262 (a `RangeError` outside). The host runs the object's `alarm` method at
    /// that time.
    pub fn set_alarm(&self, at: SystemTime) -> Result<(), RpcError> {
        self.alarm_changed();
        self.backend.set_alarm(at)
    }

    /// The time the object's alarm is set to, if it is set.
    pub fn get_alarm(&self) -> Result<Option<SystemTime>, RpcError> {
        self.backend.get_alarm()
    }

    /// Unsets the object's alarm (nothing happens if it was not set).
    pub fn delete_alarm(&self) -> Result<(), RpcError> {
        self.alarm_changed();
        self.backend.delete_alarm()
    }
}

/// The typed key-value methods, written once over a backend: [`Storage`] passes its own,
/// [`Transaction`] the view inside its transaction.
#[derive(Clone, Copy)]
struct Typed<'b>(&'b dyn StorageBackend);

impl Typed<'_> {
    fn get<T: DeserializeOwned>(self, key: &str) -> Result<Option<T>, RpcError> {
        check_key(key)?;
        self.0.get(key)?.map(|json| decode(key, &json)).transpose()
    }

    fn get_many<T: DeserializeOwned>(self, keys: &[&str]) -> Result<BTreeMap<String, T>, RpcError> {
        let mut found = BTreeMap::new();
        for key in keys {
            if let Some(value) = self.get(key)? {
                found.insert((*key).to_owned(), value);
            }
        }
        Ok(found)
    }

    fn put<T: Serialize + ?Sized>(self, key: &str, value: &T) -> Result<(), RpcError> {
        check_key(key)?;
        let json = encode(key, value)?;
        self.0.put_many(&[(key, &json)])
    }

    fn put_many<T: Serialize>(self, entries: &[(&str, T)]) -> Result<(), RpcError> {
        // Everything is checked and serialized before anything is written.
        let encoded = entries
            .iter()
            .map(|(key, value)| {
                check_key(key)?;
                Ok((*key, encode(key, value)?))
            })
            .collect::<Result<Vec<_>, RpcError>>()?;
        let refs: Vec<(&str, &str)> = encoded.iter().map(|(k, j)| (*k, j.as_str())).collect();
        self.0.put_many(&refs)
    }

    fn delete(self, key: &str) -> Result<bool, RpcError> {
        Ok(self.delete_many(&[key])? > 0)
    }

    fn delete_many(self, keys: &[&str]) -> Result<usize, RpcError> {
        keys.iter().try_for_each(|key| check_key(key))?;
        self.0.delete_many(keys)
    }

    fn list<T: DeserializeOwned>(
        self,
        options: &ListOptions,
    ) -> Result<Vec<(String, T)>, RpcError> {
        self.0
            .list(options)?
            .into_iter()
            .map(|(key, json)| {
                let value = decode(&key, &json)?;
                Ok((key, value))
            })
            .collect()
    }
}

impl SqliteBackend {
    /// Opens (creating) the database at `path`, as [`Storage::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteBackend, RpcError> {
        let path = path.as_ref();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                RpcError::error(format!("storage: cannot create {}: {e}", parent.display()))
            })?;
        }
        let conn = Connection::open(path).map_err(|e| {
            RpcError::error(format!("storage: cannot open {}: {e}", path.display()))
        })?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(storage_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(RpcError::error(format!(
                "storage: {} cannot use a WAL journal (journal mode {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(storage_error)?;
        SqliteBackend::with_connection(conn, Some(path.to_path_buf()))
    }

    /// An in-memory database.
    pub fn in_memory() -> Result<SqliteBackend, RpcError> {
        let conn = Connection::open_in_memory().map_err(storage_error)?;
        SqliteBackend::with_connection(conn, None)
    }

    fn with_connection(conn: Connection, path: Option<PathBuf>) -> Result<SqliteBackend, RpcError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(storage_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(storage_error)?;
        conn.execute_batch(SCHEMA).map_err(storage_error)?;
        Ok(SqliteBackend {
            conn: Mutex::new(conn),
            transaction_thread: Mutex::new(None),
            path,
        })
    }

    /// Runs `f` on the connection, locked; an error instead on the thread of a running
    /// transaction, where locking would wait forever.
    fn with<R>(&self, f: impl FnOnce(Kv<'_>) -> Result<R, RpcError>) -> Result<R, RpcError> {
        if self.in_transaction_on_this_thread() {
            return Err(RpcError::error(
                "storage: called on the Storage from inside its transaction's closure; use \
                 the Transaction given to the closure (nested transactions are not \
                 supported)",
            ));
        }
        let conn = self.lock_connection();
        f(Kv(&conn))
    }
}

impl StorageBackend for SqliteBackend {
    fn get(&self, key: &str) -> Result<Option<String>, RpcError> {
        self.with(|kv| kv.get(key))
    }

    fn put_many(&self, entries: &[(&str, &str)]) -> Result<(), RpcError> {
        self.with(|kv| kv.put_many(entries))
    }

    fn delete_many(&self, keys: &[&str]) -> Result<usize, RpcError> {
        self.with(|kv| kv.delete_many(keys))
    }

    fn delete_all(&self) -> Result<(), RpcError> {
        self.with(|kv| kv.delete_all())
    }

    fn list(&self, options: &ListOptions) -> Result<Vec<(String, String)>, RpcError> {
        self.with(|kv| kv.list(options))
    }

    fn sql_exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        self.with(|kv| kv.sql_exec(query, params))
    }

    fn transaction(
        &self,
        body: &mut dyn FnMut(&dyn StorageBackend) -> Result<(), RpcError>,
    ) -> Result<(), RpcError> {
        if self.in_transaction_on_this_thread() {
            return Err(RpcError::error(
                "storage: nested transactions are not supported (transaction called from \
                 inside a transaction's closure; use the Transaction it was given)",
            ));
        }
        let mut conn = self.lock_connection();
        let _thread = TransactionThread::enter(self);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_error)?;
        // If `body` panics, `tx` is dropped on the way out, which rolls it back.
        match body(&InTransaction(&tx)) {
            Ok(()) => tx.commit().map_err(storage_error),
            Err(error) => {
                // A failed rollback leaves nothing committed either; `lock_connection`
                // ends any transaction left open.
                let _ = tx.rollback();
                Err(error)
            }
        }
    }

    fn set_alarm(&self, at: SystemTime) -> Result<(), RpcError> {
        let nanos = nanos_since_epoch(at)?;
        self.with(|kv| kv.set_alarm(nanos))
    }

    fn get_alarm(&self) -> Result<Option<SystemTime>, RpcError> {
        self.with(|kv| kv.get_alarm())?
            .map(time_from_nanos)
            .transpose()
    }

    fn delete_alarm(&self) -> Result<(), RpcError> {
        self.with(|kv| kv.delete_alarm())
    }
}

/// The SQLite connection inside a transaction, as the backend its closure works on.
struct InTransaction<'c>(&'c Connection);

impl InTransaction<'_> {
    /// The connection, unless SQLite has already ended the transaction (as a statement's
    /// `OR ROLLBACK` conflict clause does): what would follow would no longer be part of
    /// it.
    fn kv(&self) -> Result<Kv<'_>, RpcError> {
        if self.0.is_autocommit() {
            return Err(RpcError::error(
                "storage: the transaction was rolled back by an earlier statement",
            ));
        }
        Ok(Kv(self.0))
    }
}

impl StorageBackend for InTransaction<'_> {
    fn get(&self, key: &str) -> Result<Option<String>, RpcError> {
        self.kv()?.get(key)
    }

    fn put_many(&self, entries: &[(&str, &str)]) -> Result<(), RpcError> {
        self.kv()?.put_many(entries)
    }

    fn delete_many(&self, keys: &[&str]) -> Result<usize, RpcError> {
        self.kv()?.delete_many(keys)
    }

    fn delete_all(&self) -> Result<(), RpcError> {
        self.kv()?.delete_all()
    }

    fn list(&self, options: &ListOptions) -> Result<Vec<(String, String)>, RpcError> {
        self.kv()?.list(options)
    }

    fn sql_exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        self.kv()?.sql_exec(query, params)
    }

    fn transaction(
        &self,
        _body: &mut dyn FnMut(&dyn StorageBackend) -> Result<(), RpcError>,
    ) -> Result<(), RpcError> {
        Err(RpcError::error(
            "storage: nested transactions are not supported",
        ))
    }

    fn set_alarm(&self, at: SystemTime) -> Result<(), RpcError> {
        self.kv()?.set_alarm(nanos_since_epoch(at)?)
    }

    fn get_alarm(&self) -> Result<Option<SystemTime>, RpcError> {
        self.kv()?.get_alarm()?.map(time_from_nanos).transpose()
    }

    fn delete_alarm(&self) -> Result<(), RpcError> {
        self.kv()?.delete_alarm()
    }
}

/// An object's SQL database, from [`Storage::sql`].
pub struct Sql<'a>(&'a Storage);

impl Sql<'_> {
    /// Runs one statement with `params`; the rows it returns (see [`Storage::sql_exec`]).
    pub fn exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        self.0.sql_exec(query, params)
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

impl fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => f.debug_struct("SqliteBackend").field("path", path).finish(),
            None => f
                .debug_struct("SqliteBackend")
                .field("path", &":memory:")
                .finish(),
        }
    }
}

impl SqliteBackend {
    /// The connection, locked. A mutex poisoned by a panic (in a transaction's closure)
    /// is taken over: the panic rolled the transaction back. Should a transaction be left
    /// open anyway, it is rolled back here, so that no later write waits in it.
    fn lock_connection(&self) -> MutexGuard<'_, Connection> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        self.conn.clear_poison();
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        conn
    }

    fn in_transaction_on_this_thread(&self) -> bool {
        let owner = self
            .transaction_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *owner == Some(thread::current().id())
    }
}

/// Marks the current thread as running a transaction of `inner` until dropped (also
/// when unwinding from a panic).
struct TransactionThread<'a>(&'a SqliteBackend);

impl<'a> TransactionThread<'a> {
    fn enter(inner: &'a SqliteBackend) -> Self {
        *inner
            .transaction_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(thread::current().id());
        TransactionThread(inner)
    }
}

impl Drop for TransactionThread<'_> {
    fn drop(&mut self) {
        *self
            .0
            .transaction_thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// The same key-value methods (get, get_many, put, put_many, delete, delete_many, list,
/// sql_exec), inside a transaction.
///
/// Given to the closure of [`Storage::transaction`]; what it writes is committed when the
/// closure returns `Ok`, and discarded otherwise. Reads see the transaction's own writes.
pub struct Transaction<'a> {
    backend: &'a dyn StorageBackend,
}

impl Transaction<'_> {
    fn typed(&self) -> Typed<'_> {
        Typed(self.backend)
    }

    /// The value stored at `key`, or `None` if there is none.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, RpcError> {
        self.typed().get(key)
    }

    /// The values stored at `keys`, by key; keys with no value are left out.
    pub fn get_many<T: DeserializeOwned>(
        &self,
        keys: &[&str],
    ) -> Result<BTreeMap<String, T>, RpcError> {
        self.typed().get_many(keys)
    }

    /// Stores `value` at `key`, replacing what was there.
    pub fn put<T: Serialize + ?Sized>(&self, key: &str, value: &T) -> Result<(), RpcError> {
        self.typed().put(key, value)
    }

    /// Stores every entry: all of them, or (on any error) none.
    pub fn put_many<T: Serialize>(&self, entries: &[(&str, T)]) -> Result<(), RpcError> {
        self.typed().put_many(entries)
    }

    /// Deletes `key`; whether it had a value.
    pub fn delete(&self, key: &str) -> Result<bool, RpcError> {
        self.typed().delete(key)
    }

    /// Deletes `keys`; how many of them had a value.
    pub fn delete_many(&self, keys: &[&str]) -> Result<usize, RpcError> {
        self.typed().delete_many(keys)
    }

    /// The key-value pairs `options` selects, in key order, as [`Storage::list`].
    pub fn list<T: DeserializeOwned>(
        &self,
        options: &ListOptions,
    ) -> Result<Vec<(String, T)>, RpcError> {
        self.typed().list(options)
    }

    /// SQL on the object's own database, inside the transaction, as
    /// [`Storage::sql_exec`].
    pub fn sql_exec(&self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        self.backend.sql_exec(query, params)
    }
}

impl fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction").finish_non_exhaustive()
    }
}

/// Which key-value pairs [`Storage::list`] returns.
///
/// All the conditions given apply together: keys from `start` (inclusive) to `end`
/// (exclusive) that begin with `prefix`, in key order (UTF-8 byte order) or its reverse,
/// at most `limit` of them (the first ones in the order asked for).
///
/// ```
/// use capwire::durable::ListOptions;
/// let options = ListOptions {
///     prefix: Some("user:".into()),
///     limit: Some(10),
///     reverse: true,
///     ..ListOptions::default()
/// };
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Only keys beginning with this.
    pub prefix: Option<String>,
    /// Only keys at or after this one.
    pub start: Option<String>,
    /// Only keys before this one.
    pub end: Option<String>,
    /// At most this many pairs.
    pub limit: Option<usize>,
    /// Descending key order instead of ascending.
    pub reverse: bool,
}

/// The key-value methods, written once over a connection: [`Storage`] passes its locked
/// connection, [`Transaction`] the connection inside its transaction.
#[derive(Clone, Copy)]
struct Kv<'c>(&'c Connection);

impl Kv<'_> {
    fn get(self, key: &str) -> Result<Option<String>, RpcError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT value FROM _cw_kv WHERE key = ?1")
            .map_err(storage_error)?;
        let mut rows = stmt.query([key]).map_err(storage_error)?;
        match rows.next().map_err(storage_error)? {
            Some(row) => Ok(Some(row.get(0).map_err(storage_error)?)),
            None => Ok(None),
        }
    }

    fn put_many(self, entries: &[(&str, &str)]) -> Result<(), RpcError> {
        self.atomically(|| {
            entries
                .iter()
                .try_for_each(|(key, json)| self.write(key, json))
        })
    }

    fn write(self, key: &str, json: &str) -> Result<(), RpcError> {
        self.0
            .prepare_cached("INSERT OR REPLACE INTO _cw_kv (key, value) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute([key, json]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn delete(self, key: &str) -> Result<bool, RpcError> {
        let deleted = self
            .0
            .prepare_cached("DELETE FROM _cw_kv WHERE key = ?1")
            .and_then(|mut stmt| stmt.execute([key]))
            .map_err(storage_error)?;
        Ok(deleted > 0)
    }

    fn delete_many(self, keys: &[&str]) -> Result<usize, RpcError> {
        self.atomically(|| {
            keys.iter().try_fold(0, |deleted, key| {
                Ok(deleted + usize::from(self.delete(key)?))
            })
        })
    }

    fn delete_all(self) -> Result<(), RpcError> {
        self.0
            .execute("DELETE FROM _cw_kv", [])
            .map_err(storage_error)?;
        Ok(())
    }

    fn list(self, options: &ListOptions) -> Result<Vec<(String, String)>, RpcError> {
        let mut sql = String::from("SELECT key, value FROM _cw_kv WHERE 1");
        let mut bounds: Vec<String> = Vec::new();
        if let Some(start) = &options.start {
            sql.push_str(" AND key >= ?");
            bounds.push(start.clone());
        }
        if let Some(end) = &options.end {
            sql.push_str(" AND key < ?");
            bounds.push(end.clone());
        }
        if let Some(prefix) = options.prefix.as_deref().filter(|p| !p.is_empty()) {
            sql.push_str(" AND key >= ?");
            bounds.push(prefix.to_owned());
            if let Some(after) = after_prefix(prefix) {
                sql.push_str(" AND key < ?");
                bounds.push(after);
            }
        }
        sql.push_str(if options.reverse {
            " ORDER BY key DESC"
        } else {
            " ORDER BY key ASC"
        });
        if let Some(limit) = options.limit {
            // A limit beyond i64 is no limit.
            sql.push_str(&format!(
                " LIMIT {}",
                i64::try_from(limit).unwrap_or(i64::MAX)
            ));
        }
        let mut stmt = self.0.prepare(&sql).map_err(storage_error)?;
        let mut rows = stmt
            .query(params_from_iter(bounds.iter()))
            .map_err(storage_error)?;
        let mut pairs = Vec::new();
        while let Some(row) = rows.next().map_err(storage_error)? {
            let key: String = row.get(0).map_err(storage_error)?;
            let json: String = row.get(1).map_err(storage_error)?;
            pairs.push((key, json));
        }
        Ok(pairs)
    }

    fn set_alarm(self, nanos: i64) -> Result<(), RpcError> {
        self.0
            .prepare_cached(
                "INSERT INTO _cw_alarm (id, at_nanos) VALUES (0, ?1) \
                 ON CONFLICT (id) DO UPDATE SET at_nanos = excluded.at_nanos",
            )
            .and_then(|mut stmt| stmt.execute([nanos]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn get_alarm(self) -> Result<Option<i64>, RpcError> {
        let mut stmt = self
            .0
            .prepare_cached("SELECT at_nanos FROM _cw_alarm WHERE id = 0")
            .map_err(storage_error)?;
        let mut rows = stmt.query([]).map_err(storage_error)?;
        match rows.next().map_err(storage_error)? {
            Some(row) => Ok(Some(row.get(0).map_err(storage_error)?)),
            None => Ok(None),
        }
    }

    fn delete_alarm(self) -> Result<(), RpcError> {
        self.0
            .prepare_cached("DELETE FROM _cw_alarm")
            .and_then(|mut stmt| stmt.execute([]))
            .map_err(storage_error)?;
        Ok(())
    }

    fn sql_exec(self, query: &str, params: &[Value]) -> Result<Vec<Object>, RpcError> {
        check_query(query)?;
        let bound = params
            .iter()
            .enumerate()
            .map(|(i, value)| to_sql(i + 1, value))
            .collect::<Result<Vec<_>, RpcError>>()?;
        let mut stmt = self.0.prepare_cached(query).map_err(sql_error)?;
        let columns: Vec<String> = stmt.column_names().into_iter().map(String::from).collect();
        let mut rows = stmt
            .query(params_from_iter(bound.iter()))
            .map_err(sql_error)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sql_error)? {
            let mut object = Object::with_capacity(columns.len());
            for (i, column) in columns.iter().enumerate() {
                let cell = row.get_ref(i).map_err(sql_error)?;
                object.insert(column.clone(), from_sql(cell));
            }
            out.push(object);
        }
        Ok(out)
    }

    /// Runs `f` inside a savepoint: what it wrote is kept if it returns Ok, undone if it
    /// returns Err. Outside a transaction the savepoint is one (committed on release);
    /// inside one it nests.
    fn atomically<R>(self, f: impl FnOnce() -> Result<R, RpcError>) -> Result<R, RpcError> {
        self.0
            .execute_batch("SAVEPOINT _cw_batch")
            .map_err(storage_error)?;
        let result = f().and_then(|r| {
            self.0
                .execute_batch("RELEASE _cw_batch")
                .map_err(storage_error)?;
            Ok(r)
        });
        if result.is_err() {
            let _ = self
                .0
                .execute_batch("ROLLBACK TO _cw_batch; RELEASE _cw_batch");
        }
        result
    }
}

fn storage_error(error: rusqlite::Error) -> RpcError {
    RpcError::error(format!("storage: {error}"))
}

fn sql_error(error: rusqlite::Error) -> RpcError {
    RpcError::error(error.to_string())
}

fn check_key(key: &str) -> Result<(), RpcError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(RpcError::range(format!(
            "storage: a key of {} bytes is over the limit of {MAX_KEY_BYTES} bytes",
            key.len()
        )));
    }
    Ok(())
}

fn encode<T: Serialize + ?Sized>(key: &str, value: &T) -> Result<String, RpcError> {
    let json = serde_json::to_string(value).map_err(|e| {
        RpcError::type_error(format!(
            "storage: the value for key {key:?} does not serialize: {e}"
        ))
    })?;
    if json.len() > MAX_VALUE_BYTES {
        return Err(RpcError::range(format!(
            "storage: the value for key {key:?} is {} bytes of JSON, over the limit of \
             {MAX_VALUE_BYTES} bytes (128 MiB)",
            json.len()
        )));
    }
    Ok(json)
}

fn decode<T: DeserializeOwned>(key: &str, json: &str) -> Result<T, RpcError> {
    serde_json::from_str(json).map_err(|e| {
        RpcError::type_error(format!(
            "storage: the value at key {key:?} is not a {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

/// The least string greater than every string beginning with `prefix`, if there is one:
/// `prefix` with its last character replaced by the next one (UTF-8 byte order is code
/// point order), dropping trailing `char::MAX`s.
fn after_prefix(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(u32::from(c) + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// Refuses SQL that names this module's tables, or whose statement would break the
/// storage's guarantees.
fn check_query(query: &str) -> Result<(), RpcError> {
    if query
        .as_bytes()
        .windows(4)
        .any(|w| w.eq_ignore_ascii_case(b"_cw_"))
    {
        return Err(RpcError::error(
            "sql_exec: SQL may not name `_cw_` (the tables of the key-value store and the \
             alarm)",
        ));
    }
    let keyword = first_keyword(query);
    if let Some(refused) = REFUSED_STATEMENTS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(keyword))
    {
        return Err(RpcError::error(format!(
            "sql_exec: {refused} statements are not allowed (use Storage::transaction for \
             transactions)"
        )));
    }
    Ok(())
}

/// The first word of `query`, after white space, comments and empty statements.
fn first_keyword(query: &str) -> &str {
    let mut rest = query;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        if let Some(comment) = trimmed.strip_prefix("--") {
            rest = comment.split_once('\n').map_or("", |(_, after)| after);
        } else if let Some(comment) = trimmed.strip_prefix("/*") {
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        } else {
            rest = trimmed;
            break;
        }
    }
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// A parameter of `sql_exec`, as SQLite takes it (borrowing strings and bytes).
fn to_sql(position: usize, value: &Value) -> Result<ToSqlOutput<'_>, RpcError> {
    /// 2^63: numbers from -2^63 up to (not including) this fit i64.
    const I64_END: f64 = 9_223_372_036_854_775_808.0;
    let cell = match value {
        Value::Null => ValueRef::Null,
        Value::Bool(b) => ValueRef::Integer(i64::from(*b)),
        Value::Number(n) if n.fract() == 0.0 && *n >= -I64_END && *n < I64_END => {
            ValueRef::Integer(*n as i64)
        }
        Value::Number(n) => ValueRef::Real(*n),
        Value::BigInt(big) => match big.to_i128().and_then(|i| i64::try_from(i).ok()) {
            Some(i) => ValueRef::Integer(i),
            None => {
                return Err(RpcError::range(format!(
                    "sql_exec: parameter {position} ({big}n) does not fit a 64-bit integer"
                )));
            }
        },
        Value::String(s) => ValueRef::Text(s.as_bytes()),
        Value::Bytes(bytes) => ValueRef::Blob(&bytes.data),
        _ => {
            return Err(RpcError::type_error(format!(
                "sql_exec: parameter {position} is not null, a boolean, a number, a string \
                 or bytes"
            )));
        }
    };
    Ok(ToSqlOutput::Borrowed(cell))
}

/// A result cell of `sql_exec`.
fn from_sql(cell: ValueRef<'_>) -> Value {
    match cell {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => Value::Number(f),
        ValueRef::Text(text) => Value::String(String::from_utf8_lossy(text).into_owned()),
        ValueRef::Blob(blob) => Value::Bytes(crate::Bytes::from(blob)),
    }
}

/// `at` as nanoseconds from the Unix epoch (negative before it).
fn nanos_since_epoch(at: SystemTime) -> Result<i64, RpcError> {
    let nanos = match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i128::try_from(after.as_nanos()).ok(),
        Err(before) => i128::try_from(before.duration().as_nanos())
            .ok()
            .map(|n| -n),
    };
    nanos.and_then(|n| i64::try_from(n).ok()).ok_or_else(|| {
        RpcError::range("storage: an alarm time must be between the years 1677 and 2262")
    })
}

fn time_from_nanos(nanos: i64) -> Result<SystemTime, RpcError> {
    let time = if nanos >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_nanos(nanos.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_nanos(nanos.unsigned_abs()))
    };
    time.ok_or_else(|| RpcError::error("storage: the stored alarm time is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::panic::{AssertUnwindSafe, catch_unwind};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Point {
        x: i32,
        y: i32,
        label: String,
    }

    /// A directory under the system's temporary one, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let dir = std::env::temp_dir().join(format!(
                "capwire-storage-{name}-{}-{nanos}",
                std::process::id()
            ));
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn storage_with(keys: &[&str]) -> Storage {
        let storage = Storage::in_memory().unwrap();
        for key in keys {
            storage.put(key, *key).unwrap();
        }
        storage
    }

    fn list_keys(storage: &Storage, options: ListOptions) -> Vec<String> {
        storage
            .list::<String>(&options)
            .unwrap()
            .into_iter()
            .map(|(key, _)| key)
            .collect()
    }

    #[test]
    fn put_get_round_trips_a_struct() {
        let storage = Storage::in_memory().unwrap();
        let point = Point {
            x: 3,
            y: -4,
            label: "here".into(),
        };
        storage.put("p", &point).unwrap();
        assert_eq!(storage.get::<Point>("p").unwrap(), Some(point));
        assert_eq!(storage.get::<Point>("q").unwrap(), None);
    }

    #[test]
    fn get_of_the_wrong_type_is_a_type_error() {
        let storage = Storage::in_memory().unwrap();
        storage.put("p", "text").unwrap();
        let error = storage.get::<Point>("p").unwrap_err();
        assert_eq!(error.name(), "TypeError");
    }

    #[test]
    fn get_many_leaves_out_absent_keys() {
        let storage = storage_with(&["a", "c"]);
        let found: BTreeMap<String, String> = storage.get_many(&["a", "b", "c"]).unwrap();
        assert_eq!(
            found.into_iter().collect::<Vec<_>>(),
            [("a".into(), "a".into()), ("c".into(), "c".into())]
        );
    }

    #[test]
    fn list_selects_by_prefix_range_limit_and_reverse() {
        let storage = storage_with(&["a", "b", "b1", "b2", "ba", "b\u{10FFFF}", "c", "é"]);
        let all = list_keys(&storage, ListOptions::default());
        // UTF-8 byte order: "é" (0xC3...) after "c", U+10FFFF after "ba".
        assert_eq!(all, ["a", "b", "b1", "b2", "ba", "b\u{10FFFF}", "c", "é"]);
        let prefix = list_keys(
            &storage,
            ListOptions {
                prefix: Some("b".into()),
                ..Default::default()
            },
        );
        assert_eq!(prefix, ["b", "b1", "b2", "ba", "b\u{10FFFF}"]);
        let range = list_keys(
            &storage,
            ListOptions {
                start: Some("b1".into()),
                end: Some("ba".into()),
                ..Default::default()
            },
        );
        assert_eq!(range, ["b1", "b2"]);
        let limited = list_keys(
            &storage,
            ListOptions {
                limit: Some(3),
                ..Default::default()
            },
        );
        assert_eq!(limited, ["a", "b", "b1"]);
        let reversed = list_keys(
            &storage,
            ListOptions {
                prefix: Some("b".into()),
                limit: Some(2),
                reverse: true,
                ..Default::default()
            },
        );
        assert_eq!(reversed, ["b\u{10FFFF}", "ba"]);
    }

    #[test]
    fn put_many_is_atomic() {
        let storage = Storage::in_memory().unwrap();
        let fine: BTreeMap<(u8, u8), u8> = BTreeMap::new();
        let unserializable: BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let error = storage
            .put_many(&[("first", fine), ("second", unserializable)])
            .unwrap_err();
        assert_eq!(error.name(), "TypeError");
        assert_eq!(storage.get::<serde_json::Value>("first").unwrap(), None);
        assert_eq!(storage.get::<serde_json::Value>("second").unwrap(), None);
        storage.put_many(&[("x", 1), ("y", 2)]).unwrap();
        assert_eq!(storage.get::<i32>("y").unwrap(), Some(2));
    }

    #[test]
    fn delete_returns_whether_the_key_existed() {
        let storage = storage_with(&["a", "b"]);
        assert!(storage.delete("a").unwrap());
        assert!(!storage.delete("a").unwrap());
        assert_eq!(storage.get::<String>("a").unwrap(), None);
        assert_eq!(storage.delete_many(&["a", "b", "c"]).unwrap(), 1);
    }

    #[test]
    fn delete_all_empties_the_key_value_store() {
        let storage = storage_with(&["a", "b"]);
        storage.delete_all().unwrap();
        assert!(list_keys(&storage, ListOptions::default()).is_empty());
    }

    #[test]
    fn over_long_key_is_a_range_error() {
        let storage = Storage::in_memory().unwrap();
        let key = "k".repeat(MAX_KEY_BYTES + 1);
        let error = storage.put(&key, &1).unwrap_err();
        assert_eq!(error.name(), "RangeError");
        assert!(error.message().contains("2048"), "{}", error.message());
        storage.put(&key[1..], &1).unwrap();
    }

    #[test]
    fn transaction_commits_on_ok() {
        let storage = storage_with(&["a"]);
        let seen = storage
            .transaction(|tx| {
                tx.put("b", "b")?;
                tx.delete("a")?;
                tx.get::<String>("b")
            })
            .unwrap();
        assert_eq!(seen.as_deref(), Some("b"));
        assert_eq!(list_keys(&storage, ListOptions::default()), ["b"]);
    }

    #[test]
    fn transaction_rolls_back_on_err() {
        let storage = storage_with(&["a"]);
        let result: Result<(), RpcError> = storage.transaction(|tx| {
            tx.put("b", "b")?;
            tx.delete("a")?;
            tx.sql_exec("CREATE TABLE t (x)", &[])?;
            Err(RpcError::error("no"))
        });
        assert_eq!(result.unwrap_err().message(), "no");
        assert_eq!(list_keys(&storage, ListOptions::default()), ["a"]);
        // The table was rolled back too.
        assert!(storage.sql_exec("SELECT * FROM t", &[]).is_err());
    }

    #[test]
    fn transaction_rolls_back_on_panic() {
        let storage = storage_with(&["a"]);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            let _: Result<(), RpcError> = storage.transaction(|tx| {
                tx.put("b", "b")?;
                panic!("in the transaction");
            });
        }));
        assert!(panicked.is_err());
        assert_eq!(list_keys(&storage, ListOptions::default()), ["a"]);
        // The storage still works, outside transactions and in them.
        storage.put("c", "c").unwrap();
        storage.transaction(|tx| tx.put("d", "d")).unwrap();
        assert_eq!(list_keys(&storage, ListOptions::default()), ["a", "c", "d"]);
    }

    #[test]
    fn nested_transaction_is_an_error_not_a_deadlock() {
        let storage = Storage::in_memory().unwrap();
        let outer = storage.clone();
        // On another thread, so that a deadlock fails the test instead of hanging it.
        let (done, results) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let results = outer.transaction(|tx| {
                tx.put("a", &1)?;
                let inner = outer.transaction(|tx| tx.put("b", &2));
                let put = outer.put("c", &3);
                Ok((inner, put))
            });
            let _ = done.send(results);
        });
        let (inner, put) = results
            .recv_timeout(Duration::from_secs(10))
            .expect("the nested transaction deadlocked")
            .unwrap();
        let inner = inner.unwrap_err();
        assert!(inner.message().contains("nested"), "{}", inner.message());
        assert!(put.is_err());
        assert_eq!(storage.get::<i32>("a").unwrap(), Some(1));
        assert_eq!(storage.get::<i32>("b").unwrap(), None);
        assert_eq!(storage.get::<i32>("c").unwrap(), None);
    }

    #[test]
    fn other_threads_wait_for_a_transaction() {
        let storage = Storage::in_memory().unwrap();
        let other = storage.clone();
        storage
            .transaction(|tx| {
                tx.put("n", &1)?;
                let writer = thread::spawn(move || other.put("n", &2));
                thread::sleep(Duration::from_millis(50));
                // The other thread's put has not happened: it waits for the commit.
                assert_eq!(tx.get::<i32>("n")?, Some(1));
                Ok(writer)
            })
            .unwrap()
            .join()
            .unwrap()
            .unwrap();
        assert_eq!(storage.get::<i32>("n").unwrap(), Some(2));
    }

    #[test]
    fn sql_exec_creates_inserts_and_selects() {
        let storage = Storage::in_memory().unwrap();
        let created = storage
            .sql_exec(
                "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT, weight REAL, data BLOB, note)",
                &[],
            )
            .unwrap();
        assert!(created.is_empty());
        storage
            .sql_exec(
                "INSERT INTO things (id, name, weight, data, note) VALUES (?, ?, ?, ?, ?)",
                &[
                    Value::from(1),
                    Value::from("one"),
                    Value::from(1.5),
                    Value::Bytes(vec![1u8, 2].into()),
                    Value::Null,
                ],
            )
            .unwrap();
        storage
            .sql_exec(
                "INSERT INTO things (id, name, weight, note) VALUES (?1, ?2, ?3, ?4)",
                &[
                    Value::from(2),
                    Value::from("two"),
                    Value::from(2),
                    Value::from(9_007_199_254_740_993_i64),
                ],
            )
            .unwrap();
        let rows = storage
            .sql_exec(
                "SELECT id, name, weight, data, note FROM things ORDER BY id",
                &[],
            )
            .unwrap();
        assert_eq!(rows.len(), 2);
        let columns: Vec<&str> = rows[0].keys().map(String::as_str).collect();
        assert_eq!(columns, ["id", "name", "weight", "data", "note"]);
        assert_eq!(rows[0]["id"], Value::from(1));
        assert_eq!(rows[0]["name"], Value::from("one"));
        assert_eq!(rows[0]["weight"], Value::from(1.5));
        assert_eq!(rows[0]["data"], Value::Bytes(vec![1u8, 2].into()));
        assert_eq!(rows[0]["note"], Value::Null);
        assert_eq!(rows[1]["weight"], Value::from(2.0));
        assert_eq!(rows[1]["note"], Value::from(9_007_199_254_740_993_i64));
        assert!(matches!(rows[1]["note"], Value::BigInt(_)));
        // Integral numbers (and booleans) bind as INTEGER, others as REAL.
        let types = storage
            .sql_exec(
                "SELECT typeof(?1) AS a, typeof(?2) AS b, typeof(?3) AS c",
                &[Value::from(7), Value::from(7.5), Value::Bool(true)],
            )
            .unwrap();
        assert_eq!(types[0]["a"], Value::from("integer"));
        assert_eq!(types[0]["b"], Value::from("real"));
        assert_eq!(types[0]["c"], Value::from("integer"));
    }

    #[test]
    fn sql_exec_reports_sqlite_errors() {
        let storage = Storage::in_memory().unwrap();
        let error = storage.sql_exec("SELEC 1", &[]).unwrap_err();
        assert_eq!(error.name(), "Error");
        assert!(
            error.message().contains("syntax error"),
            "{}",
            error.message()
        );
    }

    #[test]
    fn sql_naming_the_key_value_table_is_refused() {
        let storage = storage_with(&["a"]);
        for query in [
            "SELECT * FROM _cw_kv",
            "DELETE FROM \"_CW_KV\"",
            "DROP TABLE _cw_kv",
            "DELETE FROM _cw_alarm",
        ] {
            let error = storage.sql_exec(query, &[]).unwrap_err();
            assert!(error.message().contains("_cw_"), "{query}: {error:?}");
        }
        assert_eq!(storage.get::<String>("a").unwrap().as_deref(), Some("a"));
    }

    #[test]
    fn sql_transaction_control_is_refused() {
        let backend = Arc::new(SqliteBackend::in_memory().unwrap());
        let storage = Storage::from_backend(backend.clone());
        for query in [
            "BEGIN",
            "  -- c\n /* d */ commit",
            "SAVEPOINT s",
            "PRAGMA synchronous = OFF",
        ] {
            assert!(storage.sql_exec(query, &[]).is_err(), "{query}");
        }
        storage.put("a", &1).unwrap();
        assert!(backend.lock_connection().is_autocommit());
    }

    #[test]
    fn alarm_round_trips_and_survives_reopen() {
        let dir = TempDir::new("alarm");
        let path = dir.0.join("object.sqlite");
        let at = UNIX_EPOCH + Duration::new(1_800_000_000, 123_456_789);
        {
            let storage = Storage::open(&path).unwrap();
            assert_eq!(storage.get_alarm().unwrap(), None);
            storage.set_alarm(UNIX_EPOCH).unwrap();
            storage.set_alarm(at).unwrap();
            assert_eq!(storage.get_alarm().unwrap(), Some(at));
        }
        let storage = Storage::open(&path).unwrap();
        assert_eq!(storage.get_alarm().unwrap(), Some(at));
        storage.delete_alarm().unwrap();
        assert_eq!(storage.get_alarm().unwrap(), None);
        drop(storage);
        let storage = Storage::open(&path).unwrap();
        assert_eq!(storage.get_alarm().unwrap(), None);
    }

    #[test]
    fn writes_survive_reopen() {
        let dir = TempDir::new("durable");
        let path = dir.0.join("nested").join("object.sqlite");
        {
            let storage = Storage::open(&path).unwrap();
            storage.put("k", &vec![1, 2, 3]).unwrap();
            storage.transaction(|tx| tx.put("t", "committed")).unwrap();
            storage.sql_exec("CREATE TABLE t (x)", &[]).unwrap();
            storage
                .sql_exec("INSERT INTO t VALUES (?)", &[Value::from("row")])
                .unwrap();
        }
        let storage = Storage::open(&path).unwrap();
        assert_eq!(storage.get::<Vec<i32>>("k").unwrap(), Some(vec![1, 2, 3]));
        assert_eq!(
            storage.get::<String>("t").unwrap().as_deref(),
            Some("committed")
        );
        let rows = storage.sql_exec("SELECT x FROM t", &[]).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["x"], Value::from("row"));
        drop(storage);
        drop(dir);
    }

    #[test]
    fn after_prefix_is_the_least_string_past_the_prefix() {
        assert_eq!(after_prefix("ab").as_deref(), Some("ac"));
        assert_eq!(after_prefix("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(after_prefix("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(after_prefix("\u{10FFFF}"), None);
    }
}
