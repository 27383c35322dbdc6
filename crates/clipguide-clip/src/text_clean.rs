//! OpenCLIP's text cleaning (`open_clip.tokenizer.basic_clean` + `whitespace_clean`), without
//! the final lower-casing.
//!
//! OpenCLIP's `SimpleTokenizer` (default `clean='lower'`) runs, before BPE:
//!
//! ```text
//! text = ftfy.fix_text(text)                     # default TextFixerConfig
//! text = html.unescape(html.unescape(text))
//! text = text.strip()
//! text = " ".join(text.split()).strip()         # whitespace_clean
//! text = text.lower()
//! ```
//!
//! [`open_clip_clean`] reproduces everything but the last line. ftfy has no Rust port, so
//! `fix_text` is reimplemented here as a documented subset of ftfy 6.3 with its default config.
//!
//! # Reproduced from `ftfy.fix_text`
//!
//! * The driver: text is fixed in segments that end after each `\n` (or every 1,000,000
//!   code points); each segment is fixed repeatedly until it stops changing; `unescape_html="auto"`
//!   is turned off for a segment that contains `<` *and for every segment after it*.
//! * `unescape_html`: ftfy's own entity rule, not `html.unescape`: only `&#?[0-9A-Za-z]{1,24};`
//!   is decoded — HTML5 names with a semicolon, the all-caps form of an all-lowercase name when
//!   that form is not itself an entity (`&EACUTE;` → `É`, with Python's `str.upper` of the
//!   value, so `&SZLIG;` → `SS`), and numeric references whose `html.unescape` has no `;` left.
//! * `fix_c1_controls`: U+0080–U+009F become their Windows-1252 characters (`\x85` → `…`); the
//!   five bytes Windows-1252 leaves undefined (81, 8D, 8F, 90, 9D) stay, as ftfy's "sloppy" codec
//!   does.
//! * `fix_latin_ligatures`: ftfy's table (`ﬁ` → `fi`, `Ĳ` → `IJ`, `ǆ` → `dž`, …).
//! * `fix_character_width`: U+3000 → space and every U+FF01–U+FFEF whose NFKC form differs is
//!   replaced by that NFKC form (full-width ASCII, half-width katakana/hangul/symbols).
//! * `uncurl_quotes`: U+02BC, U+2018–U+201B → `'`; U+201C–U+201F → `"`.
//! * `fix_line_breaks`: CRLF, CR, U+2028, U+2029, U+0085 → `\n`.
//! * `remove_terminal_escapes`: `ESC [ (digits|;)* letter` is removed (`\d` is Unicode `Nd`, as
//!   in Python's `re`).
//! * `remove_control_chars`: U+0000–U+0008, U+000B, U+000E–U+001F, U+007F, U+206A–U+206F,
//!   U+FEFF, U+FFF9–U+FFFC are removed.
//! * NFC normalisation.
//!
//! # Not reproduced
//!
//! * `fix_encoding` (mojibake repair: `cafÃ©` → `café`, `â€œ` → `"`), with its sub-steps
//!   `restore_byte_a0`, `replace_lossy_sequences` and `decode_inconsistent_utf8`. It is gated by
//!   ftfy's statistical `is_bad` heuristic (a large generated regex) and re-decodes text through
//!   several single-byte codecs; a partial port would repair some strings ftfy leaves alone. Text
//!   that ftfy considers mojibake is therefore cleaned differently. (When a C1 control character
//!   is *not* part of UTF-8 mojibake, `fix_encoding`'s Latin-1 → Windows-1252 re-decoding gives
//!   the same result as `fix_c1_controls`, which is reproduced.)
//! * `fix_surrogates`: a Rust `&str` cannot hold surrogate code points, so there is nothing to do.
//! * Unicode versions: Python 3.11's `unicodedata` is Unicode 14.0; NFC/NFKC here and
//!   `str::to_uppercase` follow the Rust crates' (newer) Unicode tables.
//!
//! # `html.unescape`
//!
//! Python's algorithm is reimplemented exactly (regex, longest-prefix matching of the legacy
//! semicolon-less names, numeric references: 0 and the Windows-1252 range 0x80–0x9F through
//! `html._invalid_charrefs`, surrogates and > 0x10FFFF → U+FFFD, `html._invalid_codepoints` →
//! removed). The entity table is `htmlize::ENTITIES`, generated from the same WHATWG
//! `entities.json` as Python's `html.entities.html5` (all 2,231 entries). `htmlize::unescape`
//! itself is not used: it follows the WHATWG parser, which keeps references to control
//! characters and noncharacters (`&#1;`, `&#xFFFF;`) where Python drops them.

