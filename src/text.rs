//! Text shown to people: masking secrets, making server-provided text safe for a terminal,
//! and escaping text for the callback page.

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
/// characters. Used for any text a server sent that reaches the terminal.
pub fn terminal_safe(text: &str, max: usize) -> String {
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
    fn html_escape_covers_the_five() {
        assert_eq!(
            html_escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
