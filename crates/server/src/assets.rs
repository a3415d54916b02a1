//! The web client's static files, embedded at build time (see `build.rs`).

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Shown at `/` when the binary was built without `web/dist`.
pub const FALLBACK_INDEX: &str = "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>StreamChat</title></head><body><h1>StreamChat</h1>\
<p>The server is running, but this binary was built without the web client. \
Build it with <code>npm --prefix web ci &amp;&amp; npm --prefix web run build</code>, \
then rebuild the server (or use <code>scripts/run</code>).</p></body></html>\n";

/// Finds an embedded file by URL path.
pub fn find(path: &str) -> Option<&'static [u8]> {
    ASSETS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, bytes)| *bytes)
}

/// The Content-Type for a file name.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" | "map" => "application/json",
        "webmanifest" => "application/manifest+json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}
