//! Shows how a prompt is weighted: `parse_prompt a1111 "a (red:1.2) [dog]"`.
//! Without a prompt it reads a JSON array of prompts on stdin and prints, per prompt, the
//! pieces as `[text, weight]` (`["BREAK", "-1.0"]` for breaks, weights as Rust `{:?}` text so
//! infinities survive JSON); that form is used to diff against the reference implementations.

use std::io::Read;

use clipguide_text::{parse_prompt, ParseMode, PromptPiece, PromptSyntax};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let syntax = match args.first().map(String::as_str) {
        Some("a1111") => PromptSyntax::A1111,
        Some("comfy") => PromptSyntax::Comfy,
        Some("plain") => PromptSyntax::Plain,
        _ => {
            eprintln!("usage: parse_prompt <a1111|comfy|plain> [--strict] [PROMPT]");
            std::process::exit(2);
        }
    };
    let strict = args.iter().any(|a| a == "--strict");
    let mode = if strict {
        ParseMode::Strict
    } else {
        ParseMode::Lenient
    };
    let prompt = args.iter().skip(1).find(|a| *a != "--strict");

    if let Some(prompt) = prompt {
        match parse_prompt(prompt, syntax, mode) {
            Ok(pieces) => {
                for piece in pieces {
                    match piece {
                        PromptPiece::Span(s) => println!("{:<22?}{:?}", s.weight, s.text),
                        PromptPiece::Break => println!("BREAK"),
                    }
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
        }
        return;
    }

    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("error: cannot read stdin: {e}");
        std::process::exit(1);
    }
    let prompts: Vec<String> = match serde_json::from_str(&input) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: stdin must be a JSON array of strings: {e}");
            std::process::exit(1);
        }
    };
    let out: Vec<serde_json::Value> = prompts
        .iter()
        .map(|p| match parse_prompt(p, syntax, mode) {
            Ok(pieces) => serde_json::Value::Array(
                pieces
                    .into_iter()
                    .map(|piece| match piece {
                        PromptPiece::Span(s) => {
                            serde_json::json!([s.text, format!("{:?}", s.weight)])
                        }
                        PromptPiece::Break => serde_json::json!(["BREAK", "-1.0"]),
                    })
                    .collect(),
            ),
            Err(e) => serde_json::json!({ "error": e.to_string() }),
        })
        .collect();
    println!("{}", serde_json::Value::Array(out));
}
