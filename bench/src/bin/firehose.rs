//! `event-firehose`: a stand-in agent for the ingestion benchmark. Speaks Amp's `--stream-json` format
//! (init, user echo, then assistant text / tool_use / tool_result lines with usage, and a result line) as
//! fast as it can write, `FIREHOSE_EVENTS` lines in all (default 200,000). Reads and ignores its stdin.

use std::io::{Read, Write};

fn main() {
    let total: u64 = std::env::var("FIREHOSE_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(200_000);
    let mut prompt = String::new();
    let _ = std::io::stdin().read_to_string(&mut prompt);
    let thread = "T-019a6f3e-5c21-7d40-9b8e-2f4a1c0d9e73";
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let mut written = 0u64;
    let line = |out: &mut std::io::BufWriter<std::io::StdoutLock<'_>>, text: String| {
        let _ = out.write_all(text.as_bytes());
        let _ = out.write_all(b"\n");
    };
    line(
        &mut out,
        format!(
            r#"{{"type":"system","subtype":"init","cwd":"/tmp","session_id":"{thread}","tools":["Bash","Read"],"mcp_servers":[]}}"#
        ),
    );
    line(
        &mut out,
        format!(
            r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"text","text":{}}}]}},"parent_tool_use_id":null,"session_id":"{thread}"}}"#,
            serde_json::Value::String(prompt.trim().to_string())
        ),
    );
    written += 2;
    let mut i = 0u64;
    while written + 1 < total {
        let text = match i % 3 {
            0 => format!(
                r#"{{"type":"assistant","message":{{"type":"message","role":"assistant","content":[{{"type":"text","text":"Step {i}: looking at the next file."}}],"stop_reason":null,"usage":{{"input_tokens":3,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":7,"max_tokens":32000}}}},"parent_tool_use_id":null,"session_id":"{thread}"}}"#
            ),
            1 => format!(
                r#"{{"type":"assistant","message":{{"type":"message","role":"assistant","content":[{{"type":"tool_use","id":"toolu_{i}","name":"Read","input":{{"path":"src/file_{i}.rs"}}}}],"stop_reason":"tool_use","usage":{{"input_tokens":2,"cache_creation_input_tokens":0,"cache_read_input_tokens":50,"output_tokens":5,"max_tokens":32000}}}},"parent_tool_use_id":null,"session_id":"{thread}"}}"#
            ),
            _ => format!(
                r#"{{"type":"user","message":{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"toolu_{}","content":"fn main() {{ println!(\"{i}\"); }}","is_error":false}}]}},"parent_tool_use_id":null,"session_id":"{thread}"}}"#,
                i - 1
            ),
        };
        line(&mut out, text);
        written += 1;
        i += 1;
    }
    line(
        &mut out,
        format!(
            r#"{{"type":"result","subtype":"success","duration_ms":1000,"is_error":false,"num_turns":{i},"result":"Done.","session_id":"{thread}"}}"#
        ),
    );
    let _ = out.flush();
}
