//! Markdown as the agents write it (CommonMark with tables, strikethrough and task lists), rendered with
//! pulldown-cmark and then sanitized with ammonia: raw HTML in a message is cleaned, scripts, styles,
//! event handlers, images (a page must not fetch what a message points at) and `javascript:` links are
//! dropped, and links open without handing over the page
//! (`rel="noopener noreferrer"`). The result is safe to put in a page as is.

use pulldown_cmark::{Options, Parser, html};

/// Longest text rendered as Markdown; the rest is cut (a message that long is a log, not prose).
const MAX_MARKDOWN: usize = 64 * 1024;

/// `text` as sanitized HTML.
pub fn to_html(text: &str) -> String {
    let text = clip(text, MAX_MARKDOWN);
    let mut opts = Options::empty();
    opts.insert(Options::ENABLE_TABLES);
    opts.insert(Options::ENABLE_STRIKETHROUGH);
    opts.insert(Options::ENABLE_TASKLISTS);
    let mut raw = String::with_capacity(text.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(text, opts));
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tags(["input"])
        .rm_tags(["img"])
        .clean(&raw)
        .to_string()
}

/// At most `max` bytes of `s`, cut at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    &s[..s.floor_char_boundary(max)]
}

#[cfg(test)]
mod tests {
    use super::to_html;

    #[test]
    fn markdown_is_rendered() {
        let h = to_html("# Title\n\nSome **bold** and `code`.\n\n- a\n- b\n\n```rust\nfn main() {}\n```\n");
        assert!(h.contains("<h1>Title</h1>"), "{h}");
        assert!(h.contains("<strong>bold</strong>") && h.contains("<code>code</code>"), "{h}");
        assert!(h.contains("<li>a</li>") && h.contains("<pre><code"), "{h}");
    }

    #[test]
    fn hostile_html_and_links_are_inert() {
        let h = to_html(
            "<script>alert(1)</script> <img src=x onerror=alert(2)>\n\n[click](javascript:alert(3)) \
             <a href=\"javascript:alert(4)\">x</a> [ok](https://example.com)",
        );
        assert!(!h.contains("<script"), "{h}");
        assert!(!h.contains("onerror") && !h.contains("<img"), "{h}");
        assert!(!h.to_lowercase().contains("javascript:"), "{h}");
        assert!(h.contains(">click</a>"), "the link's text stays: {h}");
        assert!(h.contains("href=\"https://example.com\""), "{h}");
        assert!(h.contains("rel=\"noopener noreferrer\""), "{h}");
    }
}
