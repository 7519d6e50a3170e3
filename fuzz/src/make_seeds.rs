//! Writes the seed corpus of the fuzz targets: `seeds/frames/` (valid
//! frames, each read 1, 8 and 255 bytes at a time) and `seeds/launch_env/`
//! (a valid launch variable and launch information). Deterministic: the
//! committed seeds are what this writes.

use std::path::Path;

use parallelizer_core::backend::processes::fuzz;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let frames = root.join("frames");
    let _ = std::fs::remove_dir_all(&frames);
    std::fs::create_dir_all(&frames)?;
    for (i, seed) in fuzz::seed_frames().iter().enumerate() {
        for step in [1u8, 8, 255] {
            let mut input = vec![step - 1];
            input.extend_from_slice(seed);
            std::fs::write(frames.join(format!("frame-{i}-step-{step}")), input)?;
        }
    }
    let launch = root.join("launch_env");
    std::fs::create_dir_all(&launch)?;
    std::fs::write(launch.join("valid"), fuzz::seed_launch())?;
    println!("seeds written to {}", root.display());
    Ok(())
}
