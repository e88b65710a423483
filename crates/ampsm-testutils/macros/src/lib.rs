//! `#[requires(tool, …)]`: a test that needs an outside tool (see `ampsm_testutils::tools`) is marked
//! `#[ignore = "<what is missing and how to install it>"]` when the build script did not find the tool,
//! so `cargo test` reports it as ignored with its reason instead of passing it without running it. In CI
//! (`CI` set) nothing is ignored: the test runs and fails on the missing tool.

#[allow(dead_code)]
#[path = "../../src/tools.rs"]
mod tools;

use proc_macro::{Delimiter, Group, Ident, Literal, Punct, Spacing, Span, TokenStream, TokenTree};
use tools::Tool;

/// Names of the tools the build script did not find.
const MISSING: &str = env!("AMPSM_MISSING_TOOLS");

/// Put above `#[test]`: `#[requires(chromium)]`, `#[requires(python3, pytest)]`. Known names: chromium,
/// claude, codex, amp, pytest, python3, soffice, axe, desktop_session, tauri_driver, slurm.
#[proc_macro_attribute]
pub fn requires(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut reasons = Vec::new();
    for token in args {
        match token {
            TokenTree::Ident(ident) => {
                let name = ident.to_string();
                let Some(tool) = Tool::from_name(&name) else {
                    let known: Vec<&str> = Tool::ALL.iter().map(|t| t.name()).collect();
                    return compile_error(&format!("unknown tool `{name}`; known: {}", known.join(", ")));
                };
                if MISSING.split(',').any(|missing| missing == name) {
                    reasons.push(tool.reason());
                }
            }
            TokenTree::Punct(punct) if punct.as_char() == ',' => {}
            other => {
                return compile_error(&format!("expected tool names separated by commas, got `{other}`"));
            }
        }
    }
    if reasons.is_empty() {
        return item;
    }
    let mut out = attribute("ignore", &reasons.join("; "));
    out.extend(item);
    out
}

/// `#[name = "value"]`.
fn attribute(name: &str, value: &str) -> TokenStream {
    let inner: TokenStream = [
        TokenTree::Ident(Ident::new(name, Span::call_site())),
        TokenTree::Punct(Punct::new('=', Spacing::Alone)),
        TokenTree::Literal(Literal::string(value)),
    ]
    .into_iter()
    .collect();
    [
        TokenTree::Punct(Punct::new('#', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Bracket, inner)),
    ]
    .into_iter()
    .collect()
}

/// `compile_error!("message");`
fn compile_error(message: &str) -> TokenStream {
    let args: TokenStream = [TokenTree::Literal(Literal::string(message))].into_iter().collect();
    [
        TokenTree::Ident(Ident::new("compile_error", Span::call_site())),
        TokenTree::Punct(Punct::new('!', Spacing::Alone)),
        TokenTree::Group(Group::new(Delimiter::Parenthesis, args)),
        TokenTree::Punct(Punct::new(';', Spacing::Alone)),
    ]
    .into_iter()
    .collect()
}
