//! Prompt-attention syntax: turns `a (red:1.2) [dog] BREAK sky` into weighted text spans.
//! Reproduces A1111's `parse_prompt_attention` and ComfyUI's `token_weights` exactly, quirks included.
//!
//! # A1111 (`modules/prompt_parser.py`, `parse_prompt_attention` + `re_attention` + `re_break`)
//! - `(x)` multiplies by 1.1, `[x]` by `1/1.1`, `(x:w)` by `w`; nesting multiplies.
//!   The weight must match `:\s*([+-]?[.\d]+)\s*\)`; any other `:` is literal text.
//! - Escapes `\(` `\)` `\[` `\]` `\\` give the literal character; a lone `\` is dropped.
//! - An unmatched `)` or `]` is literal text; unclosed `(`/`[` are closed at the end of the prompt.
//! - Round and square brackets have separate stacks, so `([a)]` is accepted (weight 1.0).
//! - `BREAK` (as a whole word, `\s*\bBREAK\b\s*`) splits chunks; the whitespace around it is eaten.
//!   A1111 stores it as the entry `["BREAK", -1]` and `tokenize_line` only treats an entry as a
//!   break when its weight is still exactly -1, so `(BREAK)` becomes the *word* "BREAK" with
//!   weight -1.1. [`ParseMode::Lenient`] reproduces that; [`ParseMode::Strict`] rejects it.
//! - Adjacent entries with equal weight are merged (the break marker included), and an empty
//!   prompt gives one empty span of weight 1.0.
//!
//! Deliberate differences: A1111 raises `ValueError` for a weight such as `(a:1.2.3)`; lenient
//! mode keeps the `:` as text instead. Only ASCII digits count as weight digits (Python's `\d`
//! also takes other scripts' decimal digits), and `\b` uses Rust's `is_alphanumeric`.
//!
//! # ComfyUI (`comfy/sd1_clip.py`, `token_weights`, `parse_parentheses`, `escape_important`)
//! - `(x)` multiplies by 1.1, but `(x:w)` *sets* the weight to `w`, ignoring enclosing groups.
//!   The weight is whatever follows the group's last `:` if Python's `float()` accepts it
//!   (`1e-1`, ` 2 `, `inf`, `1_0`); otherwise the group keeps ×1.1 and the colon stays in the text.
//!   A colon at the very start of the group (`(:1.5)`) is never a weight.
//! - `[x]` has no meaning: square brackets are plain text. There is no `BREAK`.
//! - Only `\(` and `\)` are escapes; `\[`, `\]`, `\\` keep their backslash.
//! - An unclosed `(` is literal text (with the weight outside it). An unmatched `)` is literal
//!   and drives the nesting counter negative, so later groups on that level stay literal text.
//! - No merging: every group boundary starts a new span.

use crate::pytext::{is_space, is_word, py_float};

/// A piece of prompt text and the attention multiplier for its tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct WeightedSpan {
    pub text: String,
    pub weight: f64,
}

/// One element of a parsed prompt: weighted text, or a `BREAK` that forces a new 75-token chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptPiece {
    Span(WeightedSpan),
    Break,
}

impl PromptPiece {
    pub fn span(text: impl Into<String>, weight: f64) -> Self {
        PromptPiece::Span(WeightedSpan {
            text: text.into(),
            weight,
        })
    }
}

/// How malformed prompts are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    /// Exactly what the reference UI does: never fails, silently closes or keeps stray brackets.
    #[default]
    Lenient,
    /// Same output for well-formed prompts; anything the reference UI would silently repair or
    /// misread is an error naming the 1-based column and the fix.
    Strict,
}

/// Which UI's prompt syntax to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PromptSyntax {
    /// AUTOMATIC1111 webui: `()`, `[]`, `(x:w)`, escapes, `BREAK`.
    #[default]
    A1111,
    /// ComfyUI: `()` and `(x:w)` only.
    Comfy,
    /// No syntax: the whole prompt at weight 1.0 (A1111's emphasis "None", diffusers).
    Plain,
}

