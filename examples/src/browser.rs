//! The browser example: a small notes board that a web page calls with capnweb.
//!
//! [`Board`] is the main object of every session. `board.list(title)` hands out a
//! [`NoteList`] by reference (so `board.list("inbox").add("milk")` is one round trip),
//! `NoteList::each` calls back into a function the page passes, and `NoteList::export`
//! and [`Board::download`] return byte streams. [`router`] serves the board at `/rpc`
//! next to the page (`index.html`, `app.js`) and capnweb's ESM build, taken from the npm
//! package installed in `examples/browser/node_modules`.

use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use bytes::Bytes;
use capwire::{Function, ReadableStream, RpcError, entrypoint, rpc_target};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The most lists a board keeps: titles come from the page, so a caller must not decide
/// how much the server holds.
pub const MAX_LISTS: usize = 100;
/// The most notes one list keeps.
pub const MAX_NOTES: usize = 1000;
/// The longest title or note, in characters.
pub const MAX_TEXT: usize = 1000;
/// The longest stream `download` makes.
pub const MAX_DOWNLOAD: u32 = 16 << 20;
/// The largest chunk `download` makes.
const CHUNK: u32 = 16 * 1024;

/// The notes of every list, shared by all sessions of one server.
#[derive(Default)]
pub struct Notes {
    lists: Mutex<BTreeMap<String, Arc<Mutex<Vec<String>>>>>,
}

