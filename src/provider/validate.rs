//! A provider definition's checks, after parsing: each error names the key.

use super::*;

impl Provider {
    pub(super) fn validate(&self) -> std::result::Result<(), String> {
        let valid_name = !self.name.is_empty()
            && self
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err(format!(
                "key `name`: `{}` must be lower-case letters, digits, `-` or `_`",
                self.name
            ));
        }
        if self.display_name.trim().is_empty() {
            return Err("key `display_name`: must not be empty".into());
        }
        check_endpoint("authorization_url", &self.authorization_url)?;
        check_endpoint("token_url", &self.token_url)?;
        if let Some(issuer) = &self.issuer {
            // Compared as the exact string (RFC 9207), so kept as one; still a URL.
            let url = url::Url::parse(issuer)
                .map_err(|e| format!("key `issuer`: `{issuer}` is not a URL ({e})"))?;
            check_endpoint("issuer", &url)?;
        }
        if let Some(host) = self.git_hosts.iter().find(|h| {
            h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
        }) {
            return Err(format!(
                "key `git_hosts`: `{host}` must be a host name (and port), like `github.com`"
            ));
        }
        if self.require_iss && self.issuer.is_none() {
            return Err("key `require_iss`: needs `issuer`".into());
        }
        if let Some(url) = &self.revocation_url {
            check_endpoint("revocation_url", url)?;
        }
        if let Some(url) = &self.device_authorization_url {
            check_endpoint("device_authorization_url", url)?;
        }
        if let Some(url) = &self.api_base_url {
            check_endpoint("api_base_url", url)?;
        }
        if let Some(check) = &self.check {
            check_endpoint("check.url", &check.url)?;
            let method = check.method.to_ascii_uppercase();
            if !matches!(method.as_str(), "GET" | "POST" | "HEAD") {
                return Err(format!(
                    "key `check.method`: `{}` must be GET, POST or HEAD",
                    check.method
                ));
            }
            check_headers("check.headers", &check.headers, &["authorization"])?;
            if !is_token_word(&check.auth_scheme) {
                return Err(format!(
                    "key `check.auth_scheme`: `{}` must be one word such as Bearer",
                    check.auth_scheme
                ));
            }
            if let Some(field) = &check.success_field {
                if !field.split('.').all(is_token_word) {
                    return Err(format!(
                        "key `check.success_field`: `{field}` must be JSON field names joined by `.`"
                    ));
                }
            }
        }
        if !is_secret_name(&self.secret_prefix) {
            return Err(format!(
                "key `secret_prefix`: `{}` must match ^[A-Z_][A-Z0-9_]*$ (Doppler secret names)",
                self.secret_prefix
            ));
        }
        if !matches!(self.redirect_host.as_str(), "localhost" | "127.0.0.1") {
            return Err(format!(
                "key `redirect_host`: `{}` must be \"localhost\" or \"127.0.0.1\" (the callback listens on loopback only)",
                self.redirect_host
            ));
        }
        let path_ok = self.redirect_path.starts_with('/')
            && !self.redirect_path.contains(['?', '#', ' ', '%'])
            && !self.redirect_path.contains("//");
        if !path_ok {
            return Err(format!(
                "key `redirect_path`: `{}` must be a plain path starting with `/`",
                self.redirect_path
            ));
        }
        if !matches!(self.scope_separator.as_str(), " " | ",") {
            return Err(format!(
                "key `scope_separator`: `{}` must be \" \" or \",\"",
                self.scope_separator
            ));
        }
        for scope in &self.scopes {
            if scope.is_empty() || scope.contains([' ', ',']) {
                return Err(format!(
                    "key `scopes`: `{scope}` must be one non-empty scope without spaces or commas"
                ));
            }
        }
        if !is_token_word(&self.scope_parameter)
            || RESERVED_AUTHORIZATION_PARAMS.contains(&self.scope_parameter.as_str())
        {
            return Err(format!(
                "key `scope_parameter`: `{}` must be a parameter name oauth-pkce does not set itself",
                self.scope_parameter
            ));
        }
        for reserved in RESERVED_AUTHORIZATION_PARAMS
            .iter()
            .chain([&"scope", &self.scope_parameter.as_str()])
        {
            if self.authorization_params.contains_key(*reserved) {
                return Err(format!(
                    "key `authorization_params.{reserved}`: set by oauth-pkce itself (use `scopes` for scopes)"
                ));
            }
        }
        if let Some(path) = &self.token_response_path {
            if !path.split('.').all(is_token_word) {
                return Err(format!(
                    "key `token_response_path`: `{path}` must be field names joined by `.`"
                ));
            }
        }
        if self
            .limitations
            .as_deref()
            .is_some_and(|l| l.trim().is_empty())
        {
            return Err("key `limitations`: must not be empty when present".into());
        }
        if let Some(u) = &self.loopback_unsupported {
            if u.reason.trim().is_empty() || u.alternative.trim().is_empty() {
                return Err(
                    "key `loopback_unsupported`: `reason` and `alternative` must not be empty"
                        .into(),
                );
            }
        }
        if self.refresh_token_lifetime == Some(0) {
            return Err("key `refresh_token_lifetime`: must be at least 1 (seconds)".into());
        }
        check_headers(
            "token_headers",
            &self.token_headers,
            &[
                "authorization",
                "content-type",
                "content-length",
                "host",
                "accept",
                "transfer-encoding",
                "connection",
                "te",
                "upgrade",
                "cookie",
                "proxy-authorization",
                "dpop",
            ],
        )?;
        Ok(())
    }
}

/// Header names a file may set: letters, digits, `-` and `_`, none of `reserved` (oauth-pkce
/// sets those itself); values printable ASCII.
fn check_headers(
    key: &str,
    headers: &BTreeMap<String, String>,
    reserved: &[&str],
) -> std::result::Result<(), String> {
    for (name, value) in headers {
        if headers
            .keys()
            .filter(|n| n.eq_ignore_ascii_case(name))
            .count()
            > 1
        {
            return Err(format!(
                "key `{key}.{name}`: set twice (header names match whatever their case)"
            ));
        }
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid_name || reserved.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            let reserved: Vec<String> = reserved.iter().map(|r| header_case(r)).collect();
            return Err(format!(
                "key `{key}.{name}`: must be a header name other than {} (oauth-pkce sets those)",
                reserved.join(", ")
            ));
        }
        if !value
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b))
        {
            return Err(format!(
                "key `{key}.{name}`: the value must be printable ASCII"
            ));
        }
    }
    Ok(())
}

/// `content-type` → `Content-Type`.
fn header_case(name: &str) -> String {
    name.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// A non-empty word of ASCII letters, digits, `_` and `-`.
fn is_token_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// https, or http on a loopback host (for local servers and tests), and no user name or
/// password (they would become a Basic header, be printed in errors, and
/// `https://api.getjobber.com@evil.example` reads like Jobber but is `evil.example`).
/// Endpoints are parsed once, as the file is read (`url::Url`), and used as they are.
fn check_endpoint(key: &str, url: &url::Url) -> std::result::Result<(), String> {
    if crate::http::has_userinfo(url) {
        return Err(format!(
            "key `{key}`: `{}` must not carry a user name or password before the host \
             (`user:password@`); remove it",
            crate::http::without_credentials(url.as_str())
        ));
    }
    let value = url.as_str();
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::http::is_loopback_url(url) => Ok(()),
        _ => Err(format!(
            "key `{key}`: `{value}` must use https (plain http is allowed only for loopback hosts)"
        )),
    }
}
