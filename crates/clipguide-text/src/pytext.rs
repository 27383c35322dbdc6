//! Python's character classes and `float()` as the reference prompt parsers see them.
//! A1111 and ComfyUI are Python, so `\s`, `\b` and `float()` must mean what they mean there.

/// Python's `str.isspace()` (and `\s` in a `str` regex): Rust's `White_Space` plus the
/// four ASCII separators U+001C..U+001F, which Python counts as whitespace.
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `\w` in a `str` regex: alphanumeric or underscore. Rust's `is_alphanumeric`
/// differs from Python's `isalnum` only on rare combining marks (documented in `weighting`).
pub(crate) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Python's `float(s)` for ASCII input: surrounding whitespace, a sign, `inf`/`infinity`/`nan`
/// in any case, digits with single underscores between them, an optional fraction and exponent.
/// Returns `None` where Python raises `ValueError`.
pub(crate) fn py_float(s: &str) -> Option<f64> {
    let s = s.trim_matches(is_space);
    let (sign, body) = match s.as_bytes().first() {
        Some(b'+') => (1.0, &s[1..]),
        Some(b'-') => (-1.0, &s[1..]),
        _ => (1.0, s),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(sign * f64::INFINITY);
    }
    if lower == "nan" {
        return Some(f64::NAN);
    }
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut cleaned = String::with_capacity(body.len());
    // digitpart := digit (["_"] digit)*
    let digitpart = |i: &mut usize, cleaned: &mut String| -> bool {
        let start = *i;
        while *i < bytes.len() {
            let b = bytes[*i];
            if b.is_ascii_digit() {
                cleaned.push(b as char);
                *i += 1;
            } else if b == b'_'
                && *i > start
                && bytes[*i - 1].is_ascii_digit()
                && bytes.get(*i + 1).is_some_and(|n| n.is_ascii_digit())
            {
                *i += 1;
            } else {
                break;
            }
        }
        *i > start
    };
    let int_digits = digitpart(&mut i, &mut cleaned);
    let mut frac_digits = false;
    if bytes.get(i) == Some(&b'.') {
        cleaned.push('.');
        i += 1;
        frac_digits = digitpart(&mut i, &mut cleaned);
    }
    if !int_digits && !frac_digits {
        return None;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        cleaned.push('e');
        i += 1;
        if let Some(&b) = bytes.get(i) {
            if b == b'+' || b == b'-' {
                cleaned.push(b as char);
                i += 1;
            }
        }
        if !digitpart(&mut i, &mut cleaned) {
            return None;
        }
    }
    if i != bytes.len() {
        return None;
    }
    // Both Python and Rust round decimal text to the nearest f64, so the values agree bit for bit.
    cleaned.parse::<f64>().ok().map(|v| sign * v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn py_float_accepts_what_python_accepts() {
        assert_eq!(py_float("1.3"), Some(1.3));
        assert_eq!(py_float(" 1.5 "), Some(1.5));
        assert_eq!(py_float("1."), Some(1.0));
        assert_eq!(py_float(".5"), Some(0.5));
        assert_eq!(py_float("-.5"), Some(-0.5));
        assert_eq!(py_float("+2"), Some(2.0));
        assert_eq!(py_float("1e-1"), Some(0.1));
        assert_eq!(py_float("1_000.5"), Some(1000.5));
        assert_eq!(py_float("-Infinity"), Some(f64::NEG_INFINITY));
        assert!(py_float("NaN").is_some_and(f64::is_nan));
    }

    #[test]
    fn py_float_rejects_what_python_rejects() {
        for bad in [
            "", ".", "1.2.3", "1__0", "_1", "1_", "1e", "e5", "abc", "1 2", "+", "0x10",
        ] {
            assert_eq!(py_float(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn python_whitespace_includes_ascii_separators() {
        assert!(is_space('\u{1c}') && is_space('\u{1f}') && is_space('\u{a0}'));
        assert!(!is_space('\u{200b}') && !is_space('x'));
        assert!(is_word('_') && is_word('é') && is_word('7') && !is_word(','));
    }
}