use regex::{Captures, Regex};
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;

/// `open_clip.tokenizer.whitespace_clean(basic_clean(text))`: `ftfy.fix_text` (the subset
/// described in the [module docs](self)), `html.unescape` twice, then runs of Python whitespace
/// (`str.isspace`) collapsed to one space and the ends stripped. Not lower-cased.
pub fn open_clip_clean(text: &str) -> String {
    let fixed = fix_text(text);
    let unescaped = html_unescape(&html_unescape(&fixed));
    whitespace_clean(&unescaped)
}

/// The subset of `ftfy.fix_text(text)` (default config) described in the [module docs](self).
pub fn fix_text(text: &str) -> String {
    const MAX_DECODE_LENGTH: usize = 1_000_000;
    let mut out = String::with_capacity(text.len());
    let mut unescape = true;
    let mut rest = text;
    while !rest.is_empty() {
        // A segment ends after '\n', or after MAX_DECODE_LENGTH code points.
        let mut end = rest.len();
        for (n, (i, c)) in rest.char_indices().enumerate() {
            if n == MAX_DECODE_LENGTH {
                end = i;
                break;
            }
            if c == '\n' {
                end = i + 1;
                break;
            }
        }
        let (segment, tail) = rest.split_at(end);
        if segment.contains('<') {
            unescape = false;
        }
        out.push_str(&fix_segment(segment, unescape));
        rest = tail;
    }
    out
}

/// `ftfy.fix_and_explain` on one segment: every fixer in ftfy's order until nothing changes.
fn fix_segment(segment: &str, unescape: bool) -> String {
    let mut text = segment.to_string();
    loop {
        let orig = text.clone();
        if unescape {
            text = unescape_html(&text);
        }
        // (fix_encoding is not reproduced.)
        text = fix_c1_controls(&text);
        text = fix_latin_ligatures(&text);
        text = fix_character_width(&text);
        text = uncurl_quotes(&text);
        text = fix_line_breaks(&text);
        // (fix_surrogates: nothing to do on a Rust string.)
        text = remove_terminal_escapes(&text);
        text = remove_control_chars(&text);
        text = text.nfc().collect();
        if text == orig {
            return text;
        }
    }
}

fn entity(name_with_amp: &str) -> Option<&'static str> {
    htmlize::ENTITIES
        .get(name_with_amp.as_bytes())
        .map(|v| std::str::from_utf8(v).expect("entity values are UTF-8"))
}

/// ftfy's `unescape_html`: decodes `&#?[0-9A-Za-z]{1,24};` only (see the module docs).
pub fn unescape_html(text: &str) -> String {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new("&#?[0-9A-Za-z]{1,24};").expect("valid regex"));
    RE.replace_all(text, |caps: &Captures| {
        let m = &caps[0];
        if let Some(v) = entity(m) {
            return v.to_string();
        }
        if m.starts_with("&#") {
            let u = html_unescape(m);
            return if u.contains(';') { m.to_string() } else { u };
        }
        // The all-caps form of an all-lowercase entity name, unless Python's html.unescape
        // would already decode that form (e.g. `&LTRIF;` starts with the legacy `&LT`).
        let name = &m[1..m.len() - 1];
        let lower = name.to_ascii_lowercase();
        if name != lower && name == lower.to_ascii_uppercase() && html_unescape(m) == m {
            if let Some(v) = entity(&format!("&{lower};")) {
                return v.to_uppercase();
            }
        }
        m.to_string()
    })
    .into_owned()
}

