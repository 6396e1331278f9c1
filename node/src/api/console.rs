//! The web console (docs/console.md): static assets embedded in the binary and
//! served at `GET /console` and `GET /console/{asset}`.
//!
//! The console is a single-page app that reads the same public routes an
//! anonymous caller reads (`/v1/status`, `/v1/blocks/…`, `/v1/attestations/…`,
//! `/v1/subjects/…`, `/metrics`): it has no route of its own and sees exactly
//! what the API shows an unauthenticated client (docs/access.md). Nothing is
//! fetched from anywhere else: the Content-Security-Policy allows only this
//! origin, and no inline script.

use super::ApiPath;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Every file of the console, by the name it is served under.
const ASSETS: &[Asset] = &[
    Asset { name: "index.html", content_type: "text/html; charset=utf-8", body: include_bytes!("../../console/index.html") },
    Asset { name: "app.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../console/app.js") },
    Asset { name: "verify.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../console/verify.js") },
    Asset { name: "governance.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../console/governance.js") },
    Asset { name: "ed25519.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../console/ed25519.js") },
    Asset { name: "i18n.js", content_type: "text/javascript; charset=utf-8", body: include_bytes!("../../console/i18n.js") },
    Asset { name: "style.css", content_type: "text/css; charset=utf-8", body: include_bytes!("../../console/style.css") },
    Asset { name: "favicon.svg", content_type: "image/svg+xml", body: include_bytes!("../../console/favicon.svg") },
];

/// Same origin only, no inline script or style, no framing, no plugins: the page
/// talks to the node that served it and to nothing else.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Browsers revalidate every load (`no-cache` with an ETag): assets change with
/// the binary, and a 304 costs one round trip on loopback or a LAN.
const CACHE_CONTROL: &str = "no-cache";

/// `GET /console` and `GET /console/`: the page.
pub(super) async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /console/{asset}`: one of [`ASSETS`], else 404 `not_found`.
pub(super) async fn asset(ApiPath(name): ApiPath<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == name) else {
        return ApiError::not_found(format!("no console asset {name:?}")).into_response();
    };
    let etag = etag(asset.body);
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let mut resp = if fresh { status.into_response() } else { (status, asset.body).into_response() };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// A strong validator: the first 16 hex digits of the body's SHA-256.
fn etag(body: &[u8]) -> String {
    let digest = yrd_consensus::crypto::sha256(&[body]);
    format!("\"{}\"", &hex::encode(digest.0)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_type_and_a_body() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.name);
            assert!(a.content_type.contains('/'), "{}", a.name);
        }
    }

    #[test]
    fn the_page_loads_only_its_own_scripts() {
        let html = std::str::from_utf8(ASSETS[0].body).expect("utf-8");
        assert!(html.contains("src=\"/console/app.js\""));
        assert!(!html.contains("http://") && !html.contains("https://"), "no outside requests");
        // No inline script: every <script> has a src.
        for part in html.split("<script").skip(1) {
            let tag = part.split('>').next().unwrap_or_default();
            assert!(tag.contains("src="), "inline script: <script{tag}>");
        }
    }
}
