//! The monitor page the HTTP service serves at `/`: plain HTML, CSS and a little
//! JavaScript, shipped inside the binary (no build step, nothing fetched from
//! elsewhere). The page reads the API's own routes with the token the IT desk
//! types in; docs/http.md describes what it shows.

/// One of the page's files.
pub struct File {
    pub content_type: &'static str,
    pub body: &'static str,
}

const PAGE: File = File { content_type: "text/html; charset=utf-8", body: include_str!("monitor/index.html") };
const SCRIPT: File = File { content_type: "text/javascript; charset=utf-8", body: include_str!("monitor/monitor.js") };
const STYLE: File = File { content_type: "text/css; charset=utf-8", body: include_str!("monitor/monitor.css") };

/// The file served at `path`, if it is one of the page's.
pub fn file(path: &str) -> Option<&'static File> {
    match path {
        "/" | "/index.html" => Some(&PAGE),
        "/monitor.js" => Some(&SCRIPT),
        "/monitor.css" => Some(&STYLE),
        _ => None,
    }
}
