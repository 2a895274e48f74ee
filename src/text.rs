//! Text shown to people: masking secrets, making server-provided text safe for a terminal
//! (with every secret this process handles redacted from it), and escaping text for the
//! callback page.

use std::sync::Mutex;

/// Every secret value this process has handled, in the forms a server could echo it back
/// (as is, form-urlencoded, inside a Basic header), so that no server text shows one.
static CONCEALED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Shorter values are not redacted: they would blank out ordinary words.
const MIN_CONCEALED: usize = 8;

/// Marks `secret` as one that server text must never show: [`terminal_safe`] replaces it
/// (and its form-urlencoded and percent-encoded forms) with `[redacted]`.
pub(crate) fn conceal(secret: &str) {
    if secret.len() < MIN_CONCEALED {
        return;
    }
    let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    let percent = form.replace('+', "%20");
    let mut all = CONCEALED.lock().unwrap_or_else(|p| p.into_inner());
    for value in [secret.to_string(), form, percent] {
        if !all.contains(&value) {
            all.push(value);
        }
    }
    // Longest first, so a secret that contains another is replaced whole.
    all.sort_by_key(|v| std::cmp::Reverse(v.len()));
}

/// Conceals a client secret and the `Authorization: Basic` value built from it (RFC 6749
/// §2.3.1: each part form-urlencoded, then base64).
pub(crate) fn conceal_client(client_id: &str, secret: &str) {
    use base64::Engine as _;
    conceal(secret);
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(client_id), enc(secret));
    conceal(&base64::engine::general_purpose::STANDARD.encode(pair));
}

/// `text` with every concealed secret replaced by `[redacted]`.
fn redact(text: &str) -> std::borrow::Cow<'_, str> {
    let all = CONCEALED.lock().unwrap_or_else(|p| p.into_inner());
    let mut out = std::borrow::Cow::Borrowed(text);
    for secret in all.iter() {
        if out.contains(secret.as_str()) {
            out = std::borrow::Cow::Owned(out.replace(secret.as_str(), "[redacted]"));
        }
    }
    out
}

/// Masked display of a secret: first 4 and last 4 characters, and only for values longer
/// than 16 characters; shorter values show only their length.
pub fn mask(secret: &str) -> String {
    let n = secret.chars().count();
    if n > 16 {
        let head: String = secret.chars().take(4).collect();
        let tail: String = secret.chars().skip(n - 4).collect();
        format!("{head}…{tail} ({n} chars)")
    } else if n == 0 {
        "(empty)".to_string()
    } else {
        format!("**** ({n} chars)")
    }
}

/// Keeps printable ASCII (RFC 6749's NQSCHAR range plus `"` and `\`), replaces everything
/// else (escape sequences, control characters, non-ASCII) with `?`, and truncates to `max`
/// characters. Used for any text a server sent that reaches the terminal. Every secret this
/// process has handled (`conceal`) is redacted first, whatever the text's source.
pub fn terminal_safe(text: &str, max: usize) -> String {
    let text = redact(text);
    let mut out: String = text
        .chars()
        .take(max)
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .collect();
    if text.chars().count() > max {
        out.push_str("...");
    }
    out
}

/// The candidate nearest to `unknown`, when it is close enough to be a typo (at most 2
/// edits, or a third of it).
pub(crate) fn nearest<'a>(
    unknown: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<String> {
    let distance = |a: &str, b: &str| {
        // Levenshtein over chars, one row at a time.
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diagonal = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let above = row[j + 1];
                row[j + 1] = (above + 1)
                    .min(row[j] + 1)
                    .min(diagonal + usize::from(ca != *cb));
                diagonal = above;
            }
        }
        row[b.len()]
    };
    candidates
        .map(|key| (distance(unknown, key), key))
        .min()
        .filter(|(d, _)| *d <= 2.max(unknown.chars().count() / 3))
        .map(|(_, key)| key.to_string())
}

/// `text` without control characters (escape sequences, C1 codes, DEL), line breaks and tabs
/// kept, and every concealed secret redacted: the one filter every line oauth-pkce writes to
/// stderr goes through, whatever it holds (a provider file's values, a program name, server
/// text). Unlike [`terminal_safe`], Unicode text stays.
pub fn printable(text: &str) -> String {
    redact(text)
        .chars()
        .filter(|c| !c.is_control() || *c == '\n' || *c == '\t')
        .collect()
}

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn html_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_shows_at_most_first_and_last_four() {
        let m = mask("AT-SENTINEL-0123456789abcdef");
        assert!(m.starts_with("AT-S…cdef"), "{m}");
        assert!(!m.contains("SENTINEL-0123"));
        assert_eq!(mask("shortsecret"), "**** (11 chars)");
        assert_eq!(mask("exactly16chars!!"), "**** (16 chars)");
        assert_eq!(mask(""), "(empty)");
    }

    #[test]
    fn terminal_safe_strips_escapes() {
        let s = terminal_safe("\u{1b}]52;c;d2hvYW1p\u{7}pwned\r\nnext é", 256);
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}') && !s.contains('\n'));
        assert!(s.contains("]52;c;d2hvYW1p?pwned"));
        assert_eq!(terminal_safe("abcdef", 3), "abc...");
    }

    #[test]
    fn concealed_secrets_are_redacted_in_every_echoed_form() {
        conceal("RT-SENTINEL-redact+me/now");
        conceal_client("the-client", "CS-SENTINEL-redact");
        conceal("short");
        let echoed = "grant_type=refresh_token&refresh_token=RT-SENTINEL-redact%2Bme%2Fnow \
                      raw RT-SENTINEL-redact+me/now header Basic dGhlLWNsaWVudDpDUy1TRU5USU5FTC1yZWRhY3Q= \
                      post client_secret=CS-SENTINEL-redact short";
        let shown = terminal_safe(echoed, 1000);
        assert!(!shown.contains("SENTINEL"), "{shown}");
        assert!(
            !shown.contains("dGhlLWNsaWVudDpDUy1TRU5USU5FTC1yZWRhY3Q"),
            "{shown}"
        );
        assert_eq!(shown.matches("[redacted]").count(), 4, "{shown}");
        assert!(
            shown.contains("short"),
            "values under 8 characters stay: {shown}"
        );
    }

    #[test]
    fn html_escape_covers_the_five() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
