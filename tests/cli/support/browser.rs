//! A scripted browser for the authorization step: it opens the authorization URL at the fake
//! authorization server, takes the `302`, and delivers the `Location` to the app's loopback
//! callback, sending the headers a real top-level navigation carries (`Sec-Fetch-*`,
//! `Accept`, a browser `User-Agent`). `location_of` stops before the callback so a test can
//! tamper with the redirect, then hand it to `deliver`.

#![allow(dead_code)]

use super::http::{self, Response};

/// Headers of a top-level navigation; `Sec-Fetch-Site` is added per request.
pub const NAVIGATION_HEADERS: &[(&str, &str)] = &[
    (
        "User-Agent",
        "Mozilla/5.0 (X11; Linux x86_64) oauth-pkce-test-browser/1.0",
    ),
    (
        "Accept",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    ),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
];

/// GET the authorization URL, expect a `302`, GET its `Location` (the app's callback) and
/// return that final response.
pub fn follow_authorization(authorize_url: &str) -> Response {
    deliver(&location_of(authorize_url))
}

/// GET the authorization URL and return the `302` `Location` without following it; panics
/// (showing the status and page) on anything but a redirect.
pub fn location_of(authorize_url: &str) -> String {
    let response = open(authorize_url);
    assert_eq!(
        response.status, 302,
        "authorization server did not redirect: {} {:?}",
        response.status, response.body
    );
    response
        .header("location")
        .expect("302 without Location")
        .to_string()
}

/// Navigate to a URL typed or opened by the user (`Sec-Fetch-Site: none`).
pub fn open(url: &str) -> Response {
    http::get(url, &navigation("none"))
}

/// Navigate to a callback URL as the end of a redirect from the authorization server
/// (`Sec-Fetch-Site: cross-site`).
pub fn deliver(callback_url: &str) -> Response {
    http::get(callback_url, &navigation("cross-site"))
}

fn navigation(site: &'static str) -> Vec<(&'static str, &'static str)> {
    let mut headers = NAVIGATION_HEADERS.to_vec();
    headers.push(("Sec-Fetch-Site", site));
    headers
}