/// A malformed prompt in [`ParseMode::Strict`]. Columns count Unicode characters from 1.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("unclosed '{bracket}' opened at column {column}: add '{closer}'")]
    Unclosed {
        bracket: char,
        closer: char,
        column: usize,
    },
    #[error("unmatched '{bracket}' at column {column}: remove it or escape it as '\\{bracket}'")]
    Unmatched { bracket: char, column: usize },
    #[error(
        "'{closer}' at column {column} closes '{open}' from column {open_column} while '{inner}' from column {inner_column} is still open: close the '{inner}' first"
    )]
    Crossed {
        closer: char,
        column: usize,
        open: char,
        open_column: usize,
        inner: char,
        inner_column: usize,
    },
    #[error("weight after ':' at column {column} is not a number (found '{found}'): write it as (text:1.2)")]
    InvalidWeight { column: usize, found: String },
    #[error(
        "lone '\\' at column {column} is dropped by A1111: write '\\\\' for a literal backslash"
    )]
    LoneBackslash { column: usize },
    #[error("BREAK at column {column} is inside brackets, where A1111 reads it as the word BREAK with a negative weight: close the brackets before BREAK")]
    BreakInsideBrackets { column: usize },
}

/// Parses `prompt` with the given UI's syntax.
pub fn parse_prompt(
    prompt: &str,
    syntax: PromptSyntax,
    mode: ParseMode,
) -> Result<Vec<PromptPiece>, ParseError> {
    match syntax {
        PromptSyntax::A1111 => parse_a1111(prompt, mode),
        PromptSyntax::Comfy => {
            if mode == ParseMode::Strict {
                check_comfy_brackets(prompt)?;
                check_comfy_weights(prompt)?;
            }
            Ok(parse_comfy(prompt))
        }
        PromptSyntax::Plain => Ok(parse_plain(prompt)),
    }
}

/// The whole prompt as one span of weight 1.0: no brackets, no `BREAK`.
pub fn parse_plain(prompt: &str) -> Vec<PromptPiece> {
    vec![PromptPiece::span(prompt, 1.0)]
}

/// A1111's behaviour, which never fails.
pub fn parse_a1111_lenient(prompt: &str) -> Vec<PromptPiece> {
    let mut parser = A1111Parser::new(prompt, ParseMode::Lenient);
    match parser.run() {
        Ok(pieces) => pieces,
        // Lenient mode has no error path; an empty span keeps the "one chunk" invariant anyway.
        Err(_) => vec![PromptPiece::span("", 1.0)],
    }
}

/// Parses with A1111's `parse_prompt_attention` rules (see the module docs).
pub fn parse_a1111(prompt: &str, mode: ParseMode) -> Result<Vec<PromptPiece>, ParseError> {
    A1111Parser::new(prompt, mode).run()
}

const ROUND_MULTIPLIER: f64 = 1.1;

struct Entry {
    text: String,
    weight: f64,
}

/// A1111 keeps the break marker as the entry `["BREAK", -1]` until after merging.
const BREAK_TEXT: &str = "BREAK";
const BREAK_WEIGHT: f64 = -1.0;

struct A1111Parser {
    chars: Vec<char>,
    strict: bool,
    res: Vec<Entry>,
    round: Vec<usize>,
    square: Vec<usize>,
    /// Strict mode only: every open bracket with its column, to catch crossings like `([a)]`.
    open: Vec<(char, usize)>,
}

impl A1111Parser {
    fn new(prompt: &str, mode: ParseMode) -> Self {
        A1111Parser {
            chars: prompt.chars().collect(),
            strict: mode == ParseMode::Strict,
            res: Vec::new(),
            round: Vec::new(),
            square: Vec::new(),
            open: Vec::new(),
        }
    }

    fn multiply_range(&mut self, start: usize, multiplier: f64) {
        for entry in &mut self.res[start..] {
            entry.weight *= multiplier;
        }
    }

    fn push(&mut self, text: String) {
        self.res.push(Entry { text, weight: 1.0 });
    }

    /// Strict-mode bookkeeping for a closing bracket that A1111 will match.
    fn close_strict(&mut self, closer: char, column: usize) -> Result<(), ParseError> {
        if !self.strict {
            return Ok(());
        }
        let want = if closer == ')' { '(' } else { '[' };
        let Some(idx) = self.open.iter().rposition(|(b, _)| *b == want) else {
            return Err(ParseError::Unmatched {
                bracket: closer,
                column,
            });
        };
        if let Some(&(inner, inner_column)) =
            self.open.last().filter(|_| idx + 1 != self.open.len())
        {
            return Err(ParseError::Crossed {
                closer,
                column,
                open: want,
                open_column: self.open[idx].1,
                inner,
                inner_column,
            });
        }
        self.open.pop();
        Ok(())
    }