fn fix_c1_controls(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{80}'..='\u{9f}' => cp1252_c1(c),
            _ => c,
        })
        .collect()
}

/// Windows-1252's character for byte `c as u8` in 0x80–0x9F; undefined bytes map to themselves.
fn cp1252_c1(c: char) -> char {
    const TABLE: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{8D}',
        '\u{017D}', '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}',
        '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}', '\u{0153}',
        '\u{9D}', '\u{017E}', '\u{0178}',
    ];
    TABLE[(c as u32 - 0x80) as usize]
}

fn fix_latin_ligatures(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'Ĳ' => out.push_str("IJ"),
            'ĳ' => out.push_str("ij"),
            'ŉ' => out.push_str("ʼn"),
            'Ǳ' => out.push_str("DZ"),
            'ǲ' => out.push_str("Dz"),
            'ǳ' => out.push_str("dz"),
            'Ǆ' => out.push_str("DŽ"),
            'ǅ' => out.push_str("Dž"),
            'ǆ' => out.push_str("dž"),
            'Ǉ' => out.push_str("LJ"),
            'ǈ' => out.push_str("Lj"),
            'ǉ' => out.push_str("lj"),
            'Ǌ' => out.push_str("NJ"),
            'ǋ' => out.push_str("Nj"),
            'ǌ' => out.push_str("nj"),
            'ﬀ' => out.push_str("ff"),
            'ﬁ' => out.push_str("fi"),
            'ﬂ' => out.push_str("fl"),
            'ﬃ' => out.push_str("ffi"),
            'ﬄ' => out.push_str("ffl"),
            'ﬅ' => out.push_str("ſt"),
            'ﬆ' => out.push_str("st"),
            _ => out.push(c),
        }
    }
    out
}

fn fix_character_width(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\u{3000}' => out.push(' '),
            '\u{FF01}'..='\u{FFEF}' => out.extend(std::iter::once(c).nfkc()),
            _ => out.push(c),
        }
    }
    out
}

fn uncurl_quotes(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{02BC}' | '\u{2018}'..='\u{201B}' => '\'',
            '\u{201C}'..='\u{201F}' => '"',
            _ => c,
        })
        .collect()
}

fn fix_line_breaks(text: &str) -> String {
    text.replace("\r\n", "\n")
        .replace(['\r', '\u{2028}', '\u{2029}', '\u{85}'], "\n")
}

fn remove_terminal_escapes(text: &str) -> String {
    static RE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\x1b\[(?:\d|;)*[a-zA-Z]").expect("valid regex"));
    RE.replace_all(text, "").into_owned()
}

fn remove_control_chars(text: &str) -> String {
    text.chars()
        .filter(|&c| {
            !matches!(c,
                '\u{0}'..='\u{8}'
                | '\u{B}'
                | '\u{E}'..='\u{1F}'
                | '\u{7F}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFC}')
        })
        .collect()
}

/// Python's `html.unescape` (3.11), exactly: named references from the HTML5 table including
/// the legacy ones without `;` (longest prefix wins), numeric references with Python's
/// replacements for invalid code points.
pub fn html_unescape(text: &str) -> String {
    static RE: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\x0C <&#;]{1,32};?)")
            .expect("valid regex")
    });
    if !text.contains('&') {
        return text.to_string();
    }
    RE.replace_all(text, |caps: &Captures| replace_charref(&caps[1]))
        .into_owned()
}

