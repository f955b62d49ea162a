//! Small helpers of the benchmark binary: versions, paths, hashing, terminal colours.
use std::hash::Hasher;
use unicode_segmentation::UnicodeSegmentation;

paste::paste! {
    /// The newest of the versions given, or None when none parses.
    pub fn [<newest _ version>](versions: &[&str]) -> Option<semver::Version> {
        versions.iter().filter_map(|v| semver::Version::parse(v).ok()).max()
    }
}

/// A short SipHash of data, in hex.
pub fn short_hash(data: &[u8]) -> String {
    let mut h = siphasher::sip::SipHasher13::new();
    h.write(data);
    hex::encode(h.finish().to_be_bytes())
}

/// Words of a command line, and the graphemes of its first word.
pub fn words(cmd: &str) -> (Vec<String>, usize) {
    let w = shlex::split(cmd).unwrap_or_default();
    let g = w.first().map(|s| s.graphemes(true).count()).unwrap_or(0);
    (w, g)
}

/// Where cargo is, the home directory, and how many *.toml files are under dir.
pub fn survey(dir: &str) -> (Option<std::path::PathBuf>, Option<std::path::PathBuf>, usize) {
    let pat = camino::Utf8Path::new(dir).join("*.toml");
    let n = glob::glob(pat.as_str()).map(|g| g.count()).unwrap_or(0);
    (which::which("cargo").ok(), dirs::home_dir(), n)
}

/// Sums numbers on a crossbeam channel in a scoped thread; at most 8 kept.
pub fn sum(values: &[u64]) -> u64 {
    let (tx, rx) = crossbeam::channel::unbounded();
    let mut keep = arrayvec::ArrayVec::<u64, 8>::new();
    crossbeam::scope(|s| {
        s.spawn(|_| values.iter().for_each(|v| tx.send(*v).unwrap()));
    })
    .unwrap();
    drop(tx);
    rx.iter().for_each(|v| {
        let _ = keep.try_push(v);
    });
    keep.iter().sum()
}

/// Maps a file, sets its mtime to now, copies it; the length mapped.
pub fn touch_and_copy(from: &str, to: &str) -> std::io::Result<usize> {
    let f = std::fs::File::open(from)?;
    let len = unsafe { memmap2::Mmap::map(&f)? }.len();
    filetime::set_file_mtime(from, filetime::FileTime::now())?;
    fs_extra::file::copy(from, to, &fs_extra::file::CopyOptions::new())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::Other, e.to_string()))?;
    Ok(len)
}

/// Installs a Ctrl-C handler that prints in red.
pub fn on_interrupt() {
    use colored::Colorize;
    let _ = ctrlc::set_handler(|| eprintln!("{}", "interrupted".red()));
}