    fn run(&mut self) -> Result<Vec<PromptPiece>, ParseError> {
        let n = self.chars.len();
        let mut i = 0;
        while i < n {
            let c = self.chars[i];
            let column = i + 1;
            match c {
                '\\' => {
                    match self.chars.get(i + 1) {
                        Some(&e @ ('(' | ')' | '[' | ']' | '\\')) => {
                            self.push(e.to_string());
                            i += 2;
                        }
                        _ => {
                            if self.strict {
                                return Err(ParseError::LoneBackslash { column });
                            }
                            // `text[1:]` of a lone backslash is the empty string.
                            self.push(String::new());
                            i += 1;
                        }
                    }
                }
                '(' => {
                    self.round.push(self.res.len());
                    self.open.push(('(', column));
                    i += 1;
                }
                '[' => {
                    self.square.push(self.res.len());
                    self.open.push(('[', column));
                    i += 1;
                }
                ':' => {
                    if let Some((number, end)) = match_weight(&self.chars, i) {
                        if self.round.is_empty() {
                            if self.strict {
                                return Err(ParseError::Unmatched {
                                    bracket: ')',
                                    column: end,
                                });
                            }
                            let text: String = self.chars[i..end].iter().collect();
                            self.push(text);
                            i = end;
                            continue;
                        }
                        if let Some(weight) = parse_weight(&number) {
                            if self.strict && !weight.is_finite() {
                                return Err(ParseError::InvalidWeight {
                                    column,
                                    found: number,
                                });
                            }
                            self.close_strict(')', end)?;
                            let start = self.round.pop().unwrap_or(0);
                            self.multiply_range(start, weight);
                            i = end;
                            continue;
                        }
                        // A1111 would raise ValueError here; keep the colon as text instead.
                        if self.strict {
                            return Err(ParseError::InvalidWeight {
                                column,
                                found: number,
                            });
                        }
                    } else if self.strict && self.open.last().is_some_and(|(b, _)| *b == '(') {
                        return Err(ParseError::InvalidWeight {
                            column,
                            found: text_after_colon(&self.chars, i),
                        });
                    }
                    self.push(":".to_string());
                    i += 1;
                }
                ')' | ']' => {
                    let stack = if c == ')' {
                        &mut self.round
                    } else {
                        &mut self.square
                    };
                    match stack.pop() {
                        Some(start) => {
                            self.close_strict(c, column)?;
                            let m = if c == ')' {
                                ROUND_MULTIPLIER
                            } else {
                                1.0 / ROUND_MULTIPLIER
                            };
                            self.multiply_range(start, m);
                        }
                        None => {
                            if self.strict {
                                return Err(ParseError::Unmatched { bracket: c, column });
                            }
                            self.push(c.to_string());
                        }
                    }
                    i += 1;
                }
                _ => {
                    let start = i;
                    while i < n && !matches!(self.chars[i], '\\' | '(' | ')' | '[' | ']' | ':') {
                        i += 1;
                    }
                    let (parts, breaks) = split_break(&self.chars[start..i]);
                    if self.strict && !self.open.is_empty() {
                        if let Some(&b) = breaks.first() {
                            return Err(ParseError::BreakInsideBrackets {
                                column: start + b + 1,
                            });
                        }
                    }
                    for (k, part) in parts.into_iter().enumerate() {
                        if k > 0 {
                            self.res.push(Entry {
                                text: BREAK_TEXT.to_string(),
                                weight: BREAK_WEIGHT,
                            });
                        }
                        self.push(part);
                    }
                }
            }
        }

        if self.strict {
            if let Some(&(bracket, column)) = self.open.first() {
                let closer = if bracket == '(' { ')' } else { ']' };
                return Err(ParseError::Unclosed {
                    bracket,
                    closer,
                    column,
                });
            }
        }
        // Python iterates these stacks bottom-up; the order is kept for bit-identical weights.
        for pos in std::mem::take(&mut self.round) {
            self.multiply_range(pos, ROUND_MULTIPLIER);
        }
        for pos in std::mem::take(&mut self.square) {
            self.multiply_range(pos, 1.0 / ROUND_MULTIPLIER);
        }
        if self.res.is_empty() {
            self.push(String::new());
        }
        let merged = merge_equal_weights(std::mem::take(&mut self.res));
        Ok(merged
            .into_iter()
            .map(|e| {
                if e.text == BREAK_TEXT && e.weight == BREAK_WEIGHT {
                    PromptPiece::Break
                } else {
                    PromptPiece::Span(WeightedSpan {
                        text: e.text,
                        weight: e.weight,
                    })
                }
            })
            .collect())
    }
}

