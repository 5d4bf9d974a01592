//! resize: the demo workload. Reads a binary PPM (P6, maxval 255), resizes it to W x H with an
//! area-average (box) filter in exact integer arithmetic, writes /outputs/resized.ppm and prints
//! `WxH -> W2xH2` to stdout.
//!
//!   resize INPUT.ppm WIDTH HEIGHT
//!
//! The filter, pinned so another implementation gives the same bytes (tests/executor/
//! resize_reference.py is one): put the source and target grids on a common integer axis,
//! source pixel i spanning [i*W2, (i+1)*W2) and target pixel j spanning [j*W, (j+1)*W) (the same
//! for rows with H, H2). A target channel value is the sum over source pixels of
//! overlap_x * overlap_y * value, divided by W*H and rounded half up:
//! (sum + W*H/2) / (W*H) in integer division. This works for shrinking and enlarging alike and
//! never touches floating point, so every machine gives identical output.
//!
//! Build: /usr/bin/rustc --edition 2021 --target wasm32-wasi -O -C strip=symbols resize.rs

use std::fs;
use std::process;

const OUTPUT: &str = "/outputs/resized.ppm";
/// Bounds one side so width * height * 3 and the filter's sums stay far inside u64.
const MAX_SIDE: usize = 16384;

struct Image {
    width: usize,
    height: usize,
    /// Row-major RGB, 3 bytes a pixel.
    pixels: Vec<u8>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Err(message) = run(&args) {
        eprintln!("resize: {message}");
        process::exit(1);
    }
}

fn run(args: &[String]) -> Result<(), String> {
    // No let-else: Debian's rustc is 1.63.
    let (input, width, height) = match args {
        [_, input, width, height] => (input, width, height),
        _ => return Err("usage: resize INPUT.ppm WIDTH HEIGHT".to_string()),
    };
    let target_width = parse_side("WIDTH", width)?;
    let target_height = parse_side("HEIGHT", height)?;
    let data = fs::read(input).map_err(|err| format!("{input}: {err}"))?;
    let image = parse_ppm(&data).map_err(|err| format!("{input}: {err}"))?;
    let resized = resize(&image, target_width, target_height);
    let mut out = format!("P6\n{} {}\n255\n", resized.width, resized.height).into_bytes();
    out.extend_from_slice(&resized.pixels);
    fs::write(OUTPUT, out).map_err(|err| format!("{OUTPUT}: {err}"))?;
    println!(
        "{}x{} -> {}x{}",
        image.width, image.height, resized.width, resized.height
    );
    Ok(())
}

fn parse_side(name: &str, text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_SIDE).contains(&n) => Ok(n),
        _ => Err(format!("{name} must be an integer from 1 to {MAX_SIDE}, got {text:?}")),
    }
}

/// Parses a P6 header (magic, width, height, maxval, with `#` comments between fields) and
/// the pixel bytes after the single whitespace byte that ends it.
fn parse_ppm(data: &[u8]) -> Result<Image, String> {
    if !data.starts_with(b"P6") {
        return Err("not a binary PPM (expected the P6 magic)".to_string());
    }
    let mut pos = 2;
    let mut fields = [0usize; 3];
    for field in fields.iter_mut() {
        skip_space_and_comments(data, &mut pos)?;
        let start = pos;
        while pos < data.len() && data[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = std::str::from_utf8(&data[start..pos]).unwrap_or("");
        *field = digits
            .parse()
            .map_err(|_| "malformed PPM header: expected a number".to_string())?;
    }
    let [width, height, maxval] = fields;
    if maxval != 255 {
        return Err(format!("maxval {maxval} is not supported (only 255)"));
    }
    if !(1..=MAX_SIDE).contains(&width) || !(1..=MAX_SIDE).contains(&height) {
        return Err(format!("image size {width}x{height} is out of range (1 to {MAX_SIDE})"));
    }
    if pos >= data.len() || !data[pos].is_ascii_whitespace() {
        return Err("malformed PPM header: no whitespace after maxval".to_string());
    }
    pos += 1;
    let size = width * height * 3;
    let pixels = data.get(pos..pos + size).ok_or_else(|| {
        format!(
            "truncated: {width}x{height} needs {size} pixel bytes, found {}",
            data.len() - pos
        )
    })?;
    Ok(Image { width, height, pixels: pixels.to_vec() })
}

fn skip_space_and_comments(data: &[u8], pos: &mut usize) -> Result<(), String> {
    loop {
        match data.get(*pos) {
            Some(b'#') => {
                while *pos < data.len() && data[*pos] != b'\n' {
                    *pos += 1;
                }
            }
            Some(byte) if byte.is_ascii_whitespace() => *pos += 1,
            Some(_) => return Ok(()),
            None => return Err("truncated PPM header".to_string()),
        }
    }
}

/// For each target index, the (source index, overlap) pairs of the area-average filter.
fn weights(source: usize, target: usize) -> Vec<Vec<(usize, u64)>> {
    (0..target)
        .map(|j| {
            let (lo, hi) = (j * source, (j + 1) * source);
            let first = lo / target;
            let last = (hi - 1) / target;
            (first..=last)
                .map(|i| {
                    let overlap = hi.min((i + 1) * target) - lo.max(i * target);
                    (i, overlap as u64)
                })
                .collect()
        })
        .collect()
}

/// Separable: rows first (unnormalised sums), then columns, with one rounding at the end, so
/// the result equals the two-dimensional formula in the module comment exactly.
fn resize(image: &Image, width: usize, height: usize) -> Image {
    let wx = weights(image.width, width);
    let wy = weights(image.height, height);
    let mut rows = vec![0u64; image.height * width * 3];
    for y in 0..image.height {
        let src = &image.pixels[y * image.width * 3..(y + 1) * image.width * 3];
        let dst = &mut rows[y * width * 3..(y + 1) * width * 3];
        for (x, taps) in wx.iter().enumerate() {
            for &(i, w) in taps {
                for c in 0..3 {
                    dst[x * 3 + c] += w * u64::from(src[i * 3 + c]);
                }
            }
        }
    }
    let total = (image.width * image.height) as u64;
    let mut pixels = vec![0u8; width * height * 3];
    for (y, taps) in wy.iter().enumerate() {
        for x in 0..width * 3 {
            let sum: u64 = taps.iter().map(|&(i, w)| w * rows[i * width * 3 + x]).sum();
            // The average of values <= 255 is <= 255, so the cast cannot truncate.
            pixels[y * width * 3 + x] = ((sum + total / 2) / total) as u8;
        }
    }
    Image { width, height, pixels }
}
