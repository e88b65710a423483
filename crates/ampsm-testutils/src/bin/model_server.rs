//! `model-server SCRIPT.json [PORT]`: serves a scripted model (see `ampsm_testutils::model_server`) on
//! 127.0.0.1 until killed, for trying the real agent CLIs offline by hand. Prints the Anthropic base URL
//! and the OpenAI base URL on stdout, then each request's path and turn as it is answered on stderr (and its body with
//! `MODEL_SERVER_BODIES=1`).

use ampsm_testutils::{ModelServer, Script};
use std::path::PathBuf;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next().map(PathBuf::from) else {
        eprintln!("usage: model-server SCRIPT.json");
        std::process::exit(2);
    };
    let script = match Script::from_file(&path) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("model-server: cannot read {}: {e}", path.display());
            std::process::exit(2);
        }
    };
    let server = match ModelServer::start(script) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("model-server: cannot listen on 127.0.0.1: {e}");
            std::process::exit(1);
        }
    };
    println!("{}", server.url());
    println!("{}", server.openai_base_url());
    let mut seen = 0;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let requests = server.requests();
        for r in requests.iter().skip(seen) {
            eprintln!("{} turn={:?}", r.path, r.turn);
            if std::env::var_os("MODEL_SERVER_BODIES").is_some() {
                eprintln!("{}", r.body);
            }
        }
        seen = requests.len();
    }
}