fn merge_equal_weights(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::with_capacity(entries.len());
    for e in entries {
        match out.last_mut() {
            // f64 `==` like Python's: -0.0 equals 0.0 and NaN never merges.
            Some(last) if last.weight == e.weight => last.text.push_str(&e.text),
            _ => out.push(e),
        }
    }
    out
}

/// Matches `:\s*([+-]?[.\d]+)\s*\)` at `i` (a `:`); returns the number text and the index
/// just past the `)`. The pattern has no useful backtracking, so one greedy pass decides it.
fn match_weight(chars: &[char], i: usize) -> Option<(String, usize)> {
    let mut j = i + 1;
    while j < chars.len() && is_space(chars[j]) {
        j += 1;
    }
    let num_start = j;
    if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
        j += 1;
    }
    let digits_start = j;
    while j < chars.len() && (chars[j] == '.' || chars[j].is_ascii_digit()) {
        j += 1;
    }
    if j == digits_start {
        return None;
    }
    let number: String = chars[num_start..j].iter().collect();
    while j < chars.len() && is_space(chars[j]) {
        j += 1;
    }
    (chars.get(j) == Some(&')')).then_some((number, j + 1))
}

/// `float()` of text already known to be `[+-]?[.\d]+`: valid with one dot at most and a digit.
fn parse_weight(number: &str) -> Option<f64> {
    let dots = number.chars().filter(|&c| c == '.').count();
    let digits = number.chars().any(|c| c.is_ascii_digit());
    if dots > 1 || !digits {
        return None;
    }
    py_float(number)
}

fn text_after_colon(chars: &[char], i: usize) -> String {
    chars[i + 1..]
        .iter()
        .take_while(|&&c| c != ')')
        .take(40)
        .collect::<String>()
        .trim()
        .to_string()
}

/// `re.split(r"\s*\bBREAK\b\s*", text)`: the parts, and the index of each `BREAK`'s `B`.
fn split_break(run: &[char]) -> (Vec<String>, Vec<usize>) {
    const WORD: [char; 5] = ['B', 'R', 'E', 'A', 'K'];
    let len = run.len();
    let mut parts = Vec::new();
    let mut breaks = Vec::new();
    let mut last = 0;
    let mut s = 0;
    while s < len {
        let mut j = s;
        while j < len && is_space(run[j]) {
            j += 1;
        }
        let found = j + WORD.len() <= len
            && run[j..j + WORD.len()] == WORD
            && (j == 0 || !is_word(run[j - 1]))
            && (j + WORD.len() == len || !is_word(run[j + WORD.len()]));
        if found {
            let mut e = j + WORD.len();
            while e < len && is_space(run[e]) {
                e += 1;
            }
            parts.push(run[last..s].iter().collect());
            breaks.push(j);
            last = e;
            s = e;
        } else {
            // Every start inside the same whitespace run reaches the same `j` and fails the same way.
            s = j + 1;
        }
    }
    parts.push(run[last..].iter().collect());
    (parts, breaks)
}

