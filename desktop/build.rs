//! Tauri's build step: the app's configuration and icons, and the one command the dashboard page may call
//! (`pick_folder`), granted to the app's own loopback origin by `capabilities/main.json`.

fn main() {
    let manifest = tauri_build::AppManifest::new().commands(&["pick_folder"]);
    if let Err(e) = tauri_build::try_build(tauri_build::Attributes::new().app_manifest(manifest)) {
        eprintln!("{e:#}");
        std::process::exit(1);
    }
}
