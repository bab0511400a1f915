//! Native integration tests: real weights against the independent reference data
//! (`tests/fixtures/`, copied from the reference set), on the CPU backend and on wgpu.

use std::path::{Path, PathBuf};
use std::process::Command;

use sightline::preprocess::{ChannelOrder, Normalize, Resize, preprocess};
use sightline::{ClassifierOptions, ErrorKind, Image, ImageClassifier, cpu_device, wgpu_device};

const IMAGES: [&str; 4] = ["chelsea", "coffee", "dog", "person"];
const MODES: [(&str, Resize); 2] = [("crop224", Resize::CenterCrop), ("stretch224", Resize::Stretch)];

/// Reference bound for logits on the CPU backend (float32 vs the float64 reference).
const LOGIT_TOL_CPU: f32 = 1e-3;
/// On wgpu (lavapipe) the GPU kernels reorder float sums; the same bound holds, see the test.
const LOGIT_TOL_WGPU: f32 = 1e-3;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// A minimal `.npy` reader (little-endian f4 or u1, C order).
fn npy(path: &Path) -> (Vec<usize>, Vec<u8>, String) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let (len, start) = if bytes[6] == 1 {
        (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10)
    } else {
        (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + len]).expect("utf8 header");
    assert!(header.contains("'fortran_order': False"));
    let descr = header.split("'descr': '").nth(1).and_then(|s| s.split('\'').next()).expect("descr");
    let shape_str = header.split("'shape': (").nth(1).and_then(|s| s.split(')').next()).expect("shape");
    let shape = shape_str
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().expect("dim"))
        .collect();
    (shape, bytes[start + len..].to_vec(), descr.to_owned())
}

fn npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let (shape, data, descr) = npy(path);
    assert_eq!(descr, "<f4", "{}", path.display());
    let values = data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (shape, values)
}

fn npy_rgb(name: &str) -> (Vec<u8>, u32, u32) {
    let (shape, data, descr) = npy(&fixture(&format!("{name}/image_rgb_u8.npy")));
    assert_eq!(descr, "|u1");
    (data, shape[1] as u32, shape[0] as u32)
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn classifier_weights() -> Vec<u8> {
    let path = root().join("models/efficientnet-lite0.safetensors");
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; run `python3 scripts/fetch_weights.py` first", path.display())
    })
}

#[test]
fn preprocessing_reproduces_reference_inputs() {
    let norm = Normalize {
        order: ChannelOrder::Rgb,
        mean: [127.0; 3],
        std: [128.0; 3],
    };
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        let image = Image::from_rgb(&px, w, h).expect("valid image");
        for (mode, resize) in MODES {
            let (shape, expected) = npy_f32(&fixture(&format!("{name}/cls_{mode}_input.npy")));
            assert_eq!(shape, vec![1, 3, 224, 224]);
            let got = preprocess(&image, 224, resize, &norm);
            let d = max_abs_diff(&got.data, &expected);
            assert!(d <= 1e-4, "{name}/{mode}: preprocessing differs by {d}");
        }
    }
}

fn check_logits(classifier: &ImageClassifier, tol: f32, backend: &str) {
    for name in IMAGES {
        for (mode, _) in MODES {
            let (_, input) = npy_f32(&fixture(&format!("{name}/cls_{mode}_input.npy")));
            let (shape, expected) = npy_f32(&fixture(&format!("{name}/cls_{mode}_logits.npy")));
            assert_eq!(shape, vec![1, 1000]);
            let got: Vec<f32> = classifier
                .forward(input)
                .into_data()
                .into_vec()
                .expect("f32 logits");
            let d = max_abs_diff(&got, &expected);
            println!("{backend} {name}/{mode}: max |Δlogit| = {d:.2e}");
            assert!(d <= tol, "{backend} {name}/{mode}: logits differ by {d} (bound {tol})");
        }
    }
}

#[test]
fn classifier_logits_match_reference_on_cpu() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    check_logits(&c, LOGIT_TOL_CPU, "cpu");
}

#[test]
fn classifier_logits_match_reference_on_wgpu() {
    // CI runs this on Mesa's lavapipe (software Vulkan, installed by scripts/setup.sh).
    let device = wgpu_device().expect("a wgpu adapter (install mesa-vulkan-drivers for lavapipe)");
    let c = ImageClassifier::from_bytes(&classifier_weights(), &device, ClassifierOptions::default())
        .expect("weights load");
    check_logits(&c, LOGIT_TOL_WGPU, "wgpu");
}

#[test]
fn classify_end_to_end_gives_reference_top1() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    for name in IMAGES {
        let (px, w, h) = npy_rgb(name);
        let result = c.classify(&Image::from_rgb(&px, w, h).expect("valid")).expect("classify");
        let reference = std::fs::read_to_string(fixture(&format!("{name}/cls_crop224.json"))).expect("json");
        let top1: usize = reference
            .split("\"index\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(|s| s.trim().parse().expect("index"))
            .expect("reference top-1");
        assert_eq!(result.classes[0].index, top1, "{name}: {:?}", result.classes[0]);
        assert_eq!(result.classes.len(), 5);
        assert!(result.classes.windows(2).all(|p| p[0].score >= p[1].score));
    }
}