/// Parses with ComfyUI's `token_weights` rules (see the module docs). Never fails.
pub fn parse_comfy(prompt: &str) -> Vec<PromptPiece> {
    // Same placeholders as ComfyUI's escape_important / unescape_important.
    let escaped = prompt.replace("\\)", "\0\u{1}").replace("\\(", "\0\u{2}");
    let unescape = |s: &str| s.replace("\0\u{1}", ")").replace("\0\u{2}", "(");

    enum Work {
        Parse(String, f64),
        Emit(String, f64),
    }
    // An explicit stack instead of Python's recursion, so deep nesting cannot overflow ours.
    let mut out = Vec::new();
    let mut stack = vec![Work::Parse(escaped, 1.0)];
    while let Some(work) = stack.pop() {
        match work {
            Work::Emit(text, weight) => out.push(PromptPiece::span(unescape(&text), weight)),
            Work::Parse(text, current) => {
                let mut children = Vec::new();
                for item in parse_parentheses(&text) {
                    let is_group =
                        item.chars().count() >= 2 && item.starts_with('(') && item.ends_with(')');
                    if !is_group {
                        children.push(Work::Emit(item, current));
                        continue;
                    }
                    let mut inner = item[1..item.len() - 1].to_string();
                    let mut weight = current * 1.1;
                    if let Some(colon) = inner.rfind(':').filter(|&c| c > 0) {
                        if let Some(w) = py_float(&inner[colon + 1..]) {
                            weight = w;
                            inner.truncate(colon);
                        }
                    }
                    children.push(Work::Parse(inner, weight));
                }
                stack.extend(children.into_iter().rev());
            }
        }
    }
    out
}

/// ComfyUI's `parse_parentheses`, character for character.
fn parse_parentheses(s: &str) -> Vec<String> {
    let mut result = Vec::new();
    let mut current = String::new();
    let mut nesting: i64 = 0;
    for c in s.chars() {
        match c {
            '(' => {
                if nesting == 0 {
                    if !current.is_empty() {
                        result.push(std::mem::take(&mut current));
                    }
                    current = "(".to_string();
                } else {
                    current.push(c);
                }
                nesting += 1;
            }
            ')' => {
                nesting -= 1;
                if nesting == 0 {
                    current.push(')');
                    result.push(std::mem::take(&mut current));
                } else {
                    current.push(c);
                }
            }
            _ => current.push(c),
        }
    }
    if !current.is_empty() {
        result.push(current);
    }
    result
}

/// Strict ComfyUI check: every unescaped `(` has a `)` and no `)` comes unopened.
fn check_comfy_brackets(prompt: &str) -> Result<(), ParseError> {
    let chars: Vec<char> = prompt.chars().collect();
    let mut open = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if matches!(chars.get(i + 1), Some('(' | ')')) => i += 1,
            '(' => open.push(i + 1),
            ')' if open.pop().is_none() => {
                return Err(ParseError::Unmatched {
                    bracket: ')',
                    column: i + 1,
                });
            }
            _ => {}
        }
        i += 1;
    }
    match open.first() {
        Some(&column) => Err(ParseError::Unclosed {
            bracket: '(',
            closer: ')',
            column,
        }),
        None => Ok(()),
    }
}