impl Notes {
    /// The notes of the list `title`, or `None` when no list has that title.
    pub fn get(&self, title: &str) -> Option<Vec<String>> {
        let lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        let notes = lists.get(title)?;
        Some(notes.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

/// The main object of each session: a board of note lists.
pub struct Board {
    notes: Arc<Notes>,
}

impl Board {
    /// A board over `notes` (shared with the server's other sessions).
    pub fn new(notes: Arc<Notes>) -> Board {
        Board { notes }
    }
}

/// Checks that `text` (a title or a note) is not empty and at most [`MAX_TEXT`] long.
fn check_text(what: &str, text: &str) -> Result<(), RpcError> {
    if text.trim().is_empty() {
        return Err(RpcError::range(format!("the {what} is empty")));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(RpcError::range(format!(
            "the {what} is longer than {MAX_TEXT} characters"
        )));
    }
    Ok(())
}

#[entrypoint]
impl Board {
    /// `"Hello, {name}!"`.
    pub fn greet(&self, name: String) -> Result<String, RpcError> {
        check_text("name", &name)?;
        Ok(format!("Hello, {name}!"))
    }

    /// The list named `title`, by reference: an empty one on first use. At most
    /// [`MAX_LISTS`] lists exist.
    pub fn list(&self, title: String) -> Result<NoteList, RpcError> {
        check_text("title", &title)?;
        let mut lists = self
            .notes
            .lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if !lists.contains_key(&title) && lists.len() >= MAX_LISTS {
            return Err(RpcError::range(format!(
                "the board holds at most {MAX_LISTS} lists"
            )));
        }
        let notes = lists.entry(title.clone()).or_default().clone();
        Ok(NoteList { title, notes })
    }

    /// The titles of the board's lists, in order.
    pub fn titles(&self) -> Vec<String> {
        let lists = self
            .notes
            .lists
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        lists.keys().cloned().collect()
    }

    /// A stream of exactly `n` bytes, byte `k` being `k % 251`, in chunks of at most
    /// 16 KiB, made as it is read. `n` is at most [`MAX_DOWNLOAD`].
    pub fn download(&self, n: u32) -> Result<ReadableStream, RpcError> {
        if n > MAX_DOWNLOAD {
            return Err(RpcError::range(format!(
                "a download is at most {MAX_DOWNLOAD} bytes, not {n}"
            )));
        }
        Ok(ReadableStream::new(futures::stream::unfold(
            0,
            move |k| async move {
                (k < n).then(|| {
                    let end = n.min(k + CHUNK);
                    let chunk: Vec<u8> = (k..end).map(|i| (i % 251) as u8).collect();
                    (Ok::<_, RpcError>(chunk), end)
                })
            },
        )))
    }
}

/// One list of notes, handed out by reference.
pub struct NoteList {
    title: String,
    notes: Arc<Mutex<Vec<String>>>,
}

impl NoteList {
    fn snapshot(&self) -> Vec<String> {
        self.notes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[rpc_target]
impl NoteList {
    /// The list's title (a property on the wire).
    #[rpc(getter)]
    pub fn title(&self) -> String {
        self.title.clone()
    }

    /// Appends `text` and returns how many notes the list now holds (at most
    /// [`MAX_NOTES`]).
    pub fn add(&self, text: String) -> Result<u32, RpcError> {
        check_text("note", &text)?;
        let mut notes = self.notes.lock().unwrap_or_else(PoisonError::into_inner);
        if notes.len() >= MAX_NOTES {
            return Err(RpcError::range(format!(
                "a list holds at most {MAX_NOTES} notes"
            )));
        }
        notes.push(text);
        Ok(notes.len() as u32)
    }

    /// The notes, in the order they were added.
    pub fn notes(&self) -> Vec<String> {
        self.snapshot()
    }

    /// Calls `visit(index, note)` for each note in order, waiting for each call, and
    /// returns how many it visited: the server calling back into the page.
    pub async fn each(&self, visit: Function<(u32, String), ()>) -> Result<u32, RpcError> {
        let notes = self.snapshot();
        for (i, note) in notes.iter().enumerate() {
            visit.call((i as u32, note.clone())).await?;
        }
        Ok(notes.len() as u32)
    }

    /// The notes as UTF-8 text, one line each, streamed one note per chunk.
    pub fn export(&self) -> ReadableStream {
        let lines = self.snapshot().into_iter().map(|note| {
            let mut line = note.into_bytes();
            line.push(b'\n');
            Ok::<_, RpcError>(line)
        });
        ReadableStream::new(futures::stream::iter(lines))
    }
}

/// The directory holding the page and its `node_modules`: `examples/browser`.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// capnweb's ESM build inside the example's `node_modules`. Its package's default
/// `import` export, which imports no other file, so the page can load it by itself.
const CAPNWEB_ESM: &str = "node_modules/capnweb/dist/index.js";

/// The files the page is made of, read once at start-up.
#[derive(Clone)]
pub struct Assets {
    index_html: Bytes,
    app_js: Bytes,
    capnweb_js: Bytes,
    capnweb_map: Option<Bytes>,
}

impl Assets {
    /// Reads the page from `dir` (see [`default_dir`]). Fails with a message saying what
    /// to do when a file is missing, in particular when `npm ci` has not been run there.
    pub fn load(dir: &Path) -> Result<Assets, String> {
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map(Bytes::from)
                .map_err(|e| format!("cannot read {}: {e}", dir.join(name).display()))
        };
        let capnweb_js = read(CAPNWEB_ESM).map_err(|e| {
            format!(
                "{e}\ncapnweb is not installed for the browser example: run `npm ci` in {} first",
                dir.display()
            )
        })?;
        Ok(Assets {
            index_html: read("index.html")?,
            app_js: read("app.js")?,
            capnweb_js,
            capnweb_map: read(&format!("{CAPNWEB_ESM}.map")).ok(),
        })
    }
}

/// A static file's response: `content_type`, never cached (the example is for
/// tinkering), never sniffed.
fn file(content_type: &'static str, body: Bytes) -> axum::response::Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// The example's app: the page at `/` (`index.html`, `app.js`, and capnweb at
/// `/vendor/capnweb/index.js`) and the board's RPC, `rpc`, at `/rpc`. `rpc` is the route
/// serving [`Board`]s, as [`app`] makes it.
pub fn router(assets: Assets, rpc: axum::routing::MethodRouter) -> axum::Router {
    use axum::routing::get;
    let html = assets.index_html.clone();
    let html2 = assets.index_html.clone();
    let app_js = assets.app_js.clone();
    let capnweb_js = assets.capnweb_js.clone();
    let mut router = axum::Router::new()
        .route(
            "/",
            get(move || async move { file("text/html; charset=utf-8", html) }),
        )
        .route(
            "/index.html",
            get(move || async move { file("text/html; charset=utf-8", html2) }),
        )
        .route(
            "/app.js",
            get(move || async move { file("text/javascript; charset=utf-8", app_js) }),
        )
        .route(
            "/vendor/capnweb/index.js",
            get(move || async move { file("text/javascript; charset=utf-8", capnweb_js) }),
        )
        .route("/rpc", rpc);
    if let Some(map) = assets.capnweb_map {
        router = router.route(
            "/vendor/capnweb/index.js.map",
            get(move || async move { file("application/json", map) }),
        );
    }
    router
}

/// The whole example app over one board: [`router`] with [`Board`]s at `/rpc` under
/// capwire's default limits, and `cors` deciding which other origins' pages may call
/// (a page of the server's own origin, and a request without `Origin`, always may).
/// A refused origin's batch, WebSocket upgrade or preflight is answered `403` before any
/// call runs.
pub fn app(assets: Assets, notes: Arc<Notes>, cors: capwire::CorsPolicy) -> axum::Router {
    let rpc = capwire::RpcRoute::new(move || Board::new(notes.clone()))
        .cors(cors)
        .build();
    router(assets, rpc)
}
