//! The to-do app of the Workers RPC seed: a `todo` worker with an `AdminEntrypoint`
//! (`create_user`, `delete_user`) and a `UserEntrypoint` (`get_tasks`, `create_task`) over
//! SQLite (standing in for D1), and an admin app whose binding names `AdminEntrypoint`.

use capwire::host::{Ctx, Entrypoint, Env};
use capwire::{RpcError, Stub, entrypoint};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The database: one SQLite connection shared by every invocation (a D1 binding's role),
/// registered with the host as the `DB` resource.
#[derive(Clone)]
pub struct Database(Arc<Mutex<rusqlite::Connection>>);

impl Database {
    /// An in-memory database with the app's schema.
    pub fn in_memory() -> rusqlite::Result<Database> {
        let conn = rusqlite::Connection::open_in_memory()?;
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE tasks (
                 id INTEGER PRIMARY KEY,
                 user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
                 title TEXT NOT NULL
             );",
        )?;
        Ok(Database(Arc::new(Mutex::new(conn))))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> Result<T, RpcError> {
        let conn = self
            .0
            .lock()
            .map_err(|_| RpcError::error("the database lock is poisoned"))?;
        f(&conn).map_err(|e| RpcError::error(format!("database: {e}")))
    }
}

fn db(env: &Env) -> Result<Database, RpcError> {
    env.resource::<Database>("DB")
}

/// A task.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, capwire::typescript::TS)]
#[ts(crate = "capwire::typescript::ts_rs")]
pub struct Task {
    /// Its ID.
    pub id: i64,
    /// Its title.
    pub title: String,
}

/// The to-do worker's default entrypoint.
pub struct TodoApp;

impl Entrypoint for TodoApp {
    fn new(_env: Env, _ctx: Ctx) -> Self {
        TodoApp
    }
}

#[entrypoint]
impl TodoApp {
    /// What this worker is.
    pub fn about(&self) -> String {
        "to-do app: use AdminEntrypoint or UserEntrypoint".into()
    }
}

/// Administration: users.
pub struct AdminEntrypoint {
    env: Env,
}

impl Entrypoint for AdminEntrypoint {
    fn new(env: Env, _ctx: Ctx) -> Self {
        AdminEntrypoint { env }
    }
}

#[entrypoint]
impl AdminEntrypoint {
    /// Creates a user; returns its ID.
    pub fn create_user(&self, name: String) -> Result<i64, RpcError> {
        db(&self.env)?.with(|c| {
            c.execute("INSERT INTO users (name) VALUES (?1)", [&name])?;
            Ok(c.last_insert_rowid())
        })
    }

    /// Deletes a user and their tasks; returns whether the user existed.
    pub fn delete_user(&self, id: i64) -> Result<bool, RpcError> {
        db(&self.env)?.with(|c| Ok(c.execute("DELETE FROM users WHERE id = ?1", [id])? == 1))
    }
}

/// A user's tasks.
pub struct UserEntrypoint {
    env: Env,
}

impl Entrypoint for UserEntrypoint {
    fn new(env: Env, _ctx: Ctx) -> Self {
        UserEntrypoint { env }
    }
}

#[entrypoint]
impl UserEntrypoint {
    /// The tasks of user `user_id`, oldest first.
    pub fn get_tasks(&self, user_id: i64) -> Result<Vec<Task>, RpcError> {
        db(&self.env)?.with(|c| {
            let mut stmt =
                c.prepare("SELECT id, title FROM tasks WHERE user_id = ?1 ORDER BY id")?;
            let rows = stmt.query_map([user_id], |r| {
                Ok(Task {
                    id: r.get(0)?,
                    title: r.get(1)?,
                })
            })?;
            rows.collect()
        })
    }

    /// Adds a task for user `user_id`.
    pub fn create_task(&self, user_id: i64, title: String) -> Result<Task, RpcError> {
        db(&self.env)?.with(|c| {
            c.execute(
                "INSERT INTO tasks (user_id, title) VALUES (?1, ?2)",
                rusqlite::params![user_id, title],
            )?;
            Ok(Task {
                id: c.last_insert_rowid(),
                title,
            })
        })
    }
}

/// The admin app: reaches the to-do worker only through its `AdminEntrypoint` binding.
pub struct AdminApp {
    env: Env,
}

impl Entrypoint for AdminApp {
    fn new(env: Env, _ctx: Ctx) -> Self {
        AdminApp { env }
    }
}

#[entrypoint]
impl AdminApp {
    /// Creates users `names` through the `TODO_ADMIN` binding; returns their IDs.
    pub async fn onboard(&self, names: Vec<String>) -> Result<Vec<i64>, RpcError> {
        let admin: Stub<AdminEntrypoint> = self.env.service("TODO_ADMIN")?;
        let mut ids = Vec::new();
        for name in names {
            ids.push(admin.create_user(name).await?);
        }
        Ok(ids)
    }

    /// Removes user `id` through the binding.
    pub async fn offboard(&self, id: i64) -> Result<bool, RpcError> {
        let admin: Stub<AdminEntrypoint> = self.env.service("TODO_ADMIN")?;
        admin.delete_user(id).await
    }
}

/// Registers the to-do app's types and its database.
pub fn register(
    builder: capwire::host::HostBuilder,
) -> Result<capwire::host::HostBuilder, RpcError> {
    let db = Database::in_memory().map_err(|e| RpcError::error(format!("database: {e}")))?;
    Ok(builder
        .resource("DB", db)
        .entrypoint::<TodoApp>("TodoApp")
        .entrypoint::<AdminEntrypoint>("AdminEntrypoint")
        .entrypoint::<UserEntrypoint>("UserEntrypoint")
        .entrypoint::<AdminApp>("AdminApp"))
}