/// Strict ComfyUI check on balanced brackets: a group's last colon of its own (not one of a
/// nested group) must be followed by a finite number, since ComfyUI otherwise keeps the colon
/// as text and the group at ×1.1 without a word.
fn check_comfy_weights(prompt: &str) -> Result<(), ParseError> {
    let chars: Vec<char> = prompt.chars().collect();
    // Per open group: its `(` index and the indices of its own colons.
    let mut open: Vec<(usize, Vec<usize>)> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if matches!(chars.get(i + 1), Some('(' | ')')) => i += 1,
            '(' => open.push((i, Vec::new())),
            ':' => {
                if let Some(group) = open.last_mut() {
                    group.1.push(i);
                }
            }
            ')' => {
                let (start, colons) = open.pop().unwrap_or((0, Vec::new()));
                if let Some(&colon) = colons.last() {
                    let last_in_group = chars[start + 1..i].iter().rposition(|&c| c == ':');
                    let after: String = chars[colon + 1..i].iter().collect();
                    let is_weight = last_in_group == Some(colon - start - 1)
                        && colon > start + 1
                        && py_float(&after).is_some_and(f64::is_finite);
                    if !is_weight {
                        return Err(ParseError::InvalidWeight {
                            column: colon + 1,
                            found: text_after_colon(&chars, colon),
                        });
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(prompt: &str) -> Vec<PromptPiece> {
        parse_a1111_lenient(prompt)
    }

    fn spans(list: &[(&str, f64)]) -> Vec<PromptPiece> {
        list.iter().map(|&(t, w)| PromptPiece::span(t, w)).collect()
    }

    fn strict_err(prompt: &str) -> ParseError {
        parse_a1111(prompt, ParseMode::Strict).expect_err(prompt)
    }

    // The doctests of parse_prompt_attention in A1111's modules/prompt_parser.py, verbatim.
    #[test]
    fn a1111_docstring_examples() {
        assert_eq!(a("normal text"), spans(&[("normal text", 1.0)]));
        assert_eq!(
            a("an (important) word"),
            spans(&[("an ", 1.0), ("important", 1.1), (" word", 1.0)])
        );
        assert_eq!(a("(unbalanced"), spans(&[("unbalanced", 1.1)]));
        assert_eq!(a("\\(literal\\]"), spans(&[("(literal]", 1.0)]));
        assert_eq!(
            a("(unnecessary)(parens)"),
            spans(&[("unnecessaryparens", 1.1)])
        );
        assert_eq!(
            a("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky)))."),
            spans(&[
                ("a ", 1.0),
                ("house", 1.5730000000000004),
                (" ", 1.1),
                ("on", 1.0),
                (" a ", 1.1),
                ("hill", 0.55),
                (", sun, ", 1.1),
                ("sky", 1.4641000000000006),
                (".", 1.1),
            ])
        );
    }

    #[test]
    fn a1111_square_brackets_divide() {
        // 1 * (1/1.1) in f64, as Python computes it.
        assert_eq!(a("[x]"), spans(&[("x", 0.9090909090909091)]));
        assert_eq!(a("[[x]]"), spans(&[("x", 0.8264462809917354)]));
    }

    #[test]
    fn a1111_weight_allows_spaces_and_signs() {
        assert_eq!(a("(x: 1.5 )"), spans(&[("x", 1.5)]));
        assert_eq!(a("(x:-1)"), spans(&[("x", -1.0)]));
        assert_eq!(a("(x:.5)"), spans(&[("x", 0.5)]));
        assert_eq!(a("(x:2.)"), spans(&[("x", 2.0)]));
    }

    #[test]
    fn a1111_non_weight_colons_are_text() {
        assert_eq!(a("style: anime"), spans(&[("style: anime", 1.0)]));
        assert_eq!(a("(a:b)"), spans(&[("a:b", 1.1)]));
        assert_eq!(a("(a:b:1.2)"), spans(&[("a:b", 1.2)]));
        // A weight with no open '(' is literal text, spaces kept.
        assert_eq!(a("x:1.2)"), spans(&[("x:1.2)", 1.0)]));
    }

    #[test]
    fn a1111_unmatched_closers_are_literal() {
        assert_eq!(a("a) b] c"), spans(&[("a) b] c", 1.0)]));
    }

    #[test]
    fn a1111_lone_backslash_is_dropped() {
        assert_eq!(a("a\\b"), spans(&[("ab", 1.0)]));
        assert_eq!(a("a\\\\b"), spans(&[("a\\b", 1.0)]));
    }

    #[test]
    fn a1111_crossed_brackets_use_separate_stacks() {
        assert_eq!(a("([a)]"), spans(&[("a", 1.0)]));
    }

    #[test]
    fn a1111_invalid_weight_number_keeps_colon_as_text() {
        assert_eq!(a("(a:1.2.3)"), spans(&[("a:1.2.3", 1.1)]));
    }

    #[test]
    fn a1111_break_splits_and_eats_whitespace() {
        assert_eq!(
            a("a cat BREAK a dog"),
            vec![
                PromptPiece::span("a cat", 1.0),
                PromptPiece::Break,
                PromptPiece::span("a dog", 1.0)
            ]
        );
        // Only the whole word, upper case, counts.
        assert_eq!(
            a("aBREAK Break BREAKs"),
            spans(&[("aBREAK Break BREAKs", 1.0)])
        );
        assert_eq!(
            a("BREAK"),
            vec![
                PromptPiece::span("", 1.0),
                PromptPiece::Break,
                PromptPiece::span("", 1.0)
            ]
        );
        assert_eq!(
            a("x,BREAK\ty"),
            vec![
                PromptPiece::span("x,", 1.0),
                PromptPiece::Break,
                PromptPiece::span("y", 1.0)
            ]
        );
    }

    #[test]
    fn a1111_break_in_brackets_becomes_a_negative_word() {
        assert_eq!(
            a("(BREAK)"),
            spans(&[("", 1.1), ("BREAK", -1.1), ("", 1.1)])
        );
        assert_eq!(
            strict_err("(a BREAK b)"),
            ParseError::BreakInsideBrackets { column: 4 }
        );
    }

    #[test]
    fn a1111_empty_prompt_is_one_empty_span() {
        assert_eq!(a(""), spans(&[("", 1.0)]));
        assert_eq!(a("()"), spans(&[("", 1.0)]));
    }

    #[test]
    fn strict_accepts_well_formed_prompts_with_same_output() {
        // The docstring's `a (((house:1.3)) ...` leaves one '(' open: strict rejects it.
        assert_eq!(
            strict_err("a (((house:1.3)) [on]"),
            ParseError::Unclosed {
                bracket: '(',
                closer: ')',
                column: 3
            }
        );
        for p in [
            "a ((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
            "style: anime, [a:b:0.5] \\(x\\) BREAK y",
            "",
        ] {
            assert_eq!(parse_a1111(p, ParseMode::Strict).unwrap(), a(p), "{p}");
        }
    }

    #[test]
    fn strict_errors_name_column_and_fix() {
        let e = strict_err("abcd(efg");
        assert_eq!(
            e,
            ParseError::Unclosed {
                bracket: '(',
                closer: ')',
                column: 5
            }
        );
        assert_eq!(e.to_string(), "unclosed '(' opened at column 5: add ')'");

        let e = strict_err("a (b:1.2.3) c");
        assert_eq!(
            e.to_string(),
            "weight after ':' at column 5 is not a number (found '1.2.3'): write it as (text:1.2)"
        );
        let e = strict_err("a nice (face:big)");
        assert_eq!(
            e,
            ParseError::InvalidWeight {
                column: 13,
                found: "big".into()
            }
        );
        assert_eq!(
            strict_err("x]"),
            ParseError::Unmatched {
                bracket: ']',
                column: 2
            }
        );
        assert_eq!(
            strict_err("x:1.5)"),
            ParseError::Unmatched {
                bracket: ')',
                column: 6
            }
        );
        assert_eq!(strict_err("a\\b"), ParseError::LoneBackslash { column: 2 });
        assert_eq!(
            strict_err("([a)]"),
            ParseError::Crossed {
                closer: ')',
                column: 4,
                open: '(',
                open_column: 1,
                inner: '[',
                inner_column: 2
            }
        );
        // Columns count characters, not bytes.
        assert_eq!(
            strict_err("é[x"),
            ParseError::Unclosed {
                bracket: '[',
                closer: ']',
                column: 2
            }
        );
    }

    #[test]
    fn comfy_basic_groups() {
        assert_eq!(
            parse_comfy("an (important) word"),
            spans(&[("an ", 1.0), ("important", 1.1), (" word", 1.0)])
        );
        assert_eq!(parse_comfy("((x))"), spans(&[("x", 1.2100000000000002)]));
    }

    #[test]
    fn comfy_explicit_weight_is_absolute() {
        // A1111 would give 1.1 * 1.5; ComfyUI replaces the weight.
        assert_eq!(parse_comfy("((x:1.5))"), spans(&[("x", 1.5)]));
        assert_eq!(
            parse_comfy("(a (b):1.5)"),
            spans(&[("a ", 1.5), ("b", 1.6500000000000001)])
        );
        assert_eq!(parse_comfy("(x:1e-1)"), spans(&[("x", 0.1)]));
        assert_eq!(parse_comfy("(x: 2 )"), spans(&[("x", 2.0)]));
    }

    #[test]
    fn comfy_non_numeric_weight_keeps_colon() {
        assert_eq!(parse_comfy("(a:b)"), spans(&[("a:b", 1.1)]));
        assert_eq!(parse_comfy("(:1.5)"), spans(&[(":1.5", 1.1)]));
    }

    #[test]
    fn comfy_square_brackets_and_break_are_text() {
        assert_eq!(parse_comfy("[x] BREAK y"), spans(&[("[x] BREAK y", 1.0)]));
    }

    #[test]
    fn comfy_escapes_only_parentheses() {
        assert_eq!(
            parse_comfy("\\(a\\) \\[b\\]"),
            spans(&[("(a) \\[b\\]", 1.0)])
        );
    }

    #[test]
    fn comfy_unbalanced() {
        assert_eq!(parse_comfy("(unbalanced"), spans(&[("(unbalanced", 1.0)]));
        // The stray ')' drives nesting negative, so (b) is no longer a group.
        assert_eq!(parse_comfy("a) (b)"), spans(&[("a) (b)", 1.0)]));
        assert_eq!(parse_comfy("(a (b)"), spans(&[("a ", 1.1), ("(b", 1.1)]));
        assert_eq!(parse_comfy(""), Vec::<PromptPiece>::new());
    }

    #[test]
    fn comfy_strict_brackets() {
        assert_eq!(
            parse_prompt("a (b", PromptSyntax::Comfy, ParseMode::Strict),
            Err(ParseError::Unclosed {
                bracket: '(',
                closer: ')',
                column: 3
            })
        );
        assert_eq!(
            parse_prompt("a \\) b)", PromptSyntax::Comfy, ParseMode::Strict),
            Err(ParseError::Unmatched {
                bracket: ')',
                column: 7
            })
        );
        assert!(parse_prompt("[(a:1.2)]", PromptSyntax::Comfy, ParseMode::Strict).is_ok());
    }

    /// A colon that ComfyUI would keep as text inside a group, or a weight that is not a
    /// finite number, is refused in strict mode; well-formed weights give the lenient output.
    #[test]
    fn comfy_strict_weights() {
        let strict = |p: &str| parse_prompt(p, PromptSyntax::Comfy, ParseMode::Strict);
        for (prompt, column, found) in [
            ("a (b:big) c", 5, "big"),
            ("(:1.5)", 2, "1.5"),
            ("(x:nan)", 3, "nan"),
            ("(x:inf)", 3, "inf"),
            ("(a:b (c:1.2))", 3, "b (c:1.2"),
        ] {
            assert_eq!(
                strict(prompt),
                Err(ParseError::InvalidWeight {
                    column,
                    found: found.into()
                }),
                "{prompt}"
            );
        }
        for ok in [
            "(a:1.2)",
            "((a:0.5) b)",
            "(style: anime:1.2)",
            "x: y (z)",
            "(x: 2 )",
        ] {
            assert_eq!(strict(ok).unwrap(), parse_comfy(ok), "{ok}");
        }
    }

    #[test]
    fn a1111_strict_refuses_infinite_weight() {
        let huge = format!("(a:{})", "9".repeat(400));
        assert!(matches!(
            parse_a1111(&huge, ParseMode::Strict),
            Err(ParseError::InvalidWeight { column: 3, .. })
        ));
    }

    #[test]
    fn plain_is_one_span() {
        assert_eq!(
            parse_prompt("(a) BREAK [b]", PromptSyntax::Plain, ParseMode::Strict).unwrap(),
            spans(&[("(a) BREAK [b]", 1.0)])
        );
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        let deep = format!("{}x{}", "(".repeat(20_000), ")".repeat(20_000));
        assert_eq!(a(&deep).len(), 1);
        // ComfyUI re-scans each level (quadratic), so a smaller depth keeps the test fast.
        let deep = format!("{}x{}", "(".repeat(3_000), ")".repeat(3_000));
        assert_eq!(parse_comfy(&deep).len(), 1);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        #[test]
        fn parsers_never_panic(s in "[ abcABEKR()\\[\\]:\\\\.0-9+\\-\t]{0,40}|\\PC{0,40}") {
            let lenient = parse_a1111_lenient(&s);
            proptest::prop_assert!(!lenient.is_empty());
            if let Ok(strict) = parse_a1111(&s, ParseMode::Strict) {
                proptest::prop_assert_eq!(strict, lenient);
            }
            let comfy = parse_comfy(&s);
            if let Ok(strict) = parse_prompt(&s, PromptSyntax::Comfy, ParseMode::Strict) {
                proptest::prop_assert_eq!(strict, comfy);
            }
        }
    }
}