#[test]
fn bad_images_are_named_errors_and_the_classifier_keeps_working() {
    let c = ImageClassifier::from_bytes(&classifier_weights(), &cpu_device(), ClassifierOptions::default())
        .expect("weights load");
    assert_eq!(Image::from_rgba(&[0; 10], 2, 2).unwrap_err().kind(), ErrorKind::InvalidImage);
    assert_eq!(Image::from_rgba(&[], 0, 0).unwrap_err().kind(), ErrorKind::InvalidImage);
    // A 1×1 image is valid and classifiable (upscaled).
    let one = [200u8, 10, 10, 255];
    let r = c.classify(&Image::from_rgba(&one, 1, 1).expect("valid")).expect("1x1 classifies");
    assert_eq!(r.classes.len(), 5);
    // Extreme aspect ratio.
    let strip = vec![90u8; 3000 * 2 * 4];
    c.classify(&Image::from_rgba(&strip, 3000, 2).expect("valid")).expect("strip classifies");
}

#[test]
fn corrupt_truncated_or_mismatched_weights_are_model_load_errors() {
    let good = classifier_weights();
    let device = cpu_device();
    let load = |bytes: &[u8]| ImageClassifier::from_bytes(bytes, &device, ClassifierOptions::default());
    for bytes in [&good[..good.len() / 2], &good[..7], &[][..], b"not a weights file at all"] {
        let e = load(bytes).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    }
    // Rename one tensor: the error names the missing one.
    let header_len = u64::from_le_bytes(good[..8].try_into().expect("8 bytes")) as usize;
    let header = std::str::from_utf8(&good[8..8 + header_len]).expect("utf8");
    let renamed = header.replacen("\"_fc.bias\"", "\"_fc.bia_\"", 1);
    let mut bytes = good[..8].to_vec();
    bytes.extend_from_slice(renamed.as_bytes());
    bytes.extend_from_slice(&good[8 + header_len..]);
    let e = load(&bytes).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad);
    assert!(e.message().contains("_fc.bias"), "{e}");
    // Change one shape: the error names tensor and shapes.
    let reshaped = header.replacen("[1000]", "[999]", 1);
    assert_eq!(reshaped.len(), header.len() - 1);
    let mut bytes = ((header_len - 1) as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(reshaped.as_bytes());
    bytes.extend_from_slice(&good[8 + header_len..]);
    let e = load(&bytes).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ModelLoad, "{e}");
    // Invalid options are rejected before anything is loaded.
    let e = ImageClassifier::from_bytes(&good, &device, ClassifierOptions::default().with_top_k(0)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidOptions);
}

/// `sightline classify --json` on every fixture, checked by the reference `compare.py`:
/// strict on the PNGs (exact decode), `--loose` on the JPEGs (decoder differs by ±1 level).
#[test]
fn cli_json_passes_compare_py() {
    let out = std::env::temp_dir().join(format!("sightline-cli-{}", std::process::id()));
    std::fs::create_dir_all(&out).expect("temp dir");
    for (name, file, loose) in [
        ("chelsea", "chelsea.png", false),
        ("coffee", "coffee.png", false),
        ("dog", "dog.jpg", true),
        ("person", "person.jpg", true),
    ] {
        for (mode, flag) in [("crop224", "crop"), ("stretch224", "stretch")] {
            let run = Command::new(env!("CARGO_BIN_EXE_sightline"))
                .args(["classify", "--json", "--resize", flag])
                .arg(fixture(&format!("images/{file}")))
                .output()
                .expect("run the CLI");
            assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
            let stdout = String::from_utf8(run.stdout).expect("utf8");
            assert_eq!(stdout.trim().lines().count(), 1, "exactly one JSON object: {stdout}");
            let project = out.join(format!("{name}_{mode}.json"));
            std::fs::write(&project, stdout).expect("write");
            let mut cmd = Command::new("python3");
            cmd.arg(root().join("tests/tools/compare.py"))
                .arg(&project)
                .arg(fixture(&format!("{name}/cls_{mode}.json")));
            if loose {
                cmd.arg("--loose");
            }
            let cmp = cmd.output().expect("run compare.py");
            let report = String::from_utf8_lossy(&cmp.stdout);
            println!("{report}");
            assert!(cmp.status.success(), "compare.py failed for {name}/{mode}:\n{report}");
        }
    }
    // No image → exit status 2 with a message, not a panic.
    let run = Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["classify", "/nonexistent.png"])
        .output()
        .expect("run the CLI");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("cannot"));
}
