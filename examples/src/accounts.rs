//! Session context: a login cookie checked in an axum middleware, and each RPC session's
//! main object made for the user the cookie names.
//!
//! `POST /login` with a user name as its body answers with a `session` cookie. At `/rpc`
//! a middleware looks the cookie up and puts the [`LoggedIn`] user into the request's
//! extensions (or answers `401`); the session factory reads it from the
//! [`SessionContext`] and makes an [`Account`] that can reach only that user's notes.
//! Because the factory reads the request, the route's default
//! [`CorsPolicy`](capwire::CorsPolicy) refuses pages of other origins: a foreign page
//! whose request carries the user's cookie cannot act as the user.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use capwire::{RpcError, RpcRoute, SessionContext, rpc_target};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Who a request's cookie says is logged in; the middleware puts it into the request's
/// extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedIn(pub String);

/// The app's state: login sessions and every user's notes.
#[derive(Default)]
pub struct Accounts {
    /// Session token → user name.
    logins: Mutex<HashMap<String, String>>,
    /// Note ID → (owner, text).
    notes: Mutex<Vec<(String, String)>>,
}

impl Accounts {
    /// Logs `user` in: a fresh, unguessable session token.
    pub fn log_in(&self, user: &str) -> String {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("the system's random source works");
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        lock(&self.logins).insert(token.clone(), user.to_owned());
        token
    }

    fn user_of(&self, token: &str) -> Option<String> {
        lock(&self.logins).get(token).cloned()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One user's view of the app: the main object of that user's RPC sessions.
pub struct Account {
    user: String,
    accounts: Arc<Accounts>,
}

#[rpc_target]
impl Account {
    /// The logged-in user's name.
    pub fn whoami(&self) -> String {
        self.user.clone()
    }

    /// Adds a note; returns its ID.
    pub fn add_note(&self, text: String) -> u32 {
        let mut notes = lock(&self.accounts.notes);
        notes.push((self.user.clone(), text));
        (notes.len() - 1) as u32
    }

    /// The note with this ID, if it is this user's: another user's note is answered
    /// exactly as a missing one, so IDs reveal nothing.
    pub fn note(&self, id: u32) -> Result<String, RpcError> {
        lock(&self.accounts.notes)
            .get(id as usize)
            .filter(|(owner, _)| *owner == self.user)
            .map(|(_, text)| text.clone())
            .ok_or_else(|| RpcError::new("RangeError", format!("no note {id}")))
    }

    /// This user's notes, oldest first.
    pub fn notes(&self) -> Vec<String> {
        lock(&self.accounts.notes)
            .iter()
            .filter(|(owner, _)| *owner == self.user)
            .map(|(_, text)| text.clone())
            .collect()
    }
}

/// The session factory: the user the middleware found, or no session at all.
fn account_for(ctx: &SessionContext, accounts: &Arc<Accounts>) -> capwire::RpcStub {
    match ctx.extensions().get::<LoggedIn>() {
        Some(LoggedIn(user)) => capwire::RpcStub::new(Account {
            user: user.clone(),
            accounts: accounts.clone(),
        }),
        // Unreachable behind the middleware; refuse rather than serve a nobody.
        None => capwire::RpcStub::broken(RpcError::error("not logged in")),
    }
}

/// The `session` cookie's value, if the request has one.
fn session_cookie(request: &Request) -> Option<&str> {
    request
        .headers()
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix("session="))
}

/// The middleware: `401` without a valid session cookie, else the user as [`LoggedIn`].
async fn require_login(
    State(accounts): State<Arc<Accounts>>,
    mut request: Request,
    next: Next,
) -> Response {
    // A CORS preflight never carries cookies: the route's CorsPolicy answers it.
    if request.method() == http::Method::OPTIONS {
        return next.run(request).await;
    }
    let Some(user) = session_cookie(&request).and_then(|t| accounts.user_of(t)) else {
        return (http::StatusCode::UNAUTHORIZED, "log in first").into_response();
    };
    request.extensions_mut().insert(LoggedIn(user));
    next.run(request).await
}

/// `POST /login` with the user name as the body: sets the `session` cookie.
async fn login(State(accounts): State<Arc<Accounts>>, user: String) -> Response {
    let user = user.trim();
    if user.is_empty() {
        return (http::StatusCode::BAD_REQUEST, "name a user").into_response();
    }
    let token = accounts.log_in(user);
    (
        [(
            http::header::SET_COOKIE,
            format!("session={token}; HttpOnly; SameSite=Lax; Path=/"),
        )],
        "logged in",
    )
        .into_response()
}

/// The app: `POST /login`, and RPC at `/rpc` for logged-in users.
pub fn app(accounts: Arc<Accounts>) -> axum::Router {
    let for_sessions = accounts.clone();
    let rpc = RpcRoute::new(move |ctx: &SessionContext| account_for(ctx, &for_sessions))
        .build()
        .layer(axum::middleware::from_fn_with_state(
            accounts.clone(),
            require_login,
        ));
    axum::Router::new()
        .route("/login", axum::routing::post(login))
        .route("/rpc", rpc)
        .with_state(accounts)
}