fn replace_charref(s: &str) -> String {
    if let Some(num) = s.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(hex) => (hex, 16),
            None => (num, 10),
        };
        let digits = digits.trim_end_matches(';');
        // Any value above 0x10FFFF behaves the same, so saturate instead of overflowing.
        let n = digits.chars().fold(0u32, |acc, d| {
            acc.saturating_mul(radix)
                .saturating_add(d.to_digit(radix).expect("regex matched digits"))
                .min(0x11_0000)
        });
        if n == 0 {
            return "\u{FFFD}".into();
        }
        if n == 0x0D {
            return "\r".into();
        }
        if (0x80..=0x9F).contains(&n) {
            return cp1252_c1(char::from_u32(n).expect("C1 range")).to_string();
        }
        if (0xD800..=0xDFFF).contains(&n) || n > 0x10FFFF {
            return "\u{FFFD}".into();
        }
        if is_python_invalid_codepoint(n) {
            return String::new();
        }
        return char::from_u32(n).expect("valid scalar").to_string();
    }
    if let Some(v) = entity(&format!("&{s}")) {
        return v.to_string();
    }
    // The longest prefix (of at least 2 code points, shorter than `s`) that is an entity name.
    let bounds: Vec<usize> = s.char_indices().map(|(i, _)| i).collect();
    for x in (2..bounds.len()).rev() {
        let (head, tail) = s.split_at(bounds[x]);
        if let Some(v) = entity(&format!("&{head}")) {
            return format!("{v}{tail}");
        }
    }
    format!("&{s}")
}

/// `html._invalid_codepoints` (C1 controls are handled before, via `_invalid_charrefs`).
fn is_python_invalid_codepoint(n: u32) -> bool {
    matches!(n, 0x1..=0x8 | 0xB | 0xE..=0x1F | 0x7F..=0x9F | 0xFDD0..=0xFDEF)
        || (n & 0xFFFE) == 0xFFFE
}

/// Python's `str.isspace`: Unicode White_Space plus the separators U+001C–U+001F.
pub fn is_python_space(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n'
            | '\u{B}'
            | '\u{C}'
            | '\r'
            | '\u{1C}'..='\u{1F}'
            | ' '
            | '\u{85}'
            | '\u{A0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200A}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202F}'
            | '\u{205F}'
            | '\u{3000}'
    )
}

