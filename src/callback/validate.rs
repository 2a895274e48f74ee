//! The one validator of authorization responses, for a callback request's query and for a
//! pasted redirect URL alike: parameters decoded once (no duplicates), `state` compared in
//! constant time, `iss` checked (RFC 9207), tokens refused, the code checked (VSCHAR, length).

use std::collections::HashSet;

use secrecy::{ExposeSecret, SecretString};

use crate::text::{html_escape, terminal_safe};

/// Longest authorization code accepted.
const MAX_CODE_LEN: usize = 2048;

/// How a flow ended at the callback.
pub(super) enum Outcome {
    Code(SecretString),
    /// The provider's error response (`error=…` with the right `state`).
    Refused {
        error: String,
        description: Option<String>,
    },
    /// The right `state` but no usable code.
    Unusable,
    TooManyRefused,
}

/// What an authorization response must carry to belong to this flow.
#[derive(Debug)]
pub(crate) struct Expected {
    pub state: SecretString,
    pub issuer: Issuer,
    /// The provider signed in to, for the errors' next steps.
    pub provider: String,
}

/// What the callback's `iss` parameter (RFC 9207) must be.
#[derive(Clone, Debug, Default)]
pub(crate) struct Issuer {
    /// The provider's issuer identifier; `None`: an `iss` is ignored.
    pub expected: Option<String>,
    /// A callback without `iss` is refused.
    pub required: bool,
}

impl Issuer {
    /// Whether the callback's `iss` (if any) is acceptable: simple string comparison.
    fn accepts(&self, iss: Option<&str>) -> bool {
        match (&self.expected, iss) {
            (Some(expected), Some(iss)) => iss == expected,
            (Some(_), None) => !self.required,
            (None, _) => true,
        }
    }
}

/// What one authorization response means for the flow.
pub(super) enum Verdict {
    /// Not this flow's answer (wrong or missing `state`, another issuer, bad parameters): it is
    /// refused and counted, and the flow keeps waiting.
    Refused {
        title: &'static str,
        message: String,
    },
    /// The flow's answer: a code, the provider's error, or no usable code.
    Final(Outcome),
}

/// The one validator of authorization responses, for a callback request's query and for a
/// pasted redirect URL alike: parameters decoded once (no duplicates), `state` compared in
/// constant time, `iss` checked (RFC 9207), tokens refused, the code checked (VSCHAR, length).
pub(super) fn judge(query: &str, expected: &Expected) -> Verdict {
    let refused = |title, message: &str| Verdict::Refused {
        title,
        message: message.to_string(),
    };
    let params = match Params::parse(query) {
        Ok(p) => p,
        Err(message) => return refused("Bad request", &message),
    };
    let state_ok = params
        .get("state")
        .is_some_and(|s| constant_time_eq(s.as_bytes(), expected.state.expose_secret().as_bytes()));
    if !state_ok {
        return refused(
            "Not this sign-in",
            "This response does not belong to the sign-in in progress (the state parameter is missing or wrong). It was ignored.",
        );
    }
    // Mix-up defence (RFC 9207): a response from another authorization server is refused, an
    // error response included, and the flow keeps waiting.
    if !expected.issuer.accepts(params.get("iss")) {
        return refused(
            "Wrong issuer",
            "This response names a different authorization server (iss) than the one the sign-in was sent to. It was ignored.",
        );
    }
    if let Some(error) = params.get("error") {
        return Verdict::Final(Outcome::Refused {
            error: terminal_safe(error, 64),
            description: params
                .get("error_description")
                .map(|d| terminal_safe(d, 256)),
        });
    }
    if ["access_token", "id_token", "token_type"]
        .iter()
        .any(|k| params.get(k).is_some())
    {
        return refused(
            "Bad request",
            "Tokens are never accepted on the callback; only an authorization code is.",
        );
    }
    let code = params.get("code").unwrap_or("");
    let code_ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code.bytes().all(|b| (0x20..=0x7e).contains(&b));
    if !code_ok {
        return Verdict::Final(Outcome::Unusable);
    }
    crate::text::conceal(code);
    Verdict::Final(Outcome::Code(SecretString::from(code.to_string())))
}

/// A pasted line: the redirect URL from the browser's address bar (its path must be the
/// redirect path; the host and port are not checked, so a tunnelled or rewritten address
/// works), or just its query (`code=…&state=…`). A bare code is refused: without `state` it
/// cannot be tied to this sign-in. `None` for an empty line. Messages never repeat the text.
pub(super) fn judge_pasted(text: &str, path: &str, expected: &Expected) -> Option<Verdict> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let refused = |message: String| {
        Some(Verdict::Refused {
            title: "Not this sign-in",
            message,
        })
    };
    let query = match url::Url::parse(text) {
        Ok(url) if url.has_host() => {
            if url.path() != path {
                return refused(format!(
                    "that is not the redirect to {path}: after approving, copy the address of the page the browser was sent to"
                ));
            }
            url.query().unwrap_or("").to_string()
        }
        _ if text.starts_with('?') => text[1..].to_string(),
        _ if text.contains('=') => text.to_string(),
        _ => {
            return refused(format!(
                "a bare code cannot be tied to this sign-in: paste the whole address (the one with {path}?code=…&state=…)"
            ))
        }
    };
    Some(match judge(&query, expected) {
        Verdict::Refused { title, message } => Verdict::Refused {
            title,
            message: match title {
                "Not this sign-in" => "its state does not match this sign-in (an address from an earlier attempt, or one cut short)".into(),
                "Wrong issuer" => "it names another authorization server (iss) than this sign-in's".into(),
                _ => format!("it has bad parameters: {message}"),
            },
        },
        final_verdict => final_verdict,
    })
}

