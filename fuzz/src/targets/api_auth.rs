//! The signature headers of a signed API request (`api::auth::RequestAuth::
//! authenticate`): five header values and a path from the input, or a real
//! lender's signed request with one part replaced by the input.
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use crate::{with_fixture, Bytes, NOW_MS};
use yrd_ledger::queries::{Nonce, SignedRequest};
use yrd_node::api::auth::{RequestAuth, HEADER_KEY, HEADER_NODE, HEADER_NONCE, HEADER_SIGNATURE, HEADER_TIMESTAMP};

const NAMES: [&str; 5] = [HEADER_KEY, HEADER_NODE, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE];

/// One execution: panics when a property fails.
pub fn run(data: &[u8]) {
    let mut input = Bytes(data);
    let mode = input.u8();
    let nonce = Nonce(input.array::<16>());
    let rest = input.rest();
    with_fixture(|f| {
        let membership = &f.membership;
        let auth = RequestAuth::new(120_000);
        // The node the requests are sent to: validator 0.
        let node = f.chain.validator_keys[0].public();
        let mut headers = HeaderMap::new();
        let mut path = "/v1/status".to_string();
        if mode & 1 == 0 {
            // Raw: up to five values separated by 0xff, then the path.
            let mut parts = rest.split(|b| *b == 0xff);
            for name in NAMES {
                if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
                    if let Ok(v) = HeaderValue::from_bytes(v) {
                        headers.insert(name, v);
                    }
                }
            }
            if let Some(p) = parts.next() {
                path = String::from_utf8_lossy(p).into_owned();
            }
        } else {
            // A genuine request by lender 0, one header replaced by the input.
            let Ok(req) = SignedRequest::sign(&f.chain.lender_keys[0], &f.chain.chain, &node, "GET", &path, b"", NOW_MS, nonce) else { return };
            for (name, value) in req.headers(&node) {
                headers.insert(name, HeaderValue::from_str(&value).expect("our own headers are ASCII"));
            }
            let which = NAMES[usize::from(mode >> 1) % NAMES.len()];
            if mode & 0x80 != 0 {
                headers.remove(which);
            } else if let Ok(v) = HeaderValue::from_bytes(rest) {
                headers.insert(which, v);
            }
        }
        let Ok(uri) = path.parse::<Uri>() else { return };
        let anonymous = NAMES.iter().all(|n| !headers.contains_key(*n));
        match auth.authenticate(&f.chain.chain, &node, membership, &Method::GET, &uri, &headers, NOW_MS) {
            Ok(caller) => {
                assert_eq!(caller.request.is_none(), anonymous, "a request was taken as anonymous or signed wrongly");
                if let Some(req) = &caller.request {
                    assert!(req.verify(&f.chain.chain, &node).is_ok(), "an accepted request does not verify");
                    // The same headers again: a replay.
                    let again = auth.authenticate(&f.chain.chain, &node, membership, &Method::GET, &uri, &headers, NOW_MS);
                    assert_eq!(again.err().map(|e| e.code()), Some("replayed_request"));
                }
            }
            Err(e) => {
                assert!(!anonymous, "an anonymous request was refused: {}", e.code());
                assert!(matches!(e.status().as_u16(), 401 | 403 | 503), "status {} for {}", e.status(), e.code());
            }
        }
    });
}