/// `" ".join(text.split())` with Python's whitespace (which also strips both ends).
fn whitespace_clean(text: &str) -> String {
    text.split(is_python_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values follow ftfy 6.3 / Python 3.11 semantics, written by hand.

    #[test]
    fn ftfy_unescape_html_rule() {
        assert_eq!(unescape_html("fish &amp; chips"), "fish & chips");
        assert_eq!(unescape_html("P&eacute;rez"), "Pérez");
        assert_eq!(unescape_html("P&EACUTE;REZ"), "PÉREZ");
        assert_eq!(unescape_html("BUNDESSTRA&SZLIG;E"), "BUNDESSTRASSE");
        assert_eq!(
            unescape_html("&ntilde; &Ntilde; &NTILDE; &nTILDE;"),
            "ñ Ñ Ñ &nTILDE;"
        );
        // No semicolon: ftfy leaves it (html.unescape would not).
        assert_eq!(unescape_html("this&not that"), "this&not that");
        assert_eq!(unescape_html("&#x2019;&#39;"), "\u{2019}'");
        // A numeric reference whose html.unescape leaves a ';' is kept whole.
        assert_eq!(unescape_html("&#12ab;"), "&#12ab;");
        // `&LTRIF;` would decode as `<RIF;` in html.unescape, so it is not an all-caps alias.
        assert_eq!(unescape_html("&LTRIF;"), "&LTRIF;");
        assert_eq!(unescape_html("&ltrif;"), "◂");
    }

    #[test]
    fn fix_text_unescapes_only_without_lt() {
        assert_eq!(fix_text("&amp;"), "&");
        // Repeated until stable.
        assert_eq!(fix_text("&amp;amp;"), "&");
        assert_eq!(fix_text("<b>&amp;</b>"), "<b>&amp;</b>");
        // A '<' turns unescaping off for its line and every later one, not earlier ones.
        assert_eq!(fix_text("&amp;\n<&amp;\n&amp;"), "&\n<&amp;\n&amp;");
    }

    #[test]
    fn terminal_escapes_and_control_chars() {
        assert_eq!(fix_text("\x1b[36;44mI'm blue\x1b[0m"), "I'm blue");
        assert_eq!(fix_text("a\x00b\x07c\x1bd"), "abcd");
        assert_eq!(fix_text("\u{FEFF}bom\u{206A}\u{FFFC}"), "bom");
        // Whitespace controls and joiners stay.
        assert_eq!(fix_text("a\tb\u{C}c\u{200D}d"), "a\tb\u{C}c\u{200D}d");
    }

    #[test]
    fn ligatures_width_quotes() {
        assert_eq!(fix_text("ﬂuﬃeﬆ"), "fluffiest");
        assert_eq!(fix_text("Ĳssel ǅ"), "IJssel Dž");
        assert_eq!(fix_text("ＬＯＵＤ　ＮＯＩＳＥＳ"), "LOUD NOISES");
        assert_eq!(fix_text("Ｕﾀｰﾝ"), "Uターン");
        // Half-width voiced mark becomes a combining mark, which NFC then composes.
        assert_eq!(fix_text("ｶﾞ"), "ガ");
        assert_eq!(
            fix_text("\u{201C}here\u{2019}s a test\u{201D} \u{02BC}"),
            "\"here's a test\" '"
        );
    }

    #[test]
    fn line_breaks_c1_and_nfc() {
        assert_eq!(fix_text("a\r\nb\rc\u{2028}d\u{2029}e"), "a\nb\nc\nd\ne");
        // \x85 is a C1 control first: Windows-1252's ellipsis.
        assert_eq!(fix_text("wait\u{85}"), "wait…");
        assert_eq!(fix_text("\u{80}5 \u{93}x\u{94}"), "€5 \"x\"");
        assert_eq!(fix_text("\u{81}"), "\u{81}");
        assert_eq!(fix_text("e\u{301}te\u{301}"), "été");
    }

    #[test]
    fn python_html_unescape() {
        assert_eq!(html_unescape("&amp;amp;"), "&amp;");
        assert_eq!(html_unescape("&amp"), "&");
        assert_eq!(html_unescape("this&not that"), "this¬ that");
        assert_eq!(html_unescape("&notit;"), "¬it;");
        assert_eq!(html_unescape("&notin;"), "∉");
        assert_eq!(html_unescape("&bogus;"), "&bogus;");
        assert_eq!(html_unescape("&#0;"), "\u{FFFD}");
        assert_eq!(html_unescape("&#x80;&#150;"), "€–");
        assert_eq!(html_unescape("&#x81;"), "\u{81}");
        assert_eq!(html_unescape("&#13;"), "\r");
        assert_eq!(html_unescape("&#1;&#xFFFF;&#xFDD0;&#x10FFFE;"), "");
        assert_eq!(
            html_unescape("&#xD800;&#x110000;&#99999999999999;"),
            "\u{FFFD}".repeat(3)
        );
        assert_eq!(html_unescape("&#65&#x42;c"), "ABc");
        assert_eq!(html_unescape("&#xZ;"), "&#xZ;");
        assert_eq!(html_unescape("& &;"), "& &;");
    }

    #[test]
    fn whitespace_is_python_split() {
        assert_eq!(whitespace_clean("  a \u{1C}b\u{A0}\u{3000}c\t\n"), "a b c");
        // Zero-width space is not whitespace in Python.
        assert_eq!(whitespace_clean("a\u{200B}b"), "a\u{200B}b");
    }

    #[test]
    fn open_clip_clean_end_to_end() {
        assert_eq!(open_clip_clean("  A&amp;amp;B  "), "A&B");
        // ftfy keeps entities on lines with '<'; html.unescape (twice) then decodes them.
        assert_eq!(open_clip_clean("<b>&amp;amp;amp;</b>"), "<b>&amp;</b>");
        assert_eq!(open_clip_clean("&lt;b&gt;bold&lt;/b&gt;"), "<b>bold</b>");
        assert_eq!(open_clip_clean("ﬁne\r\nＡ\u{2019}s"), "fine A's");
        assert_eq!(open_clip_clean("&nbsp;space"), "space");
        // Mojibake repair is not reproduced.
        assert_eq!(open_clip_clean("cafÃ©"), "cafÃ©");
    }
}