/// Query parameters, decoded once; a repeated parameter is an error (RFC 6749 §3.1), and an
/// empty value counts as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> std::result::Result<Params, String> {
        let mut seen = HashSet::new();
        let mut pairs = Vec::new();
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if !seen.insert(k.to_string()) {
                return Err(format!(
                    "The parameter `{}` appears more than once.",
                    html_escape(&terminal_safe(&k, 40))
                ));
            }
            pairs.push((k.into_owned(), v.into_owned()));
        }
        Ok(Params(pairs))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_reject_duplicates_and_treat_empty_as_absent() {
        assert!(Params::parse("code=a&code=b&state=s").is_err());
        let p = Params::parse("code=&state=s%20x&foo=bar").unwrap();
        assert_eq!(p.get("code"), None);
        assert_eq!(p.get("state"), Some("s x"));
    }

    #[test]
    fn iss_is_compared_exactly_and_required_only_when_configured() {
        let honest = Issuer {
            expected: Some("https://honest.as.example".into()),
            required: false,
        };
        assert!(honest.accepts(Some("https://honest.as.example")));
        for bad in [
            "https://honest.as.example/",
            "HTTPS://honest.as.example",
            "https://evil.example",
        ] {
            assert!(!honest.accepts(Some(bad)), "{bad}");
        }
        assert!(honest.accepts(None));
        assert!(!Issuer {
            required: true,
            ..honest.clone()
        }
        .accepts(None));
        assert!(Issuer::default().accepts(Some("https://anything.example")));
    }

    fn expected() -> Expected {
        Expected {
            state: SecretString::from("S".repeat(43)),
            issuer: Issuer::default(),
            provider: "acme".into(),
        }
    }

    fn code_of(v: Option<Verdict>) -> Option<String> {
        match v {
            Some(Verdict::Final(Outcome::Code(c))) => Some(c.expose_secret().to_string()),
            _ => None,
        }
    }

    fn refusal_of(v: Option<Verdict>) -> String {
        match v {
            Some(Verdict::Refused { message, .. }) => message,
            _ => panic!("not refused"),
        }
    }

    #[test]
    fn one_validator_judges_callbacks_and_pasted_addresses_alike() {
        let e = expected();
        let state = "S".repeat(43);
        let url = format!("http://localhost:3000/callback?code=abc&state={state}");
        assert_eq!(
            code_of(Some(judge(&format!("code=abc&state={state}"), &e))).as_deref(),
            Some("abc")
        );
        assert_eq!(
            code_of(judge_pasted(&format!("  {url}\n"), "/callback", &e)).as_deref(),
            Some("abc")
        );
        // A tunnelled or rewritten host and port are fine; the query alone too.
        let other = format!("http://127.0.0.1:9999/callback?state={state}&code=abc");
        assert_eq!(
            code_of(judge_pasted(&other, "/callback", &e)).as_deref(),
            Some("abc")
        );
        assert_eq!(
            code_of(judge_pasted(
                &format!("?code=abc&state={state}"),
                "/callback",
                &e
            ))
            .as_deref(),
            Some("abc")
        );
        assert!(judge_pasted("   ", "/callback", &e).is_none());
    }

    #[test]
    fn pasted_addresses_without_the_right_state_or_path_are_refused_without_echoing_them() {
        let e = expected();
        let state = "S".repeat(43);
        for (text, needle) in [
            (
                "http://localhost:3000/callback?code=SECRETCODE&state=WRONG".to_string(),
                "state does not match",
            ),
            (
                "http://localhost:3000/callback?code=SECRETCODE".to_string(),
                "state does not match",
            ),
            ("SECRETCODE".to_string(), "bare code"),
            // The authorization URL itself carries our state: refused by its path.
            (
                format!("https://as.example/authorize?state={state}&client_id=x"),
                "not the redirect",
            ),
            (
                format!("http://localhost:3000/callback?code=SECRETCODE&code=x&state={state}"),
                "more than once",
            ),
            (
                format!("http://localhost:3000/callback?access_token=SECRETCODE&state={state}"),
                "Tokens are never accepted",
            ),
        ] {
            let message = refusal_of(judge_pasted(&text, "/callback", &e));
            assert!(message.contains(needle), "{text}: {message}");
            assert!(!message.contains("SECRETCODE"), "{message}");
        }
        // The right state without a code is unusable (the paste path refuses and waits on).
        assert!(matches!(
            judge_pasted(
                &format!("http://localhost:3000/callback?state={state}"),
                "/callback",
                &e
            ),
            Some(Verdict::Final(Outcome::Unusable))
        ));
        // The provider's error with the right state is final.
        assert!(matches!(
            judge_pasted(
                &format!("http://localhost:3000/callback?error=access_denied&state={state}"),
                "/callback",
                &e
            ),
            Some(Verdict::Final(Outcome::Refused { .. }))
        ));
    }

    #[test]
    fn constant_time_eq_needs_exact_match() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcx"));
        assert!(!constant_time_eq(b"abc", b"ABC"));
    }
}
