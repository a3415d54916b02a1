//! Plain HTTP: `/health`, `/metrics`, the web client's files, and the security headers
//! every response carries.

use crate::assets;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::set_header::SetResponseHeaderLayer;

/// The Content-Security-Policy of every response: scripts, styles and connections from
/// this origin only, media from blob: URLs (decrypted files), no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
style-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; connect-src 'self'; \
font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Routes of the plain HTTP side.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .fallback(get(static_file))
        .with_state(state)
}

/// The request headers Socket.IO's transports and StreamChat read; the others are
/// dropped before the connection is admitted.
const KEPT_SOCKET_IO_HEADERS: [HeaderName; 9] = [
    header::HOST,
    header::ORIGIN,
    header::CONNECTION,
    header::UPGRADE,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    HeaderName::from_static("x-forwarded-for"),
];

/// Gives a Socket.IO request its own small copies of the URI and the headers it needs.
///
/// hyper parses a request without copying: the URI and every header value are slices
/// of the connection's read buffer (8–16 KiB). engineioxide keeps the request's parts
/// for the whole life of the session, so those slices kept the whole buffer alive: 16 KiB
/// of every idle connection's 31 KiB (heaptrack, docs/benchmarks.md). Copying the few
/// bytes that are still needed lets the buffer go once the request is read. It also
/// means a connection keeps no header it does not need (cookies, user agent).
pub async fn compact_socket_io_request(mut req: axum::extract::Request) -> axum::extract::Request {
    if !req.uri().path().starts_with("/socket.io") {
        return req;
    }
    if let Ok(uri) = Uri::try_from(req.uri().to_string()) {
        *req.uri_mut() = uri;
    }
    let old = std::mem::take(req.headers_mut());
    let wanted = |name: &HeaderName| KEPT_SOCKET_IO_HEADERS.contains(name);
    let mut kept = HeaderMap::with_capacity(old.keys().filter(|n| wanted(n)).count());
    for (name, value) in old.iter().filter(|(n, _)| wanted(n)) {
        // `from_bytes` copies; the value was valid already.
        if let Ok(value) = HeaderValue::from_bytes(value.as_bytes()) {
            kept.append(name.clone(), value);
        }
    }
    *req.headers_mut() = kept;
    req
}

/// Adds the security headers to every response of `router`, Socket.IO's included.
pub fn with_security_headers(mut router: Router) -> Router {
    let headers: [(HeaderName, &'static str); 6] = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            HeaderName::from_static("permissions-policy"),
            "camera=(), microphone=(), geolocation=(), interest-cohort=()",
        ),
    ];
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::overriding(
            name,
            HeaderValue::from_static(value),
        ));
    }
    router
}

async fn health(State(state): State<AppState>) -> Response {
    let dependencies = state.cluster.dependencies();
    let all_up = dependencies.iter().all(|(_, up)| *up);
    let status = if state.is_shutting_down() {
        "shutting_down"
    } else if all_up {
        "ok"
    } else {
        "degraded"
    };
    let dependencies: serde_json::Map<String, serde_json::Value> = dependencies
        .into_iter()
        .map(|(name, up)| (name.to_owned(), (if up { "up" } else { "down" }).into()))
        .collect();
    let body = serde_json::json!({
        "status": status,
        "dependencies": dependencies,
        "version": env!("CARGO_PKG_VERSION"),
        "backend": state.cluster.backend(),
        "connections": state.metrics.connections.get(),
        "rooms": state.rooms.room_count(),
        "web_client": crate::assets::WEB_CLIENT_BUILT,
    });
    let status = if status == "ok" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    state
        .metrics
        .window_bytes
        .set(state.rooms.window_bytes() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn static_file(uri: Uri) -> Response {
    let path = match uri.path() {
        "/" => "/index.html",
        other => other,
    };
    match assets::find(path) {
        Some(bytes) => {
            // Vite fingerprints everything under /assets/: cache it for good.
            let cache = if path.starts_with("/assets/") {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            };
            (
                [
                    (header::CONTENT_TYPE, assets::content_type(path)),
                    (header::CACHE_CONTROL, cache),
                ],
                bytes,
            )
                .into_response()
        }
        None if path == "/index.html" => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            assets::FALLBACK_INDEX,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}
